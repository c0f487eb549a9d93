"""Benchmark metrics of `harness bench` (lm-evaluation-harness) for reports: the rows of a bench run, and the
report section that shows them (a bench run's own report, or a judged run's report beside its judge scores,
matched by target name)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from harness.store import Store
from reports.sections import Section, fmt


def bench_rows(store: Store, run_id: str, targets: Collection[str] | None = None) -> list[dict[str, Any]]:
    """The lm-eval metrics stored with run RUN_ID (an id or a run name), in the order recorded: one dict per
    target x task x metric x filter with value, stderr (None where lm-eval gave none), n_samples, task_version,
    higher_is_better, is_group, alias, and the requests lm-eval made for the task (all, and those sent to the
    endpoint rather than served from its cache). `targets` keeps those targets' rows only."""
    resolved = store.run(run_id)["run_id"]
    out = []
    for r in store.bench_results(resolved):
        if targets is not None and r["target"] not in targets:
            continue
        config = r["config"]
        out.append(
            {
                "run_id": resolved,
                **{f: r[f] for f in Store.BENCH_FIELDS},
                "alias": config.get("alias") or r["task"],
                "requests": config.get("requests"),
                "requests_sent": config.get("requests_sent"),
            }
        )
    return out


def _direction(higher: bool | None) -> str:
    return "↑" if higher else "↓" if higher is False else ""


def bench_section(rows: list[dict[str, Any]]) -> Section | None:
    """The "Benchmarks" table (None without rows): target, task, metric, filter, value ± stderr, samples."""
    if not rows:
        return None
    body = [
        [
            r["target"],
            r["alias"] if not r["is_group"] else f"{r['alias']} (group)",
            f"{r['metric']} {_direction(r['higher_is_better'])}".strip(),
            r["filter"],
            fmt(r["value"], 4),
            fmt(r["stderr"], 4),
            fmt(r["n_samples"]),
            fmt(r["task_version"]),
        ]
        for r in rows
    ]
    note = (
        "Metrics computed by lm-evaluation-harness on the target's endpoint (↑ higher is better, ↓ lower). "
        "± stderr is lm-eval's standard error of the mean over documents (bootstrapped for metrics without a "
        "closed form; – where it cannot be computed, e.g. one document). n = documents evaluated; a run with "
        "--limit evaluates a subset and is not comparable with published figures."
    )
    header = ["target", "task", "metric", "filter", "value", "± stderr", "n", "version"]
    return Section("bench", "Benchmarks (lm-evaluation-harness)", header, body, note, numeric={4, 5, 6})
