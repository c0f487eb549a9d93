"""A harness target as an lm-eval API model: which lm-eval model type, and its arguments.

chat         `local-chat-completions` at BASE_URL/chat/completions, prompts sent as chat messages (lm-eval's
             apply_chat_template=True); generate_until tasks only (lm-eval cannot score loglikelihoods over chat).
completions  `local-completions` at BASE_URL/completions, raw prompts. Without --tokenizer: generate_until tasks
             only (tokenizer_backend None, requests sent as text). Loglikelihood tasks (multiple choice, perplexity)
             need token boundaries: --tokenizer remote uses the server's own tokenizer endpoints (vLLM started with
             --enable-tokenizer-info-endpoint), --tokenizer PATH a local Hugging Face tokenizer folder (for a local
             model, the model's own folder; needs the `transformers` package).

Only OpenAI-compatible endpoints are reachable this way: an `openai` target (base_url, or OpenAI's API). A managed
`vllm:` target or a Gemini target is refused with a UserError saying what to pass instead. The API key is read from
the environment variable the spec names and goes into the request header only: never into the store."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.errors import UserError
from harness.targets.spec import TargetSpec

ModelType = Literal["chat", "completions"]
MODEL_TYPES: tuple[ModelType, ...] = ("chat", "completions")
LM_EVAL_MODELS: dict[ModelType, str] = {"chat": "local-chat-completions", "completions": "local-completions"}
OPENAI_BASE_URL = "https://api.openai.com/v1"
REMOTE_TOKENIZER = "remote"


@dataclass(frozen=True)
class Endpoint:
    """What lm-eval is given for one target: the registered model name and its arguments. `args` holds the
    Authorization header when the target has a key; `public()` is what may be recorded."""

    target: TargetSpec
    model_type: ModelType
    lm_eval_model: str
    url: str
    args: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.args.items() if k != "header"}


def endpoint_url(spec: TargetSpec, model_type: ModelType) -> str:
    """The full URL lm-eval posts to: the target's base URL (…/v1) plus chat/completions or completions."""
    base = (spec.base_url or OPENAI_BASE_URL).rstrip("/")
    for suffix in ("/chat/completions", "/completions"):  # a base URL given as the full endpoint already
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return f"{base}/chat/completions" if model_type == "chat" else f"{base}/completions"


def _api_key(spec: TargetSpec) -> str | None:
    env = spec.api_key_env or ("OPENAI_API_KEY" if spec.base_url is None else None)
    key = os.environ.get(env) if env else None
    if spec.base_url is None and not key:
        raise UserError(f"target '{spec.name}' needs an API key in the environment variable {env}", field="--target")
    return key or None


def checked_target(spec: TargetSpec) -> TargetSpec:
    """The spec, when lm-eval can reach it (an OpenAI-compatible endpoint); else a UserError saying what to do."""
    if spec.provider == "vllm":
        raise UserError(
            f"target '{spec.name}' is a managed vLLM target, which `harness bench` does not start: serve it "
            "(`harness serve vllm ...`) and pass NAME=openai:MODEL@http://HOST:PORT/v1",
            field="--target",
        )
    if spec.provider != "openai":
        raise UserError(
            f"target '{spec.name}' uses the {spec.provider} provider; `harness bench` drives OpenAI-compatible "
            "endpoints only (provider openai, with base_url for a local server)",
            field="--target",
        )
    return spec


def make_endpoint(
    spec: TargetSpec,
    model_type: ModelType,
    *,
    tokenizer: str | None = None,
    batch_size: int = 1,
    max_length: int | None = None,
) -> Endpoint:
    """lm-eval's model arguments for the target: URL, model id, concurrency, retries, timeout, tokenizer."""
    checked_target(spec)
    if tokenizer is not None and model_type == "chat":
        raise UserError("--tokenizer applies to --model-type completions only", field="--tokenizer")
    url = endpoint_url(spec, model_type)
    args: dict[str, Any] = {
        "model": spec.model,
        "base_url": url,
        "num_concurrent": spec.concurrency,
        "max_retries": spec.max_attempts,
        "timeout": max(1, round(spec.timeout)),
    }
    if max_length is not None:
        args["max_length"] = max_length
    if model_type == "chat":
        args["tokenizer_backend"] = None
    elif tokenizer is None:
        args.update(tokenizer_backend=None, tokenized_requests=False, batch_size=batch_size)
    elif tokenizer == REMOTE_TOKENIZER:
        args.update(tokenizer_backend="remote", batch_size=batch_size)
    else:
        args.update(tokenizer_backend="huggingface", tokenizer=tokenizer, batch_size=batch_size)
    key = _api_key(spec)
    if key:
        args["header"] = {"Authorization": f"Bearer {key}"}
    return Endpoint(spec, model_type, LM_EVAL_MODELS[model_type], url, args)


def scores_loglikelihood(endpoint: Endpoint) -> bool:
    """Whether this endpoint can score loglikelihood requests (it has a tokenizer to find the continuation)."""
    return endpoint.model_type == "completions" and endpoint.args.get("tokenizer_backend") is not None
