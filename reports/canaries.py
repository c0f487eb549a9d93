"""Judge canaries and judge-vs-checks agreement: is a judge's scoring worth trusting in this run?

`canary_summary` takes one row per canary judgment (a judge scoring the `good` or the `bad` response of one canary
on one criterion; see judges/canaries.py) and reports, per judge and criterion, how often the judge scored `good`
above `bad` (its canary accuracy, ties counted as half a win) with a 95% Wilson interval, the mean score gap, and
whether the judge can be trusted. A judge is trusted on a criterion when the lower end of the interval is above
0.5 (better than a coin) and the accuracy reaches the user's floor, when one is set.

`agreement_with_checks` compares a judge's pass/fail (score >= threshold) with the deterministic checks on the
responses that have both, and flags a judge that scores check-failing responses no lower than check-passing ones.

Both are pure functions on plain rows; nothing here reads the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reports.stats import wilson_ci

TRUST_RULE = (
    "a judge is trusted on a criterion when the lower end of the 95% Wilson interval of its canary accuracy is "
    "above 0.5 and its accuracy is at least the floor (when set); a judge untrusted on any criterion makes every "
    "judge-based figure of the run untrustworthy"
)
CHANCE = 0.5
MIN_PER_GROUP = 3  # responses needed on each side (checks passed / failed) before a judge can be called suspect


def _r(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


def _side_scores(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str, str], dict[str, list[float]]]:
    """(judge, criterion, canary id) -> side -> the scores of that side's scored rows."""
    scores: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for row in rows:
        key = (str(row["judge"]), str(row["criterion"]), str(row["canary_id"]))
        sides = scores.setdefault(key, {"good": [], "bad": []})
        side = row["side"]
        if side not in ("good", "bad"):
            raise ValueError(f"canary row side must be 'good' or 'bad', got {side!r}")
        if row.get("status") == "scored" and row.get("score") is not None:
            sides[side].append(float(row["score"]))
    return scores


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def _criterion_block(pairs: list[tuple[str, float, float]], unscored: int) -> dict[str, Any]:
    """pairs: (canary id, good score, bad score) with both sides scored."""
    n = len(pairs)
    wins = sum(1 for _, g, b in pairs if g > b)
    ties = sum(1 for _, g, b in pairs if g == b)
    losses = n - wins - ties
    successes = wins + ties / 2
    return {
        "n": n,
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "accuracy": _r(successes / n) if n else None,
        "ci95": wilson_ci(successes, n),
        "mean_gap": _r(sum(g - b for _, g, b in pairs) / n) if n else None,
        "unscored_pairs": unscored,
        "failed": sorted(cid for cid, g, b in pairs if g <= b),
    }


def _untrusted_reason(criterion: str, block: Mapping[str, Any], floor: float | None) -> str | None:
    if block["n"] == 0:
        return (
            f"{criterion}: no canary was scored on both its good and its bad response "
            f"({block['unscored_pairs']} unscored), so nothing shows the judge tells them apart"
        )
    accuracy, (low, high) = block["accuracy"], block["ci95"]
    stats = f"canary accuracy {_fmt(accuracy)}, 95% CI [{_fmt(low)}, {_fmt(high)}]"
    problems = []
    if low <= CHANCE:
        problems.append("not above chance (lower bound ≤ 0.5)")
    if floor is not None and accuracy < floor:
        problems.append(f"below the floor {_fmt(floor)}")
    if not problems:
        return None
    return f"{criterion}: {stats}, {' and '.join(problems)}"


def canary_summary(rows: Iterable[Mapping[str, Any]], floor: float | None = None) -> dict[str, Any]:
    """Canary accuracy per judge and criterion, and whether each judge (and so the run) can be trusted.

    Each row: {"judge", "canary_id", "kind", "criterion", "side": "good"|"bad", "score": float|None,
    "status": "scored"|"unscored"|"error", "reason": str|None}. A pair counts when both of its sides were scored
    (several scored rows of one side, e.g. repeated judging, are averaged); otherwise it is an unscored pair.
    Accuracy = (wins + ties / 2) / n, where a win is good scored above bad; `failed` lists the canaries where
    good <= bad. With no rows at all the run is not trusted: nothing shows its judges work."""
    if floor is not None and not 0.0 <= floor <= 1.0:
        raise ValueError(f"the canary floor is a proportion between 0 and 1, got {floor}")
    rows = list(rows)
    scores = _side_scores(rows)
    kinds: dict[str, str] = {}
    for row in rows:
        kinds.setdefault(str(row["canary_id"]), str(row.get("kind") or "unknown"))

    by_judge: dict[str, dict[str, list[tuple[str, float, float]]]] = {}
    unscored: dict[tuple[str, str], int] = {}
    for (judge, criterion, canary), sides in sorted(scores.items()):
        crit_pairs = by_judge.setdefault(judge, {}).setdefault(criterion, [])
        unscored.setdefault((judge, criterion), 0)
        if sides["good"] and sides["bad"]:
            good = sum(sides["good"]) / len(sides["good"])
            bad = sum(sides["bad"]) / len(sides["bad"])
            crit_pairs.append((canary, good, bad))
        else:
            unscored[(judge, criterion)] += 1

    judges: dict[str, Any] = {}
    for judge in sorted(by_judge):
        criteria: dict[str, Any] = {}
        reasons: list[str] = []
        kind_pairs: dict[str, list[tuple[str, float, float]]] = {}
        for criterion in sorted(by_judge[judge]):
            pairs = by_judge[judge][criterion]
            block = _criterion_block(pairs, unscored[(judge, criterion)])
            criteria[criterion] = block
            reason = _untrusted_reason(criterion, block, floor)
            block["trusted"] = reason is None
            if reason is not None:
                reasons.append(reason)
            for pair in pairs:
                kind_pairs.setdefault(kinds.get(pair[0], "unknown"), []).append(pair)
        by_kind = {}
        for kind in sorted(kind_pairs):
            block = _criterion_block(kind_pairs[kind], 0)
            by_kind[kind] = {"n": block["n"], "accuracy": block["accuracy"]}
        judges[judge] = {"criteria": criteria, "by_kind": by_kind, "trusted": not reasons, "reasons": reasons}
    return {
        "floor": floor,
        "judges": judges,
        "trusted": bool(judges) and all(j["trusted"] for j in judges.values()),
        "rule": TRUST_RULE,
    }


def _mean(values: list[float]) -> float | None:
    return _r(sum(values) / len(values)) if values else None


def cohen_kappa(a: list[bool], b: list[bool]) -> float | None:
    """Cohen's kappa of two binary ratings of the same items; None when it is undefined (no items, or both
    raters give one single label to everything, so chance agreement is 1)."""
    n = len(a)
    if n == 0 or n != len(b):
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pa, pb = sum(a) / n, sum(b) / n
    expected = pa * pb + (1 - pa) * (1 - pb)
    if expected >= 1.0:
        return None
    return _r((observed - expected) / (1 - expected))


def _agreement_block(rows: list[Mapping[str, Any]], judge: str) -> dict[str, Any]:
    judge_pass = [float(r["score"]) >= float(r["threshold"]) for r in rows]
    checks_pass = [bool(r["checks_passed"]) for r in rows]
    n = len(rows)
    failed_scores = [float(r["score"]) for r in rows if not r["checks_passed"]]
    passed_scores = [float(r["score"]) for r in rows if r["checks_passed"]]
    mean_failed, mean_passed = _mean(failed_scores), _mean(passed_scores)
    enough = len(failed_scores) >= MIN_PER_GROUP and len(passed_scores) >= MIN_PER_GROUP
    suspect = enough and mean_failed is not None and mean_passed is not None and mean_failed >= mean_passed
    if suspect:
        note = (
            f"{judge} scores responses that fail the deterministic checks {_fmt(mean_failed or 0.0)} on average "
            f"(n={len(failed_scores)}), no lower than those that pass them ({_fmt(mean_passed or 0.0)}, "
            f"n={len(passed_scores)}): its scores do not track what the checks catch"
        )
    elif not enough:
        note = (
            f"too few responses to tell whether {judge} tracks the checks: {len(failed_scores)} failed and "
            f"{len(passed_scores)} passed them (at least {MIN_PER_GROUP} of each needed)"
        )
    else:
        note = None
    return {
        "n": n,
        "agreement": _r(sum(j == c for j, c in zip(judge_pass, checks_pass, strict=True)) / n) if n else None,
        "kappa": cohen_kappa(judge_pass, checks_pass),
        "n_checks_failed": len(failed_scores),
        "n_checks_passed": len(passed_scores),
        "mean_score_checks_failed": mean_failed,
        "mean_score_checks_passed": mean_passed,
        "suspect": suspect,
        "note": note,
    }


def agreement_with_checks(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per judge, how its verdicts agree with the deterministic checks on responses that have both.

    Each row: {"judge", "criterion", "score": float, "threshold": int, "checks_passed": bool}. The judge passes a
    response on a criterion when score >= threshold. Per judge (all criteria together, and per criterion): n, the
    agreement rate with the checks, Cohen's kappa, the mean judge score on check-failed and on check-passed
    responses, and `suspect` when the former is not below the latter (with at least 3 of each), with a note."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(str(row["judge"]), []).append(row)
    out: dict[str, Any] = {}
    for judge in sorted(grouped):
        judge_rows = grouped[judge]
        block = _agreement_block(judge_rows, judge)
        per_criterion: dict[str, list[Mapping[str, Any]]] = {}
        for row in judge_rows:
            per_criterion.setdefault(str(row["criterion"]), []).append(row)
        block["criteria"] = {
            criterion: _agreement_block(per_criterion[criterion], f"{judge} ({criterion})")
            for criterion in sorted(per_criterion)
        }
        out[judge] = block
    return {"judges": out, "suspect": any(b["suspect"] for b in out.values())}
