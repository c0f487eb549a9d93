"""Scale: a large suite (cases in JSONL, streamed) against the loopback stub as target and judge, then the same
command again, fully served from the store's cache. Prints wall time, calls/s and peak RSS of each run.

    node ../shared/bench/stub_openai_server.js &          # PORT=18900 LATENCY_MS=20
    python benchmarks/scale.py --cases 100000 --concurrency 256 --base-url http://127.0.0.1:18900/v1

Each run is a separate `harness run` process, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_suite(folder: Path, cases: int) -> Path:
    with (folder / "scale.cases.jsonl").open("w", encoding="utf-8") as out:
        for i in range(cases):
            out.write(
                json.dumps(
                    {
                        "id": f"q{i}",
                        "prompt": f"Question {i}: what is the capital of country {i}?",
                        "checks": [{"contains": "Paris"}],
                    }
                )
                + "\n"
            )
    suite = folder / "scale.yaml"
    suite.write_text(
        "suite: scale\nversion: 1.0.0\ndefaults:\n  params: {temperature: 0}\n"
        "  criteria: [preciseness]\ncases_file: scale.cases.jsonl\n",
        encoding="utf-8",
    )
    return suite


def timed_run(argv: list[str]) -> tuple[float, int, dict[str, object]]:
    """Wall seconds, peak RSS (MB) and the JSON summary of one `harness run` process."""
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "harness.cli", *argv]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"harness run failed:\n{proc.stderr[-3000:]}")
    rss_kb = int(proc.stderr.strip().splitlines()[-1])
    return wall, rss_kb // 1024, json.loads(proc.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        suite = write_suite(folder, args.cases)
        argv = [
            "run",
            str(suite),
            "--target",
            f"stub=openai:stub@{args.base_url}",
            "--judge",
            "stub",
            "--concurrency",
            str(args.concurrency),
            "--db",
            str(folder / "scale.db"),
            "--format",
            "json",
        ]
        calls = 2 * args.cases
        for label in ("fresh", "cached"):
            wall, rss, out = timed_run(argv)
            summary = next(iter(out["summary"].values()))  # type: ignore[attr-defined]
            print(
                f"{label:6s} {args.cases} cases, {calls} calls in {wall:7.2f}s -> {calls / wall:6.0f} calls/s, "
                f"peak RSS {rss} MB, cache hits {summary['cache_hits']}, errors {summary['errors']}"
            )


if __name__ == "__main__":
    main()
