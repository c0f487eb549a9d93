"""Train the demo's LoRA adapter (`ft`) on the shipped training set, on the CPU, with peft.

Standalone script, run with the vLLM virtualenv's python (needs torch, transformers, peft); the harness never
imports it:

    .venv-vllm/bin/python harness/smoke/train_lora.py MODEL_DIR TRAIN_JSONL OUT_DIR [--steps N] ...

* Data: `prompt_suites/training/sft.jsonl`, one `{"id", "task", "messages", "response"}` per line. The loss is
  taken on the response and its end-of-turn token only (the prompt tokens are masked), so the adapter learns to
  answer and then stop.
* Split: a held-out validation set chosen by a hash of each example's id (stable when examples are added);
  validation loss is measured before training, every `--eval-every` steps and at the end.
* LoRA: rank 16 on every linear layer of the decoder (peft's "all-linear"), AdamW, linear warm-up then decay; batches
  of similar lengths; the output layer is applied to the answer positions only (answer_loss).
* Seeded and deterministic on a given machine. OUT_DIR gets the adapter (`adapter_config.json`,
  `adapter_model.safetensors`) and `training_log.json` (per-step training loss, validation loss, settings,
  the inputs' fingerprint, timings). When OUT_DIR already holds an adapter trained from the same inputs (model,
  data, settings, this script's version), it is re-used and nothing is trained.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

TRAIN_VERSION = 4
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "training_log.json")
IGNORE = -100


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(model_dir: Path, data: Path, settings: dict[str, Any]) -> str:
    """What the adapter depends on: the base model's config and build stamp, the data, the settings."""
    parts = {
        "train_version": TRAIN_VERSION,
        "model_config": json.loads((model_dir / "config.json").read_text(encoding="utf-8")),
        "model_build": (model_dir / "build.json").read_text(encoding="utf-8")
        if (model_dir / "build.json").is_file()
        else None,
        "weights_bytes": (model_dir / "model.safetensors").stat().st_size,
        "data_sha256": _sha256(data),
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def reusable(out_dir: Path, fp: str) -> bool:
    if not all((out_dir / name).is_file() for name in ADAPTER_FILES):
        return False
    try:
        log = json.loads((out_dir / "training_log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(log.get("fingerprint") == fp)


def read_examples(path: Path) -> list[dict[str, Any]]:
    examples = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
                if not isinstance(ex["messages"], list) or not isinstance(ex["response"], str):
                    raise TypeError("messages must be a list and response a string")
                str(ex["id"])
            except (ValueError, KeyError, TypeError) as exc:
                raise SystemExit(f"{path}:{lineno}: not a training example ({exc})") from None
            examples.append(ex)
    if not examples:
        raise SystemExit(f"{path}: no training examples")
    return examples


def is_validation(example_id: str, fraction: float) -> bool:
    bucket = int(hashlib.sha256(example_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < fraction


def encode(tokenizer: Any, example: dict[str, Any]) -> tuple[list[int], list[int]]:
    """Token ids of the whole chat (prompt + response + end of turn) and labels masking the prompt."""
    prompt = tokenizer.apply_chat_template(example["messages"], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(
        [*example["messages"], {"role": "assistant", "content": example["response"]}], tokenize=False
    )
    if not full.startswith(prompt):
        raise SystemExit(f"example {example['id']}: the chat template does not extend the prompt with the answer")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    return prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids


def group_key(example: dict[str, Any]) -> str:
    """Examples with the same system message share their prompt's first tokens (one group per system prompt)."""
    first = example["messages"][0]
    return str(first["content"]) if first.get("role") == "system" else ""


def shared_prefix(encoded: list[tuple[list[int], list[int]]]) -> int:
    """How many leading tokens every sequence of a group shares, all of them prompt tokens (masked)."""
    n = min(len(ids) for ids, _ in encoded)
    first = encoded[0][0]
    for ids, labels in encoded:
        k = 0
        while k < n and ids[k] == first[k] and labels[k] == IGNORE:
            k += 1
        n = k
    return max(0, n - 1)  # keep one token in every suffix


def batches(encoded: list[tuple[list[int], list[int]]], size: int, pad_id: int) -> Any:
    import torch

    width = max(len(ids) for ids, _ in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, (tokens, targets) in enumerate(encoded):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        labels[row, : len(targets)] = torch.tensor(targets)
        mask[row, : len(tokens)] = 1
    return ids, labels, mask


def answer_loss(model: Any, prefix: list[int], ids: Any, labels: Any, mask: Any) -> Any:
    """Mean next-token cross-entropy over the answer tokens of a batch whose sequences all start with `prefix`
    (the shared system prompt), given the rest of each sequence (`ids`, `labels`, `mask`).

    The prefix goes through the model once and its key/value cache is repeated for the batch (gradients flow
    through it), instead of once per sequence; the output layer (a 49,152-word vocabulary) is applied to the answer
    positions only. The same loss as the model's own on whole sequences, at a fraction of the time."""
    import torch
    import torch.nn.functional as F

    base = model.get_base_model()
    cache = None
    if prefix:
        cache = base.model(input_ids=torch.tensor([prefix]), use_cache=True).past_key_values
        cache.batch_repeat_interleave(ids.shape[0])
        mask = torch.cat([torch.ones((ids.shape[0], len(prefix)), dtype=mask.dtype), mask], dim=1)
    out = base.model(input_ids=ids, attention_mask=mask, past_key_values=cache, use_cache=cache is not None)
    hidden = out.last_hidden_state[:, :-1]
    targets = labels[:, 1:]
    keep = targets != IGNORE
    logits = base.lm_head(hidden[keep])
    return F.cross_entropy(logits.float(), targets[keep])


def group_batches(groups: list[str], lengths: list[int], batch: int, rng: random.Random) -> list[list[int]]:
    """One epoch of batches, each within one group (one system prompt): shuffled, sorted by length within windows
    of 4 batches (less padding), and the batches shuffled again."""
    out: list[list[int]] = []
    for key in sorted(set(groups)):
        order = [i for i, g in enumerate(groups) if g == key]
        rng.shuffle(order)
        window = 4 * batch
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
            out += [chunk[i : i + batch] for i in range(0, len(chunk), batch) if len(chunk[i : i + batch]) == batch]
    rng.shuffle(out)
    return out


def run_batch(
    model: Any, encoded: list[tuple[list[int], list[int]]], picked: list[int], prefix_len: int, pad_id: int
) -> tuple[Any, int]:
    """The loss of one batch (all of one group, sharing `prefix_len` leading tokens) and its answer-token count."""
    rows = [encoded[i] for i in picked]
    prefix = rows[0][0][:prefix_len]
    ids, labels, mask = batches([(t[prefix_len:], y[prefix_len:]) for t, y in rows], len(rows), pad_id)
    return answer_loss(model, prefix, ids, labels, mask), int((labels[:, 1:] != IGNORE).sum())


def mean_loss(
    model: Any, encoded: list[tuple[list[int], list[int]]], groups: list[str], batch: int, pad_id: int
) -> float:
    """Token-weighted mean loss over `encoded`, without gradients."""
    import torch

    total, tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for key in sorted(set(groups)):
            members = [i for i, g in enumerate(groups) if g == key]
            prefix_len = shared_prefix([encoded[i] for i in members])
            for start in range(0, len(members), batch):
                loss, n = run_batch(model, encoded, members[start : start + batch], prefix_len, pad_id)
                total += float(loss) * n
                tokens += n
    model.train()
    return total / max(tokens, 1)


def train(model_dir: Path, data: Path, out_dir: Path, settings: dict[str, Any], fp: str) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    seed = int(settings["seed"])
    random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    started = time.monotonic()

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples = read_examples(data)
    val = [e for e in examples if is_validation(str(e["id"]), settings["val_fraction"])]
    train_set = [e for e in examples if not is_validation(str(e["id"]), settings["val_fraction"])]
    rng = random.Random(seed)
    val = sorted(val, key=lambda e: str(e["id"]))
    rng.shuffle(val)
    val = val[: settings["val_max"]]
    train_encoded = [encode(tokenizer, e) for e in train_set]
    val_encoded = [encode(tokenizer, e) for e in val]
    train_groups = [group_key(e) for e in train_set]
    val_groups = [group_key(e) for e in val]
    prefixes = {
        key: shared_prefix([x for x, g in zip(train_encoded, train_groups, strict=True) if g == key])
        for key in set(train_groups)
    }

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    lora = LoraConfig(
        r=settings["rank"],
        lora_alpha=settings["alpha"],
        target_modules="all-linear",
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings["lr"])
    total = int(settings["steps"])
    warmup = max(1, total // 10)
    # linear warm-up over the first tenth, then linear decay to a tenth of the peak: late batches do not dominate
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda i: (i + 1) / warmup if i < warmup else max(0.1, 1 - 0.9 * (i - warmup) / max(1, total - warmup)),
    )

    lengths = [len(ids) for ids, _ in train_encoded]
    order: list[list[int]] = []
    steps: list[dict[str, Any]] = []
    validation: list[dict[str, Any]] = []
    batch = int(settings["batch"])

    def evaluate(step: int) -> None:
        loss = mean_loss(model, val_encoded, val_groups, batch, pad_id)
        validation.append({"step": step, "val_loss": round(loss, 5)})
        print(f"  step {step:>3}/{settings['steps']}: validation loss {loss:.3f}", flush=True)

    evaluate(0)
    for step in range(1, settings["steps"] + 1):
        if not order:
            order = group_batches(train_groups, lengths, batch, rng)
        picked = order.pop()
        loss, _ = run_batch(model, train_encoded, picked, prefixes[train_groups[picked[0]]], pad_id)
        loss.backward()
        optimiser.step()
        schedule.step()
        optimiser.zero_grad(set_to_none=True)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise SystemExit(f"training diverged at step {step} (loss {value})")
        steps.append({"step": step, "train_loss": round(value, 5)})
        if step % 6 == 0 or step == 1:
            print(f"  step {step:>3}/{settings['steps']}: training loss {value:.3f}", flush=True)
        if step % settings["eval_every"] == 0 or step == settings["steps"]:
            evaluate(step)

    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.peft_config["default"].base_model_name_or_path = str(model_dir)
    model.save_pretrained(str(partial), safe_serialization=True)
    log = {
        "fingerprint": fp,
        "base_model": str(model_dir),
        "data": str(data),
        "settings": settings,
        "train_examples": len(train_encoded),
        "val_examples": len(val_encoded),
        "epochs": round(settings["steps"] * batch / max(1, len(train_encoded)), 3),
        "steps": steps,
        "validation": validation,
        "seconds": round(time.monotonic() - started, 1),
    }
    (partial / "training_log.json").write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    return log


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Train a LoRA adapter on the CPU (seeded, re-used when unchanged).")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--steps", type=int, default=48)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--val-max", type=int, default=16, help="validation examples used at most")
    parser.add_argument("--eval-every", type=int, default=12)
    args = parser.parse_args(argv)
    settings = {
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "rank": args.rank,
        "alpha": 2 * args.rank,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "val_max": args.val_max,
        "eval_every": args.eval_every,
        "target_modules": "all-linear",
    }
    model_dir, data, out_dir = args.model_dir.resolve(), args.data.resolve(), args.out_dir.resolve()
    fp = fingerprint(model_dir, data, settings)
    if reusable(out_dir, fp):
        print(f"adapter already trained on these inputs, re-used: {out_dir}", flush=True)
        return 0
    print(
        f"training the LoRA adapter on the CPU ({args.steps} steps of {args.batch}, rank {args.rank}, lr {args.lr})",
        flush=True,
    )
    log = train(model_dir, data, out_dir, settings, fp)
    first, last = log["validation"][0]["val_loss"], log["validation"][-1]["val_loss"]
    print(
        f"adapter trained in {log['seconds']:.0f} s on {log['train_examples']} examples "
        f"(validation loss {first:.3f} -> {last:.3f} on {log['val_examples']} held-out examples): {out_dir}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
