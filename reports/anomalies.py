"""Anomaly flags per target, for every page that ranks targets (failover, the run report).

A high judge score is not proof of a good model: a constant answer the judge happens to like, a long answer the
judge favours, or a target that mostly errors or goes unscored can all rank well on the few rows that scored.
Each flag is {"code", "message", "value", "threshold"}; the message states the figure.

  near_identical_outputs  the target says the same thing whatever the case: over one response per case (the first
                          sample), the share equal to the most common answer after case and whitespace folding is
                          >= NEAR_IDENTICAL_SHARE, or the mean difflib similarity of pairs of answers (up to
                          SIMILARITY_SAMPLE answers, each cut to SIMILARITY_CHARS characters) is >=
                          NEAR_IDENTICAL_SIMILARITY. Needs MIN_CASES distinct cases answered.
  length_far_from_primary the median, over cases both answered, of len(target) / len(primary) (characters) is outside
                          LENGTH_RATIO_BOUNDS; judges favour longer answers. Only with a primary.
  high_error / high_blocked / high_unscored
                          the share of the target's responses whose status is error / blocked, or whose verdict is
                          unscored (the judge gave no usable score), is > HIGH_SHARE.
  low_availability        answered (ok or blocked) / requested < MIN_AVAILABILITY.
"""

from __future__ import annotations

import difflib
import itertools
import re
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

Flag = dict[str, Any]
Row = Mapping[str, Any]

NEAR_IDENTICAL_SHARE = 0.5
NEAR_IDENTICAL_SIMILARITY = 0.9
MIN_CASES = 3
SIMILARITY_SAMPLE = 20
SIMILARITY_CHARS = 500
LENGTH_RATIO_BOUNDS = (0.5, 2.0)
HIGH_SHARE = 0.10
MIN_AVAILABILITY = 0.90

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case folded, whitespace collapsed, trimmed."""
    return _SPACE.sub(" ", text).strip().casefold()


def _flag(code: str, message: str, value: float, threshold: float | list[float]) -> Flag:
    return {"code": code, "message": message, "value": round(value, 4), "threshold": threshold}


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def answers_per_case(rows: Sequence[Row]) -> dict[tuple[str, str], str]:
    """One answered text per (suite, case_id): the lowest sample's."""
    best: dict[tuple[str, str], tuple[int, str]] = {}
    for r in rows:
        if r.get("status") != "ok" or r.get("text") is None:
            continue
        key = (str(r["suite"]), str(r["case_id"]))
        sample = int(r.get("sample") or 0)
        if key not in best or sample < best[key][0]:
            best[key] = (sample, str(r["text"]))
    return {k: v[1] for k, v in sorted(best.items())}


def output_similarity(rows: Sequence[Row]) -> dict[str, Any]:
    """How alike a target's answers to different cases are: cases, modal_share (share equal to the most common
    normalised answer), mean_similarity (mean difflib ratio over pairs of a deterministic sample of answers)."""
    texts = [normalise(t) for t in answers_per_case(rows).values()]
    n = len(texts)
    if n < 2:
        return {"cases": n, "modal_share": None, "mean_similarity": None}
    modal = Counter(texts).most_common(1)[0][1] / n
    step = max(1, n // SIMILARITY_SAMPLE)
    picked = [t[:SIMILARITY_CHARS] for t in texts[::step][:SIMILARITY_SAMPLE]]
    ratios = [difflib.SequenceMatcher(None, a, b).ratio() for a, b in itertools.combinations(picked, 2)]
    return {"cases": n, "modal_share": round(modal, 4), "mean_similarity": round(statistics.fmean(ratios), 4)}


def median_length_ratio(rows: Sequence[Row], primary_rows: Sequence[Row]) -> float | None:
    """Median over the cases both answered of len(answer) / len(primary's answer); None with no such case."""
    mine, theirs = answers_per_case(rows), answers_per_case(primary_rows)
    ratios = [len(mine[k]) / len(theirs[k]) for k in mine.keys() & theirs.keys() if theirs[k]]
    return round(statistics.median(ratios), 4) if ratios else None


def _shares(rows: Sequence[Row]) -> dict[str, float]:
    n = len(rows)
    statuses = Counter(str(r.get("status")) for r in rows)
    unscored = sum(1 for r in rows if r.get("verdict") == "unscored")
    return {
        "error": statuses["error"] / n,
        "blocked": statuses["blocked"] / n,
        "unscored": unscored / n,
        "availability": (statuses["ok"] + statuses["blocked"]) / n,
    }


def flags_for(rows: Sequence[Row], primary_rows: Sequence[Row] | None = None) -> list[Flag]:
    """The flags of one target's response rows (rows as reports.summary.case_rows gives them: status, verdict,
    text, suite, case_id, sample); `primary_rows` enables the length comparison."""
    if not rows:
        return []
    out: list[Flag] = []
    sim = output_similarity(rows)
    if sim["cases"] >= MIN_CASES:
        if sim["modal_share"] >= NEAR_IDENTICAL_SHARE:
            out.append(
                _flag(
                    "near_identical_outputs",
                    f"{_pct(sim['modal_share'])} of {sim['cases']} cases get the same answer "
                    f"(threshold {_pct(NEAR_IDENTICAL_SHARE)})",
                    sim["modal_share"],
                    NEAR_IDENTICAL_SHARE,
                )
            )
        elif sim["mean_similarity"] >= NEAR_IDENTICAL_SIMILARITY:
            out.append(
                _flag(
                    "near_identical_outputs",
                    f"answers to different cases are {_pct(sim['mean_similarity'])} similar on average "
                    f"over {sim['cases']} cases (threshold {_pct(NEAR_IDENTICAL_SIMILARITY)})",
                    sim["mean_similarity"],
                    NEAR_IDENTICAL_SIMILARITY,
                )
            )
    if primary_rows is not None:
        ratio = median_length_ratio(rows, primary_rows)
        low, high = LENGTH_RATIO_BOUNDS
        if ratio is not None and not low <= ratio <= high:
            out.append(
                _flag(
                    "length_far_from_primary",
                    f"median answer length is {ratio:.2f}x the primary's (expected {low}-{high}x; judges favour "
                    "longer answers)",
                    ratio,
                    [low, high],
                )
            )
    shares = _shares(rows)
    for code, key, what in (
        ("high_error", "error", "responses failed (error)"),
        ("high_blocked", "blocked", "responses were blocked"),
        ("high_unscored", "unscored", "responses got no usable judge score (unscored)"),
    ):
        if shares[key] > HIGH_SHARE:
            out.append(_flag(code, f"{_pct(shares[key])} of {len(rows)} {what}", shares[key], HIGH_SHARE))
    if shares["availability"] < MIN_AVAILABILITY:
        out.append(
            _flag(
                "low_availability",
                f"availability {_pct(shares['availability'])} (answered / requested; minimum {_pct(MIN_AVAILABILITY)})",
                shares["availability"],
                MIN_AVAILABILITY,
            )
        )
    return out


def target_flags(rows_by_target: Mapping[str, Sequence[Row]], primary: str | None = None) -> dict[str, list[Flag]]:
    """Flags for every target; with a `primary` (one of the targets), the others' lengths are compared to it."""
    primary_rows = rows_by_target.get(primary) if primary is not None else None
    return {
        target: flags_for(rows, None if target == primary else primary_rows) for target, rows in rows_by_target.items()
    }


def flag_codes(flags: Sequence[Flag]) -> list[str]:
    return [str(f["code"]) for f in flags]
