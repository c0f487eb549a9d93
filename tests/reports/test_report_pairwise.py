"""Pairwise figures in the run report: win rate per model and opponent (ties half, a win only when both orders
agree), its standard error, and Bradley-Terry ratings once three models meet; the same in every format."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner

from harness.cli import cli
from reports.pairwise import pair_scores, pairwise_table

STRENGTH = {"strong": 4.0, "middle": 1.0, "weak": 0.25}


def verdict_lines(seed: int = 7, per_pair: int = 60) -> list[dict[str, Any]]:
    """Both orders of every pair of the three models; the judge prefers the stronger model by BT odds and
    sometimes disagrees with itself across orders (which must count as a tie)."""
    rng = random.Random(seed)
    out = []
    models = sorted(STRENGTH)
    for i, a in enumerate(models):
        for b in models[i + 1 :]:
            for k in range(per_pair):
                p_b = STRENGTH[b] / (STRENGTH[a] + STRENGTH[b])
                for first in ("a", "b"):
                    winner = "b" if rng.random() < p_b else "a"
                    out.append(
                        {"case_id": f"q{k}", "model_a": a, "model_b": b, "judge": "j", "first": first, "winner": winner}
                    )
    return out


def imported_run(tmp_path: Path, lines: list[dict[str, Any]]) -> tuple[Path, str]:
    src = tmp_path / "verdicts.jsonl"
    src.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    db = tmp_path / "r.db"
    res = CliRunner().invoke(cli, ["import", "pairwise-jsonl", str(src), "--db", str(db), "--format", "json"])
    assert res.exit_code == 0, res.output
    return db, json.loads(res.output)["run_id"]


def hand_scores(lines: list[dict[str, Any]], model: str, opponent: str) -> list[float]:
    """Score of `model` per pair against `opponent`, by the stated rule, computed without the harness."""
    pairs: dict[tuple[str, str, str], dict[str, str]] = {}
    for x in lines:
        pairs.setdefault((x["case_id"], x["model_a"], x["model_b"]), {})[x["first"]] = x["winner"]
    out = []
    for (_, a, b), orders in pairs.items():
        if {a, b} != {model, opponent}:
            continue
        side = "a" if a == model else "b"
        agreed = orders["a"] if orders["a"] == orders["b"] else None
        out.append(0.5 if agreed is None else 1.0 if agreed == side else 0.0)
    return out


def test_report_gives_win_rates_with_standard_errors_and_bradley_terry(tmp_path: Path) -> None:
    lines = verdict_lines()
    db, run_id = imported_run(tmp_path, lines)
    res = CliRunner().invoke(cli, ["report", run_id, "--db", str(db), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    entries = {(e["model"], e["opponent"]): e for e in doc["pairwise"]}
    assert len(entries) == 6
    for (model, opponent), e in entries.items():
        scores = hand_scores(lines, model, opponent)
        assert e["n"] == len(scores) == 60
        assert math.isclose(e["win_rate"], statistics.fmean(scores), abs_tol=1e-6)
        assert math.isclose(e["standard_error"], statistics.stdev(scores) / math.sqrt(60), abs_tol=1e-6)
        assert e["wins"] == scores.count(1.0) and e["losses"] == scores.count(0.0) and e["ties"] == scores.count(0.5)
        reverse = entries[(opponent, model)]
        assert (reverse["wins"], reverse["losses"], reverse["ties"]) == (e["losses"], e["wins"], e["ties"])
    ratings = doc["bradley_terry"]["j"]
    assert [r["model"] for r in ratings] == ["strong", "middle", "weak"]
    assert [r["rank"] for r in ratings] == [1, 2, 3]
    assert math.isclose(statistics.fmean(r["rating"] for r in ratings), 1000, abs_tol=0.2)
    for r in ratings:
        low, high = r["ci95"]
        assert low < r["rating"] < high
        assert r["battles"] == 120
    # 16:1 odds between strong and weak would be 482 Elo points; ties from order disagreement shrink it
    assert 150 < ratings[0]["rating"] - ratings[2]["rating"] < 482

    md = CliRunner().invoke(cli, ["report", run_id, "--db", str(db), "--format", "md"]).output
    assert "### Pairwise win rates" in md and "### Bradley-Terry ratings" in md
    strong_weak = entries[("strong", "weak")]
    assert f"| j | strong | weak | {100 * strong_weak['win_rate']:.1f}% |" in md


def test_two_models_get_win_rates_but_no_ratings(tmp_path: Path) -> None:
    lines = [x for x in verdict_lines() if "weak" not in (x["model_a"], x["model_b"])]
    db, run_id = imported_run(tmp_path, lines)
    doc = json.loads(CliRunner().invoke(cli, ["report", run_id, "--db", str(db), "--format", "json"]).output)
    assert {(e["model"], e["opponent"]) for e in doc["pairwise"]} == {("middle", "strong"), ("strong", "middle")}
    assert doc["bradley_terry"] == {}


def test_graded_preferences_and_unscored_pairs() -> None:
    rows: list[dict[str, Any]] = [
        {"id": 1, "judge": "j", "suite": "s", "case_id": "1", "sample": 0, "model_a": "base", "model_b": "m",
         "first": "a", "winner": "b", "preference": 1.9},
        {"id": 2, "judge": "j", "suite": "s", "case_id": "2", "sample": 0, "model_a": "base", "model_b": "m",
         "first": "a", "winner": "tie", "preference": 1.5},
        {"id": 3, "judge": "j", "suite": "s", "case_id": "3", "sample": 0, "model_a": "base", "model_b": "m",
         "first": "a", "winner": None, "preference": None},
        {"id": 4, "judge": "j", "suite": "s", "case_id": "4", "sample": 0, "model_a": "base", "model_b": "m",
         "first": "b", "winner": "a", "preference": None},
    ]  # fmt: skip
    scores, unscored = pair_scores(rows)
    assert [round(s, 9) for s in sorted(scores.values())] == [0.0, 0.5, 0.9]
    assert len(unscored) == 1
    (m_vs_base,) = [e for e in pairwise_table(rows) if e["model"] == "m"]
    assert m_vs_base["n"] == 3 and m_vs_base["unscored"] == 1
    assert math.isclose(m_vs_base["win_rate"], (0.9 + 0.5 + 0.0) / 3, abs_tol=1e-6)
    assert (m_vs_base["wins"], m_vs_base["losses"], m_vs_base["ties"]) == (1, 1, 1)
