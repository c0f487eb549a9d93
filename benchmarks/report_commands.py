"""Reading results at scale: two judged runs (three targets each) against the loopback stub, then the commands a
user runs on them, each timed as its own process with its peak RSS: report (json, html, md), compare, failover,
baseline export, and gate against the baseline file.

    PORT=18900 LATENCY_MS=0 node ../shared/bench/stub_openai_server.js &
    python benchmarks/report_commands.py --cases 5000 --base-url http://127.0.0.1:18900/v1

The stub answers every request alike, so scores do not differ between runs: this measures the cost of the
statistics (bootstraps, Wilcoxon, Wasserstein/KS, flags) and the renderers, not their findings.

(Not named reports.py: a script's folder comes first on sys.path, and that name would hide the reports package.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = ("a", "b", "c")


def write_suite(folder: Path, cases: int) -> Path:
    with (folder / "bench.cases.jsonl").open("w", encoding="utf-8") as out:
        for i in range(cases):
            case = {"id": f"q{i}", "prompt": f"Question {i}: name a city.", "tags": [f"t{i % 7}"]}
            out.write(json.dumps(case) + "\n")
    suite = folder / "bench.yaml"
    suite.write_text(
        "suite: bench\nversion: 1.0.0\ndefaults:\n  criteria: [preciseness, instruction_following]\n"
        "cases_file: bench.cases.jsonl\n",
        encoding="utf-8",
    )
    return suite


def timed(argv: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (MB) and stdout of one `harness` process."""
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "harness.cli", *argv]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode not in ok:
        sys.exit(f"harness {argv[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) // 1024, proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        suite = write_suite(work, args.cases)
        db = str(work / "results.db")
        targets = [x for t in TARGETS for x in ("-t", f"{t}=openai:{t}@{args.base_url}")]
        common = ["--judge", f"j=openai:judge@{args.base_url}", "--concurrency", str(args.concurrency), "--db", db]
        for name in ("before", "after"):
            wall, rss, _ = timed(
                ["run", str(suite), *targets, *common, "--name", name, "--no-cache", "--format", "json"]
            )
            print(f"run {name:<7} {args.cases} cases x {len(TARGETS)} targets: {wall:6.1f} s, peak RSS {rss} MB")
        out = work / "out"
        steps = [
            ("report json", ["report", "after", "--format", "json", "-o", str(out / "r.json")], (0,)),
            ("report html", ["report", "after", "--format", "html", "-o", str(out / "r.html")], (0,)),
            ("report md", ["report", "after", "--format", "md", "-o", str(out / "r.md")], (0,)),
            ("report parquet", ["report", "after", "--format", "parquet", "-o", str(out / "tables")], (0,)),
            ("compare", ["compare", "before", "after", "--format", "json", "-o", str(out / "c.json")], (0,)),
            ("failover", ["failover", "after", "--primary", "a", "--format", "json", "-o", str(out / "f.json")], (0,)),
            ("baseline export", ["baseline", "export", "before", "-o", str(out / "baseline.json")], (0,)),
            (
                "gate vs file",
                [
                    "gate",
                    "after",
                    "--baseline",
                    str(out / "baseline.json"),
                    "--max-regression",
                    "0.2",
                    "--format",
                    "json",
                ],
                (0, 1, 3),
            ),
        ]
        for label, argv, ok in steps:
            wall, rss, _ = timed([*argv, "--db", db], ok)
            print(f"{label:<16} {wall:6.2f} s  peak RSS {rss:4d} MB")
        sizes = {p.name: p.stat().st_size for p in out.iterdir() if p.is_file()}
        print("sizes: " + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(sizes.items())))


if __name__ == "__main__":
    main()
