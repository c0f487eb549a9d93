"""Canary statistics: accuracy with ties as halves, Wilson intervals, the trust rule, and judge-vs-checks
agreement, on hand-made rows with hand-computed expected values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from reports.canaries import TRUST_RULE, agreement_with_checks, canary_summary, cohen_kappa
from reports.stats import wilson_ci


def pair(
    canary: str,
    good: float | None,
    bad: float | None,
    *,
    judge: str = "j",
    criterion: str = "preciseness",
    kind: str = "wrong_fact",
) -> list[dict[str, Any]]:
    rows = []
    for side, score in (("good", good), ("bad", bad)):
        rows.append(
            {
                "judge": judge,
                "canary_id": canary,
                "kind": kind,
                "criterion": criterion,
                "side": side,
                "score": score,
                "status": "scored" if score is not None else "unscored",
                "reason": None if score is not None else "no score in the judge's reply",
            }
        )
    return rows


def pairs(scores: Sequence[tuple[float | None, float | None]], **kw: Any) -> list[dict[str, Any]]:
    return [row for i, (g, b) in enumerate(scores) for row in pair(f"c{i:02d}", g, b, **kw)]


# --- Wilson ---------------------------------------------------------------------------------------------------


def test_wilson_interval_matches_known_values() -> None:
    assert wilson_ci(8, 10) == [0.4902, 0.9433]
    assert wilson_ci(20, 20) == [0.8389, 1.0]
    assert wilson_ci(0, 0) is None


def test_wilson_interval_takes_half_successes() -> None:
    low, high = wilson_ci(7.5, 10) or [0.0, 0.0]
    low7, high7 = wilson_ci(7, 10) or [0.0, 0.0]
    low8, high8 = wilson_ci(8, 10) or [0.0, 0.0]
    assert low7 < low < low8 and high7 < high < high8


# --- canary_summary -------------------------------------------------------------------------------------------


def test_accuracy_counts_ties_as_halves() -> None:
    rows = pairs([(5, 1)] * 6 + [(3, 3)] * 2 + [(2, 4)] * 2)
    block = canary_summary(rows)["judges"]["j"]["criteria"]["preciseness"]
    assert (block["n"], block["wins"], block["ties"], block["losses"]) == (10, 6, 2, 2)
    assert block["accuracy"] == 0.7  # (6 + 2/2) / 10
    assert block["ci95"] == [0.3968, 0.8922]  # Wilson 7 of 10
    assert block["mean_gap"] == pytest.approx((6 * 4 + 0 + 2 * -2) / 10)
    assert block["failed"] == ["c06", "c07", "c08", "c09"]
    assert block["unscored_pairs"] == 0


def test_a_perfect_judge_is_trusted() -> None:
    out = canary_summary(pairs([(5, 1)] * 20) + pairs([(5, 2)] * 20, criterion="instruction_following"))
    judge = out["judges"]["j"]
    assert judge["trusted"] is True and judge["reasons"] == []
    assert judge["criteria"]["preciseness"]["accuracy"] == 1.0
    assert judge["criteria"]["preciseness"]["ci95"] == [0.8389, 1.0]
    assert judge["criteria"]["instruction_following"]["mean_gap"] == 3.0
    assert out["trusted"] is True
    assert out["floor"] is None and out["rule"] == TRUST_RULE


def test_a_constant_judge_is_untrusted_with_a_reason() -> None:
    out = canary_summary(pairs([(3, 3)] * 30, criterion="instruction_following"))
    judge = out["judges"]["j"]
    block = judge["criteria"]["instruction_following"]
    assert block["accuracy"] == 0.5 and block["ties"] == 30 and block["mean_gap"] == 0.0
    assert len(block["failed"]) == 30  # good <= bad
    assert judge["trusted"] is False and out["trusted"] is False
    assert judge["reasons"] == [
        "instruction_following: canary accuracy 0.50, 95% CI [0.33, 0.67], not above chance (lower bound ≤ 0.5)"
    ]


def test_a_coin_flip_judge_is_untrusted() -> None:
    out = canary_summary(pairs([(5, 1), (1, 5)] * 10))
    block = out["judges"]["j"]["criteria"]["preciseness"]
    assert (block["wins"], block["losses"], block["accuracy"]) == (10, 10, 0.5)
    assert out["judges"]["j"]["trusted"] is False


def test_a_good_but_small_sample_is_not_above_chance() -> None:
    # 4 of 4 right: accuracy 1.0, but the Wilson lower bound (0.5101) barely clears 0.5; 3 of 3 does not (0.4385)
    assert canary_summary(pairs([(5, 1)] * 4))["trusted"] is True
    out = canary_summary(pairs([(5, 1)] * 3))
    assert out["trusted"] is False
    assert out["judges"]["j"]["criteria"]["preciseness"]["ci95"] == [0.4385, 1.0]


def test_the_floor_is_respected() -> None:
    rows = pairs([(5, 1)] * 18 + [(1, 5)] * 2)  # accuracy 0.9, Wilson [0.699, 0.972]
    assert canary_summary(rows)["trusted"] is True
    assert canary_summary(rows, floor=0.9)["trusted"] is True  # at the floor is enough
    out = canary_summary(rows, floor=0.95)
    assert out["floor"] == 0.95 and out["trusted"] is False
    assert out["judges"]["j"]["reasons"] == [
        "preciseness: canary accuracy 0.90, 95% CI [0.70, 0.97], below the floor 0.95"
    ]
    both = canary_summary(pairs([(3, 3)] * 10), floor=0.8)["judges"]["j"]["reasons"][0]
    assert both.endswith("not above chance (lower bound ≤ 0.5) and below the floor 0.80")
    with pytest.raises(ValueError):
        canary_summary(rows, floor=90)


def test_all_unscored_is_untrusted_and_unscored_pairs_are_counted() -> None:
    rows = pairs([(None, 1), (5, None), (None, None)])
    rows[0]["status"] = "error"
    out = canary_summary(rows)
    block = out["judges"]["j"]["criteria"]["preciseness"]
    assert block["n"] == 0 and block["unscored_pairs"] == 3
    assert block["accuracy"] is None and block["ci95"] is None and block["mean_gap"] is None
    assert out["trusted"] is False
    (reason,) = out["judges"]["j"]["reasons"]
    assert reason.startswith("preciseness: no canary was scored on both its good and its bad response (3 unscored)")
    # a scored side with a non-scored status does not count
    mixed = pairs([(5, 1)] * 20) + pair("x", 5, 1)
    mixed[-1]["status"] = "error"
    mixed_block = canary_summary(mixed)["judges"]["j"]["criteria"]["preciseness"]
    assert (mixed_block["n"], mixed_block["unscored_pairs"]) == (20, 1)


def test_one_untrusted_judge_makes_the_run_untrusted_and_judges_are_separate() -> None:
    rows = pairs([(5, 1)] * 20, judge="good-judge") + pairs([(3, 3)] * 20, judge="lazy-judge")
    out = canary_summary(rows)
    assert out["judges"]["good-judge"]["trusted"] is True
    assert out["judges"]["lazy-judge"]["trusted"] is False
    assert out["trusted"] is False
    assert list(out["judges"]) == ["good-judge", "lazy-judge"]


def test_one_untrusted_criterion_makes_the_judge_untrusted() -> None:
    rows = pairs([(5, 1)] * 20) + pairs([(4, 4)] * 20, criterion="instruction_following")
    judge = canary_summary(rows)["judges"]["j"]
    assert judge["trusted"] is False
    assert [r.split(":")[0] for r in judge["reasons"]] == ["instruction_following"]


def test_by_kind_pools_the_criteria() -> None:
    rows = (
        pairs([(5, 1)] * 4, kind="refusal")
        + [r | {"canary_id": "r" + r["canary_id"]} for r in pairs([(5, 1), (1, 5)], kind="truncated")]
        + pairs([(5, 1), (3, 3)], kind="refusal", criterion="instruction_following")
    )
    by_kind = canary_summary(rows)["judges"]["j"]["by_kind"]
    assert by_kind == {"refusal": {"n": 6, "accuracy": 0.9167}, "truncated": {"n": 2, "accuracy": 0.5}}


def test_repeated_scores_of_one_side_are_averaged() -> None:
    rows = pair("a", 5, 4) + pair("a", 3, None)  # good 5 and 3 -> 4; bad 4 -> a tie
    block = canary_summary(rows)["judges"]["j"]["criteria"]["preciseness"]
    assert (block["n"], block["ties"], block["mean_gap"]) == (1, 1, 0.0)


def test_no_rows_is_not_trusted() -> None:
    assert canary_summary([]) == {"floor": None, "judges": {}, "trusted": False, "rule": TRUST_RULE}


# --- agreement_with_checks ------------------------------------------------------------------------------------


def check_rows(judge: str, data: Sequence[tuple[float, bool]], criterion: str = "preciseness") -> list[dict[str, Any]]:
    return [{"judge": judge, "criterion": criterion, "score": s, "threshold": 4, "checks_passed": ok} for s, ok in data]


def test_agreement_kappa_and_means_by_hand() -> None:
    # judge pass (score >= 4) vs checks: TT, TT, FF, FF, TF, FT -> agreement 4/6; both pass rates 1/2 -> chance
    # agreement 1/2 -> kappa (2/3 - 1/2) / (1/2) = 1/3
    rows = check_rows("a", [(5, True), (4, True), (2, False), (1, False), (5, False), (3, True)])
    out = agreement_with_checks(rows)
    block = out["judges"]["a"]
    assert block["n"] == 6
    assert block["agreement"] == 0.6667
    assert block["kappa"] == 0.3333
    assert block["mean_score_checks_failed"] == 2.6667  # (2 + 1 + 5) / 3
    assert block["mean_score_checks_passed"] == 4.0  # (5 + 4 + 3) / 3
    assert (block["n_checks_failed"], block["n_checks_passed"]) == (3, 3)
    assert block["suspect"] is False and block["note"] is None
    assert out["suspect"] is False
    assert block["criteria"]["preciseness"]["kappa"] == 0.3333


def test_a_judge_that_scores_failures_as_high_is_suspect() -> None:
    # failed: 5, 5, 4 (mean 4.6667); passed: 4, 4, 5 (4.3333); every score passes -> agreement 1/2, kappa 0
    rows = check_rows("b", [(5, False), (5, False), (4, False), (4, True), (4, True), (5, True)])
    out = agreement_with_checks(rows)
    block = out["judges"]["b"]
    assert block["agreement"] == 0.5 and block["kappa"] == 0.0
    assert block["suspect"] is True and out["suspect"] is True
    assert block["note"] == (
        "b scores responses that fail the deterministic checks 4.67 on average (n=3), no lower than those that "
        "pass them (4.33, n=3): its scores do not track what the checks catch"
    )


def test_equal_means_are_suspect_too() -> None:
    rows = check_rows("c", [(3, False)] * 3 + [(3, True)] * 3)
    assert agreement_with_checks(rows)["judges"]["c"]["suspect"] is True


def test_too_few_responses_are_not_suspect_but_say_so() -> None:
    rows = check_rows("d", [(5, False), (5, False), (1, True), (1, True), (1, True)])
    block = agreement_with_checks(rows)["judges"]["d"]
    assert block["suspect"] is False
    assert "too few responses" in block["note"] and "2 failed and 3 passed" in block["note"]


def test_kappa_is_undefined_when_both_raters_give_one_label() -> None:
    rows = check_rows("e", [(5, True)] * 4)
    block = agreement_with_checks(rows)["judges"]["e"]
    assert block["agreement"] == 1.0 and block["kappa"] is None
    assert cohen_kappa([], []) is None
    assert cohen_kappa([True, False], [True, False]) == 1.0
    assert cohen_kappa([True, False], [False, True]) == -1.0


def test_agreement_is_per_judge_and_per_criterion() -> None:
    rows = check_rows("a", [(5, True)] * 3 + [(1, False)] * 3) + check_rows(
        "a", [(5, False)] * 3 + [(1, True)] * 3, criterion="instruction_following"
    )
    block = agreement_with_checks(rows)["judges"]["a"]
    assert block["n"] == 12 and block["agreement"] == 0.5
    assert block["criteria"]["preciseness"]["kappa"] == 1.0
    assert block["criteria"]["preciseness"]["suspect"] is False
    assert block["criteria"]["instruction_following"]["kappa"] == -1.0
    assert block["criteria"]["instruction_following"]["suspect"] is True
    assert block["criteria"]["instruction_following"]["note"].startswith("a (instruction_following) scores")
