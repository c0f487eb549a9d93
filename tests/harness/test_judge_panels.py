"""Judge panels and repeated verdicts end to end: one judge call per judge (and per judge sample), the combined
score under --aggregate, inter-judge agreement (weighted kappa, Krippendorff's alpha) and judge noise in the
report, each checked against values worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_openai_server import Call, FakeOpenAIServer, not_json, verdict
from store_rows import rows

from harness.cli import cli

CRITERIA = ["preciseness", "instruction_following"]


def prompt_of(case_id: str) -> str:
    return f"[{case_id}] What is the answer to question {case_id}?"


def write_suite(path: Path, cases: list[str]) -> Path:
    lines = ["suite: panels", "version: 1.0.0", "defaults:", f"  criteria: {json.dumps(CRITERIA)}", "cases:"]
    for cid in cases:
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def invoke_json(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_args(suite: Path, db: Path, server: FakeOpenAIServer, judges: list[str], *extra: str) -> list[str]:
    args = ["run", str(suite), "-t", f"a=openai:model-a@{server.url}"]
    for j in judges:
        args += ["--judge", f"{j}=openai:judge-{j}@{server.url}"]
    return [*args, "--no-canaries", "--db", str(db), "--format", "json", *extra]


def report(db: Path, run_id: str) -> dict[str, Any]:
    return invoke_json("report", run_id, "--format", "json", "--db", str(db))  # type: ignore[no-any-return]


def scripted(table: dict[str, dict[str, int]]) -> Any:
    """A judge_score callable: table[judge model][case id] for every criterion."""

    def score(criterion: str, call: Call) -> int:
        (case,) = [cid for cid in table[call.model] if f"[{cid}]" in call.text]
        return table[call.model][case]

    return score


def case_scores(doc: dict[str, Any], criterion: str = "preciseness") -> dict[str, Any]:
    return {r["case_id"]: r["scores"][criterion] for r in doc["cases"]}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# panels -------------------------------------------------------------------------------------------------------
J1 = {"c1": 5, "c2": 4, "c3": 3, "c4": 2}
J2 = {"c1": 4, "c2": 4, "c3": 2, "c4": 2}


def test_two_judges_each_judge_every_response_and_agreement_is_reported(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.judge_score = scripted({"judge-j1": J1, "judge-j2": J2})
    suite = write_suite(tmp_path / "s.yaml", list(J1))
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, ["j1", "j2"]))
    run_id = out["run_id"]

    responses = rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id)
    calls = rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", run_id)
    assert len(responses) == 4
    assert sorted((c["response_id"], c["judge"]) for c in calls) == sorted(
        (r["id"], j) for r in responses for j in ("j1", "j2")
    )
    assert fake_openai.count(judge=True, model="judge-j1") == 4
    assert fake_openai.count(judge=True, model="judge-j2") == 4
    by_case = {
        (j["case_id"], j["judge"], j["criterion"]): j["score"]
        for j in rows(
            db,
            "SELECT r.case_id, c.judge, j.criterion, j.score FROM judgments j JOIN judge_calls c"
            " ON c.id = j.judge_call_id JOIN responses r ON r.id = j.response_id WHERE j.run_id = ?",
            run_id,
        )
    }
    assert by_case == {
        (cid, judge, c): float(table[cid]) for cid in J1 for judge, table in (("j1", J1), ("j2", J2)) for c in CRITERIA
    }

    doc = report(db, run_id)
    judging = doc["judging"]
    assert judging["judges"] == ["j1", "j2"] and judging["aggregate"] == "mean" and judging["mode"] == "rubric"
    assert [j["name"] for j in rows_config(db, run_id)["judges"]] == ["j1", "j2"]
    # combined: the mean of the two judges per response
    scores = case_scores(doc)
    assert {cid: s["score"] for cid, s in scores.items()} == {"c1": 4.5, "c2": 4.0, "c3": 2.5, "c4": 2.0}
    assert all(len(s["verdicts"]) == 2 for s in scores.values())
    assert {v["judge"]: v["score"] for v in scores["c1"]["verdicts"]} == {"j1": 5.0, "j2": 4.0}
    (target,) = doc["targets"].values()
    assert target["criteria"]["preciseness"]["mean"] == 3.25  # (4.5 + 4 + 2.5 + 2) / 4

    # weighted kappa, quadratic weights over 1-5, j1 = [5, 4, 3, 2] and j2 = [4, 4, 2, 2]:
    # observed disagreement sum (a - b)^2 = 1 + 0 + 1 + 0 = 2; expected, over every pairing of a with b,
    # sum (a - b)^2 / n = (20 + 8 + 4 + 8) / 4 = 10; kappa = 1 - 2 / 10 = 0.8
    for c in CRITERIA:
        entry = judging["agreement"][c]
        assert entry["judges"] == ["j1", "j2"]
        assert entry["responses_all_scored"] == 4
        assert entry["weighted_kappa"] == pytest.approx(0.8)
        assert entry["exact_agreement"] == 0.5
        assert "krippendorff_alpha" not in entry
    assert out["judging"]["agreement"] == judging["agreement"]


def rows_config(db: Path, run_id: str) -> dict[str, Any]:
    return json.loads(rows(db, "SELECT config FROM runs WHERE run_id = ?", run_id)[0]["config"])  # type: ignore[no-any-return]


PANEL3 = {"judge-j1": {"c1": 1, "c2": 4}, "judge-j2": {"c1": 2, "c2": 3}, "judge-j3": {"c1": 5, "c2": 4}}


@pytest.mark.parametrize(
    ("aggregate", "c1", "c2"),
    [
        ("mean", 8 / 3, 11 / 3),  # (1 + 2 + 5) / 3, (4 + 3 + 4) / 3
        ("median", 2.0, 4.0),
        ("majority", 1.0, 4.0),  # c1: every score once, ties go to the lowest; c2: 4 twice
    ],
)
def test_aggregate_combines_a_panel(
    tmp_path: Path, fake_openai: FakeOpenAIServer, aggregate: str, c1: float, c2: float
) -> None:
    fake_openai.judge_score = scripted(PANEL3)
    suite = write_suite(tmp_path / "s.yaml", ["c1", "c2"])
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, ["j1", "j2", "j3"], "--aggregate", aggregate))
    assert len(rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", out["run_id"])) == 6

    doc = report(db, out["run_id"])
    for c in CRITERIA:
        scores = case_scores(doc, c)
        assert [v["score"] for v in sorted(scores["c1"]["verdicts"], key=lambda v: v["judge"])] == [1.0, 2.0, 5.0]
        assert (scores["c1"]["score"], scores["c2"]["score"]) == (pytest.approx(c1), pytest.approx(c2))
    (target,) = doc["targets"].values()
    assert target["criteria"]["preciseness"]["mean"] == pytest.approx((c1 + c2) / 2, abs=1e-4)
    assert doc["judging"]["aggregate"] == aggregate
    assert out["judging"]["aggregate"] == aggregate


def test_three_judges_report_krippendorff_alpha(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.judge_score = scripted(
        {"judge-j1": {"u1": 5, "u2": 2}, "judge-j2": {"u1": 5, "u2": 3}, "judge-j3": {"u1": 4, "u2": 2}}
    )
    suite = write_suite(tmp_path / "s.yaml", ["u1", "u2"])
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, ["j1", "j2", "j3"]))
    judging = report(db, out["run_id"])["judging"]
    assert judging["judges"] == ["j1", "j2", "j3"]
    # interval alpha over units (5, 5, 4) and (2, 3, 2): n = 6 values;
    # D_o = (1/n) sum_u (sum of (c - k)^2 over ordered pairs in u) / (m_u - 1) = (4/2 + 4/2) / 6 = 2/3
    # D_e = (sum of (c - k)^2 over ordered pairs of all 6 values) / (n (n - 1)) = 114 / 30 = 3.8
    # alpha = 1 - (2/3) / 3.8 = 47/57 = 0.8246
    for c in CRITERIA:
        entry = judging["agreement"][c]
        assert entry["responses_all_scored"] == 2
        assert entry["krippendorff_alpha"] == pytest.approx(47 / 57)
        assert "weighted_kappa" not in entry


def test_a_panel_can_include_one_of_the_targets(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    suite = write_suite(tmp_path / "s.yaml", ["c1"])
    db = tmp_path / "r.db"
    args = ["run", str(suite), "-t", f"a=openai:model-a@{fake_openai.url}", "--judge", "a", "--no-canaries"]
    out = invoke_json(*args, "--judge", f"j2=openai:judge-j2@{fake_openai.url}", "--db", str(db), "--format", "json")
    calls = rows(db, "SELECT judge FROM judge_calls WHERE run_id = ?", out["run_id"])
    assert sorted(c["judge"] for c in calls) == ["a", "j2"]
    assert fake_openai.count(judge=True, model="model-a") == 1


# repeated verdicts (--judge-samples) --------------------------------------------------------------------------
SAMPLED = {"c1": [3, 4, 5], "c2": [4, 4, 4], "c3": [1, 3, 5]}


def test_judge_samples_make_repeated_calls_and_the_noise_floor(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    for cid, scores in SAMPLED.items():
        fake_openai.script(prompt_of(cid), *[verdict(s) for s in scores], judge=True)
    suite = write_suite(tmp_path / "s.yaml", list(SAMPLED))
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, ["j1"], "--judge-samples", "3"))
    run_id = out["run_id"]

    judge_requests = fake_openai.calls(judge=True)
    assert len(judge_requests) == 9
    assert all(c.body["temperature"] == 0.7 for c in judge_requests)
    calls = rows(
        db,
        "SELECT c.*, r.case_id FROM judge_calls c JOIN responses r ON r.id = c.response_id WHERE c.run_id = ?",
        run_id,
    )
    assert sorted((c["case_id"], c["judge_sample"]) for c in calls) == [(cid, k) for cid in SAMPLED for k in range(3)]
    assert all(c["status"] == "scored" and c["from_cache"] == 0 for c in calls)
    per_case: dict[str, list[float]] = {}
    for j in rows(
        db,
        "SELECT r.case_id, j.score FROM judgments j JOIN responses r ON r.id = j.response_id"
        " WHERE j.run_id = ? AND j.criterion = 'preciseness'",
        run_id,
    ):
        per_case.setdefault(j["case_id"], []).append(j["score"])
    assert {cid: sorted(s) for cid, s in per_case.items()} == {cid: [float(x) for x in s] for cid, s in SAMPLED.items()}

    doc = report(db, run_id)
    judging = doc["judging"]
    assert judging["samples"] == 3
    # combined per response: the mean of its three samples
    assert {cid: s["score"] for cid, s in case_scores(doc).items()} == {"c1": 4.0, "c2": 4.0, "c3": 3.0}
    assert all(len(s["verdicts"]) == 3 for s in case_scores(doc).values())
    # sample variances 1, 0, 4 -> pooled 5/3 = 1.6667, sd 1.2910;
    # noise floor per case 1.96 * sqrt(2 * (5/3) / 3) = 1.959964 * 1.054093 = 2.0660; of the mean / sqrt(3) = 1.1928
    for c in CRITERIA:
        noise = judging["noise"][c]
        assert noise["responses"] == 3 and noise["samples_per_response"] == 3
        assert noise["pooled_variance"] == pytest.approx(1.6667, abs=1e-4)
        assert noise["sd"] == pytest.approx(1.2910, abs=1e-4)
        assert noise["noise_floor_case"] == pytest.approx(2.0660, abs=1e-4)
        assert noise["noise_floor_mean"] == pytest.approx(2.0660 / math.sqrt(3), abs=1e-4)
    assert "agreement" not in judging

    # the same command again: every sample is its own cache entry, so nothing is asked again
    again = invoke_json(*run_args(suite, db, fake_openai, ["j1"], "--judge-samples", "3"))
    assert len(fake_openai.calls(judge=True)) == 9
    cached = rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", again["run_id"])
    assert len(cached) == 9 and all(c["from_cache"] == 1 for c in cached)


def test_one_judge_sample_is_greedy_and_has_no_noise_block(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    suite = write_suite(tmp_path / "s.yaml", ["c1", "c2"])
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, ["j1"]))
    assert [c.body["temperature"] for c in fake_openai.calls(judge=True)] == [0, 0]
    assert {c["judge_sample"] for c in rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", out["run_id"])} == {0}
    judging = report(db, out["run_id"])["judging"]
    assert judging["samples"] == 1 and "noise" not in judging


def test_panel_with_samples_averages_each_judge_first(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    # j1's three samples: 1, 1 and one reply that never parses (unscored); j2's: 5, 5, 5. Each judge weighs
    # the same: (mean(1, 1) + mean(5, 5, 5)) / 2 = 3.0, not the mean of the five scored verdicts (17 / 5 = 3.4)
    fake_openai.script(lambda c: c.model == "judge-j1", verdict(1), verdict(1), not_json(), not_json(), judge=True)
    fake_openai.judge_score = 5
    suite = write_suite(tmp_path / "s.yaml", ["c1"])
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, ["j1", "j2"], "--judge-samples", "3"))
    calls = rows(db, "SELECT judge, status FROM judge_calls WHERE run_id = ?", out["run_id"])
    assert sorted((c["judge"], c["status"]) for c in calls) == [
        ("j1", "scored"), ("j1", "scored"), ("j1", "unscored"), ("j2", "scored"), ("j2", "scored"), ("j2", "scored")
    ]  # fmt: skip
    doc = report(db, out["run_id"])
    for c in CRITERIA:
        score = case_scores(doc, c)["c1"]
        assert score["status"] == "scored"
        assert len(score["verdicts"]) == 6 and score["unscored_verdicts"] == 1
        assert score["score"] == pytest.approx(3.0)
    # noise per judge, never across judges: j1 (1, 1) variance 0, j2 (5, 5, 5) variance 0
    assert doc["judging"]["noise"]["preciseness"]["responses"] == 2
    assert doc["judging"]["noise"]["preciseness"]["pooled_variance"] == 0.0
    # agreement on the rounded per-judge means: j1 1, j2 5 on the one response
    assert doc["judging"]["agreement"]["preciseness"]["exact_agreement"] == 0.0
