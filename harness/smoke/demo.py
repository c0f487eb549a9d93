"""`make demo`: the main job end to end on this machine, with no API key and no network.

Builds the smoke model (a tiny random-weight Llama) and a LoRA adapter, starts vLLM on the CPU serving
both (`tiny` and the adapter `ft`: "the service model vs our fine-tuned model" in miniature), runs the
example suites against both targets with `tiny` as the judge, writes the HTML report (with the failover
ranking for `base`) and the base-vs-adapter comparison, runs a quality gate on the adapter, prints where the
reports are, and stops the server. Outputs are gibberish (random weights): the demo shows the flow, not quality.
"""

from __future__ import annotations

import sys
from pathlib import Path

from harness.cli import main as harness_main
from harness.smoke.vllm_server import build_smoke_model, running_vllm

WORK = Path(".harness")
SUITES = Path("prompt_suites/examples")


def _harness(argv: list[str], allowed: tuple[int, ...] = (0,)) -> int:
    try:
        harness_main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
        if code not in allowed:
            raise
        return code
    return 0


def main() -> int:
    base_dir, lora_dir = build_smoke_model(WORK / "smoke-model")
    log = WORK / "logs" / "vllm-demo.log"
    print(f"starting vLLM on the CPU (log: {log}); ready in about a minute", flush=True)
    with running_vllm(base_dir, served_name="tiny", loras={"ft": lora_dir}, log_path=log) as server:
        print(f"vLLM ready at {server.base_url}", flush=True)
        db = WORK / "results.db"
        _harness(
            [
                "run",
                str(SUITES),
                "--target",
                f"base=openai:tiny@{server.base_url}",
                "--target",
                f"ft=openai:ft@{server.base_url}",
                "--judge",
                "base",
                "--judge-format",
                "regex",
                "--concurrency",
                "16",
                "--name",
                "demo",
                "--db",
                str(db),
            ]
        )
        report = WORK / "reports" / "demo.html"
        compare = WORK / "reports" / "demo-compare.html"
        store = ["--db", str(db)]
        _harness(["report", "demo", "--format", "html", "-o", str(report), "--primary", "base", *store])
        _harness(["report", "demo", "--format", "json", "-o", str(report.with_suffix(".json")), *store])
        pair = ["--baseline-target", "base", "--candidate-target", "ft"]
        _harness(["compare", "demo", "demo", *pair, "--format", "html", "-o", str(compare), *store])
        print("\nquality gate on the adapter (exit 1 = quality below the bar, 3 = run not trustworthy):", flush=True)
        code = _harness(["gate", "demo", "--target", "ft", "--min-pass-rate", "0.5", *store], allowed=(0, 1, 3))
        print(f"gate exit code {code}")
    print(f"\nHTML report (with the failover ranking for base): {report.resolve()}")
    print(f"JSON report: {report.with_suffix('.json').resolve()}\nbase vs adapter: {compare.resolve()}")
    print(f"store: {db.resolve()} (harness runs --db {db})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
