"""Pairwise results from a run's pairwise verdicts (pairwise judging, or an import): win rate of every model
against every opponent, and Bradley-Terry ratings when three or more models meet.

A pair is (suite, case_id, sample, model_a, model_b) under one judge. Its score for model_b is:
  * with graded preferences (AlpacaEval: `preference` in [1, 2]): the mean of preference - 1 over its rows;
  * otherwise from its verdicts in the a/b frame: judged in both orders, a win only when both orders name the
    same winner, else a tie (a tie or an unscored verdict in either order makes it a tie, as
    judges/reliability.py counts); judged in one order, that order's verdict;
  * a pair with no usable verdict is unscored: counted, never scored.
Model_a's score is 1 - model_b's. Win rate = mean score (ties count half); standard error = sample sd / sqrt(n).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from reports.stats import bradley_terry, win_rate

PairKey = tuple[str, str, str, int, str, str]  # judge, suite, case_id, sample, model_a, model_b
_SCORE_B = {"a": 0.0, "b": 1.0, "tie": 0.5}


def pair_scores(rows: list[dict[str, Any]]) -> tuple[dict[PairKey, float], dict[PairKey, int]]:
    """Each pair's score for model_b, and the pairs without a usable verdict (value: their row count)."""
    grouped: dict[PairKey, list[dict[str, Any]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: int(r.get("id") or 0)):
        key = (row["judge"], row["suite"], row["case_id"], int(row["sample"]), row["model_a"], row["model_b"])
        grouped[key].append(row)
    scores: dict[PairKey, float] = {}
    unscored: dict[PairKey, int] = {}
    for key, pair_rows in grouped.items():
        prefs = [float(r["preference"]) for r in pair_rows if r.get("preference") is not None]
        if prefs:
            scores[key] = sum(p - 1.0 for p in prefs) / len(prefs)
            continue
        last = {r["first"]: str(r.get("winner")) for r in pair_rows}  # the last verdict per order counts
        verdicts = [last[o] for o in ("a", "b") if o in last]
        if all(v not in _SCORE_B for v in verdicts):
            unscored[key] = len(pair_rows)
        elif len(verdicts) == 2:
            scores[key] = _SCORE_B[verdicts[0]] if verdicts[0] == verdicts[1] and verdicts[0] in ("a", "b") else 0.5
        else:
            scores[key] = _SCORE_B[verdicts[0]]
    return scores, unscored


def pairwise_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (judge, model, opponent), both directions: win_rate (0-1), standard_error, wins, losses,
    ties, n (scored pairs) and unscored (pairs without a usable verdict). Sorted by judge, model, opponent."""
    scores, unscored = pair_scores(rows)
    by_match: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    missing: dict[tuple[str, str, str], int] = defaultdict(int)
    for (judge, _, _, _, a, b), s in scores.items():
        by_match[(judge, b, a)].append(s)
        by_match[(judge, a, b)].append(1.0 - s)
    for judge, _, _, _, a, b in unscored:
        missing[(judge, b, a)] += 1
        missing[(judge, a, b)] += 1
    out = []
    for judge, model, opponent in sorted(set(by_match) | set(missing)):
        entry = win_rate(by_match.get((judge, model, opponent), []))
        out.append(
            {
                "judge": judge,
                "model": model,
                "opponent": opponent,
                **entry,
                "unscored": missing[(judge, model, opponent)],
            }
        )
    return out


def ratings(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per judge with three or more models: Bradley-Terry ratings (Elo scale) with bootstrap 95% CIs."""
    scores, _ = pair_scores(rows)
    battles: dict[str, list[tuple[str, str, float]]] = defaultdict(list)
    for (judge, _, _, _, a, b), s in scores.items():
        battles[judge].append((a, b, 1.0 - s))
    out = {}
    for judge, games in sorted(battles.items()):
        if len({m for a, b, _ in games for m in (a, b)}) >= 3:
            out[judge] = bradley_terry(games)
    return out
