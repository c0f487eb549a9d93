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


UNTRUSTED_MARK = " ⚠"
UNTRUSTED_NOTE = (
    "⚠ marks a judge-based figure of a run whose judge failed its canaries (see Judge reliability): it is not "
    "trustworthy. Deterministic checks are unaffected."
)


def judge_untrusted(doc: dict[str, Any]) -> bool:
    """True when a judge of the run failed its canaries: every judge-based figure is then untrustworthy."""
    return (doc.get("judging") or {}).get("trusted") is False


def rubric_judged(doc: dict[str, Any]) -> bool:
    judging = doc.get("judging") or {}
    return bool(judging.get("judges")) and judging.get("mode") != "pairwise"


def judged_cell(doc: dict[str, Any], text: str) -> str:
    """A judge-based cell, marked when the judge is untrusted."""
    return text + UNTRUSTED_MARK if judge_untrusted(doc) and text != "–" else text


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
            judged_cell(doc, rate_cell(t)) if rubric_judged(doc) else rate_cell(t),
            f"{t['passed']} / {t['evaluated']}",
            *[judged_cell(doc, mean_cell(t["criteria"].get(c))) for c in crits],
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
    if judge_untrusted(doc):
        note = UNTRUSTED_NOTE + " " + note
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
                    judged_cell(doc, mean_cell(s)),
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
    note = UNTRUSTED_NOTE if judge_untrusted(doc) else ""
    return Section("criteria", "Scores per criterion", header, rows, note, numeric={2, 3, 4, 5, 6, 7, 8})


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
                    judged_cell(doc, rate_cell(b)) if rubric_judged(doc) else rate_cell(b),
                    *[judged_cell(doc, mean_cell(b["criteria"].get(c))) for c in crits],
                    str(b["errors"]),
                    str(b["unscored"]),
                ]
            )
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], r[1]))
    header = ["tag", "target", "responses", "pass rate [95% CI]", *[f"mean {c}" for c in crits], "errors", "unscored"]
    return Section("tags", "Per tag", header, rows, numeric=set(range(2, len(header))))


def checks_section(doc: dict[str, Any]) -> Section | None:
    """Pass rates of the deterministic checks alone (no judge involved), per target overall and per suite."""
    rows = []
    for t in doc["targets"].values():
        checks = t.get("checks") or {}
        if checks.get("evaluated"):
            rows.append([t["target"], "all suites", rate_cell(checks), f"{checks['passed']} / {checks['evaluated']}"])
    for c in doc.get("coverage", []):
        checks = c.get("checks") or {}
        if checks.get("evaluated"):
            rows.append([c["target"], c["suite"], rate_cell(checks), f"{checks['passed']} / {checks['evaluated']}"])
    if not rows:
        return None
    note = (
        "Share of answered responses whose deterministic checks (regex, JSON, exact match, word limits, ...) all "
        "pass, with its Wilson 95% interval; responses without checks are not counted. No judge is involved: "
        "these figures hold whatever the judge's reliability."
    )
    header = ["target", "suite", "checks pass rate [95% CI]", "passed / with checks"]
    return Section("checks", "Deterministic checks", header, rows, note, numeric={2, 3})


def canaries_section(doc: dict[str, Any]) -> Section | None:
    """Per judge and criterion: canary accuracy with its interval, the mean score gap, and the verdict."""
    canaries = (doc.get("judging") or {}).get("canaries")
    if not canaries:
        return None
    rows = []
    for judge, block in canaries.get("judges", {}).items():
        for criterion, c in block.get("criteria", {}).items():
            rows.append(
                [
                    judge,
                    criterion,
                    str(c["n"]),
                    pct(c["accuracy"]) + ci(c["ci95"], percent=True),
                    fmt(c["mean_gap"]),
                    f"{c['wins']} / {c['ties']} / {c['losses']}",
                    str(c["unscored_pairs"]),
                    "trusted" if c.get("trusted", block.get("trusted")) else "NOT TRUSTED",
                ]
            )
    reasons = [f"{j}: {r}" for j, b in canaries.get("judges", {}).items() for r in b.get("reasons", [])]
    identity = canaries.get("set") or {}
    verdict = (
        "Every judge passed its canaries."
        if canaries.get("trusted")
        else "NOT TRUSTWORTHY: "
        + ("; ".join(reasons) or "no canary was scored")
        + ". Every judge-based figure of this run is marked ⚠."
    )
    note = (
        f"{verdict} Each judge scored the known-good and the known-bad response of every canary "
        f"({identity.get('canaries', 'canaries')}@{identity.get('version', '?')}, {identity.get('items', '?')} items). "
        "Accuracy = share of canaries where the good response scored above the bad one (ties count half), with "
        "its Wilson 95% interval; gap = mean(good - bad). Rule: "
        + str(canaries.get("rule", ""))
        + (f" Floor: {canaries['floor']:g}." if canaries.get("floor") is not None else "")
    )
    header = [
        "judge",
        "criterion",
        "canaries",
        "accuracy [95% CI]",
        "mean gap",
        "wins / ties / losses",
        "unscored",
        "verdict",
    ]
    return Section("canaries", "Judge reliability (canaries)", header, rows, note, numeric={2, 3, 4, 6})


def agreement_section(doc: dict[str, Any]) -> Section | None:
    """Judge scores against the deterministic checks on the same responses: a judge that scores failed checks
    high is suspect."""
    agreement = (doc.get("judging") or {}).get("agreement_with_checks")
    if not agreement:
        return None
    rows = [
        [
            judge,
            str(a["n"]),
            pct(a["agreement"]),
            fmt(a["kappa"]),
            f"{fmt(a['mean_score_checks_passed'])} (n={a['n_checks_passed']})",
            f"{fmt(a['mean_score_checks_failed'])} (n={a['n_checks_failed']})",
            "SUSPECT" if a["suspect"] else "–",
            str(a.get("note") or ""),
        ]
        for judge, a in agreement.get("judges", {}).items()
    ]
    note = (
        "Over responses that have both deterministic checks and a judge score, per judged criterion: agreement = "
        "share where 'score reaches the threshold' equals 'checks pass'; Cohen's kappa corrects it for chance. A "
        "judge whose mean score on responses failing their checks is not below its mean on those passing is "
        "suspect."
    )
    header = [
        "judge",
        "scores",
        "agreement",
        "kappa",
        "mean score, checks pass",
        "mean score, checks fail",
        "suspect",
        "note",
    ]
    return Section("agreement", "Judge vs deterministic checks", header, rows, note, numeric={1, 2, 3})


def training_section(doc: dict[str, Any]) -> Section | None:
    """Fine-tunes whose training logs were attached to the report (`harness report --training-log`)."""
    logs = doc.get("training") or {}
    rows = []
    for target, log in logs.items():
        val = log.get("validation") or []
        steps = log.get("steps") or []
        settings = log.get("settings") or {}
        rows.append(
            [
                target,
                str(len(steps)),
                str(log.get("train_examples", "–")),
                str(log.get("val_examples", "–")),
                fmt(steps[-1]["train_loss"], 3) if steps else "–",
                f"{fmt(val[0]['val_loss'], 3)} → {fmt(val[-1]['val_loss'], 3)}" if val else "–",
                f"LoRA r={settings.get('rank', '?')}, lr {settings.get('lr', '?')}, batch {settings.get('batch', '?')}",
                fmt(log.get("seconds"), 0) + " s",
            ]
        )
    if not rows:
        return None
    note = "Validation loss on held-out examples of the training set (never the evaluation cases), before and after."
    header = ["target", "steps", "train examples", "held-out", "last train loss", "validation loss", "settings", "time"]
    return Section("training", "Fine-tune training", header, rows, note, numeric={1, 2, 3, 4})


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
        canaries_section(doc) if judge_untrusted(doc) else None,  # an untrusted judge is said first
        summary_section(doc),
        checks_section(doc),
        benchmarks,
        canaries_section(doc) if not judge_untrusted(doc) else None,
        agreement_section(doc),
        criteria_section(doc),
        tags_section(doc),
        pairwise_section(doc),
        ratings_section(doc),
        cost_section(doc),
        training_section(doc),
    ]
    return [s for s in found if s is not None]
