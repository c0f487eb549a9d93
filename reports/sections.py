"""The tables of a run report as plain data (title, header, rows of strings, a note), built once and drawn by
both the Markdown and the HTML renderer, so the two always print the same figures.

Cells are plain text: each renderer escapes them (model names and tags come from users and files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""
    numeric: set[int] = field(default_factory=set)  # columns drawn right-aligned


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def usd(value: float | None) -> str:
    return "–" if value is None else f"${value:.4g}"


def ci(interval: list[float] | None, digits: int = 2, percent: bool = False) -> str:
    if interval is None:
        return ""
    lo, hi = (100 * interval[0], 100 * interval[1]) if percent else (interval[0], interval[1])
    return f" [{lo:.{1 if percent else digits}f}, {hi:.{1 if percent else digits}f}]"


def mean_cell(stats: dict[str, Any] | None) -> str:
    if not stats or stats.get("mean") is None:
        return "–"
    return fmt(stats["mean"]) + ci(stats.get("ci95"))


def rate_cell(block: dict[str, Any]) -> str:
    return pct(block["pass_rate"]) + ci(block.get("pass_rate_ci95"), percent=True)


def criteria_names(doc: dict[str, Any]) -> list[str]:
    return sorted({c for t in doc["targets"].values() for c in t["criteria"]})


def summary_section(doc: dict[str, Any]) -> Section:
    crits = criteria_names(doc)
    header = [
        "target",
        "cases",
        "pass rate [95% CI]",
        "passed / evaluated",
        *[f"mean {c} [95% CI]" for c in crits],
        "errors",
        "unscored",
        "p50 / p95 latency",
        "availability",
        "flags",
    ]
    rows = [
        [
            t["target"],
            str(t["cases"]),
            rate_cell(t),
            f"{t['passed']} / {t['evaluated']}",
            *[mean_cell(t["criteria"].get(c)) for c in crits],
            str(t["errors"]),
            str(t["unscored"]),
            f"{fmt(t['latency_ms_p50'], 0)} / {fmt(t.get('latency_ms_p95'), 0)} ms",
            pct(t["availability"]),
            "; ".join(f["message"] for f in t.get("flags", [])) or "–",
        ]
        for t in doc["targets"].values()
    ]
    note = (
        "Pass rate = passed / (passed + failed), with its Wilson 95% interval. A response passes when every check "
        "passes and every judged criterion reaches the case threshold. Errors (the target call failed) and unscored "
        "responses (the judge gave no usable score) are counted apart, never as a pass or a fail. Means carry a "
        "percentile-bootstrap 95% interval. Flags: outputs near-identical across cases (a constant answer can game "
        "the judge), high error, blocked or unscored shares, low availability."
    )
    return Section("summary", "Summary", header, rows, note, numeric=set(range(1, len(header) - 1)))


def criteria_section(doc: dict[str, Any]) -> Section | None:
    rows = []
    for t in doc["targets"].values():
        for c, s in t["criteria"].items():
            rows.append(
                [
                    t["target"],
                    c,
                    str(s["n"]),
                    mean_cell(s),
                    fmt(s["median"]),
                    fmt(s["std"]),
                    f"{fmt(s['min'])}–{fmt(s['max'])}",
                    str(s["unscored"]),
                    "–" if s.get("weighted_mean") is None else f"{fmt(s['weighted_mean'])} (n={s['weighted_n']})",
                ]
            )
    if not rows:
        return None
    header = ["target", "criterion", "n", "mean [95% CI]", "median", "sd", "range", "unscored", "logprob-weighted"]
    return Section("criteria", "Scores per criterion", header, rows, numeric={2, 3, 4, 5, 6, 7, 8})


def tags_section(doc: dict[str, Any]) -> Section | None:
    crits = criteria_names(doc)
    rows = []
    for t in doc["targets"].values():
        for tag, b in (t.get("tags") or {}).items():
            rows.append(
                [
                    tag,
                    t["target"],
                    str(b["responses"]),
                    rate_cell(b),
                    *[mean_cell(b["criteria"].get(c)) for c in crits],
                    str(b["errors"]),
                    str(b["unscored"]),
                ]
            )
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], r[1]))
    header = ["tag", "target", "responses", "pass rate [95% CI]", *[f"mean {c}" for c in crits], "errors", "unscored"]
    return Section("tags", "Per tag", header, rows, numeric=set(range(2, len(header))))


def pairwise_section(doc: dict[str, Any]) -> Section | None:
    entries = doc.get("pairwise") or []
    if not entries:
        return None
    rows = [
        [
            e["judge"],
            e["model"],
            e["opponent"],
            pct(e["win_rate"]),
            "–" if e["standard_error"] is None else f"{100 * e['standard_error']:.2f}",
            str(e["wins"]),
            str(e["losses"]),
            str(e["ties"]),
            str(e["n"]),
            str(e["unscored"]),
        ]
        for e in entries
    ]
    header = ["judge", "model", "opponent", "win rate", "SE (points)", "wins", "losses", "ties", "n", "unscored"]
    note = (
        "Win rate = mean score against the opponent, a tie counting half (graded preferences count as given); "
        "SE = sample standard deviation / sqrt(n), in percentage points."
    )
    return Section("pairwise", "Pairwise win rates", header, rows, note, numeric=set(range(3, 10)))


def ratings_section(doc: dict[str, Any]) -> Section | None:
    rows = [
        [judge, str(r["rank"]), r["model"], fmt(r["rating"], 0), ci(r["ci95"], 0).strip(), str(r["battles"])]
        for judge, ratings in (doc.get("bradley_terry") or {}).items()
        for r in ratings
    ]
    if not rows:
        return None
    note = (
        "Bradley-Terry maximum-likelihood ratings on the Elo scale (400 points = 10:1 odds, mean 1000), with "
        "percentile-bootstrap 95% intervals over resampled battles, as Chatbot Arena reports them."
    )
    header = ["judge", "rank", "model", "rating", "95% CI", "battles"]
    return Section("ratings", "Bradley-Terry ratings", header, rows, note, numeric={1, 3, 4, 5})


def cost_section(doc: dict[str, Any]) -> Section:
    rows = []
    for t in doc["targets"].values():
        cost = t["cost"]
        price = cost.get("price") or {}
        token_price = (
            f"${price['input']:g} / ${price['output']:g} per 1M" if "input" in price and "output" in price else "–"
        )
        gpu = f"${price['gpu_hour']:g} / GPU-hour" if "gpu_hour" in price else "–"
        rows.append(
            [
                t["target"],
                f"{t['tokens_in']} / {t['tokens_out']}",
                token_price,
                gpu,
                fmt(cost.get("throughput_per_s"), 2),
                usd(cost["usd_per_1000_cases"]),
                usd(cost["usd"]),
                str(price.get("source", "–")),
            ]
        )
    note = (
        "Cost per 1,000 cases: token-priced targets = tokens x price; self-hosted targets = GPU-hour price x the "
        "time this run's measured throughput needs for 1,000 cases (an upper bound: a busier server is cheaper "
        "per case)."
    )
    header = [
        "target",
        "tokens in / out",
        "token price (in / out)",
        "GPU price",
        "throughput (responses/s)",
        "$ / 1k cases",
        "$ this run",
        "price source",
    ]
    return Section("cost", "Cost", header, rows, note, numeric={1, 4, 5, 6})


def report_sections(doc: dict[str, Any]) -> list[Section]:
    """The report's tables, in reading order (coverage and per-case rows are drawn by each renderer)."""
    from reports.bench import bench_section  # reports.bench builds on this module

    benchmarks = bench_section(doc.get("bench") or [])
    if doc["run"].get("kind") == "bench":  # lm-eval metrics only: no response of its own to summarise
        return [benchmarks] if benchmarks is not None else []
    found = [
        summary_section(doc),
        benchmarks,
        criteria_section(doc),
        tags_section(doc),
        pairwise_section(doc),
        ratings_section(doc),
        cost_section(doc),
    ]
    return [s for s in found if s is not None]
