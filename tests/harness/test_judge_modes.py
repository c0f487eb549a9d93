"""Judge modes end to end (`harness run` against the loopback server): logprob-weighted scores stored beside the
integer ones, reference-guided judging, one call per criterion, template names, pairwise in both orders."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fake_openai_server import Call, FakeOpenAIServer, not_json, reply
from store_rows import rows

import judges
from harness.cli import cli, main

CRITERIA = ["preciseness", "instruction_following"]
TEMPLATES = Path(judges.__file__).parent / "templates"


# helpers ------------------------------------------------------------------------------------------------------
def prompt_of(case_id: str) -> str:
    return f"[{case_id}] What is the answer to question {case_id}?"


def write_suite(path: Path, cases: dict[str, list[str]]) -> Path:
    """cases: id -> references (possibly none)."""
    lines = ["suite: modes", "version: 1.0.0", "defaults:", f"  criteria: {json.dumps(CRITERIA)}", "cases:"]
    for cid, refs in cases.items():
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}"]
        if refs:
            lines.append(f"    references: {json.dumps(refs)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def invoke_json(*args: str) -> Any:
    return json.loads(invoke(*args).stdout)


def harness_exit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run the real entry point (which maps usage errors to exit 2); (exit code, stderr)."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def run_args(suite: Path, db: Path, server: FakeOpenAIServer, *extra: str, targets: str = "ab") -> list[str]:
    args = ["run", str(suite)]
    for t in targets:
        args += ["-t", f"{t}=openai:model-{t}@{server.url}"]
    judge = ["--judge", f"judge=openai:judge-model@{server.url}", "--no-canaries"]
    return [*args, *judge, "--db", str(db), "--format", "json", *extra]


def report(db: Path, run_id: str) -> dict[str, Any]:
    return invoke_json("report", run_id, "--format", "json", "--db", str(db))  # type: ignore[no-any-return]


def judgments(db: Path, run_id: str) -> list[dict[str, Any]]:
    return rows(
        db,
        "SELECT j.*, r.case_id, r.target, c.judge, c.judge_sample, c.criterion AS call_criterion, c.from_cache"
        " FROM judgments j JOIN responses r ON r.id = j.response_id JOIN judge_calls c ON c.id = j.judge_call_id"
        " WHERE j.run_id = ? ORDER BY r.case_id, r.target, j.criterion",
        run_id,
    )


def sha256(template: str) -> str:
    return hashlib.sha256((TEMPLATES / f"{template}.j2").read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# logprob-weighted scores --------------------------------------------------------------------------------------
# preciseness is written 4 with P(4) = 0.5, P(5) = 0.3, P(3) = 0.2: 0.5*4 + 0.3*5 + 0.2*3 = 4.1
# instruction_following is written 5 with P(5) = 0.6, P(4) = 0.25 and a non-score token at 0.15:
#   (0.6*5 + 0.25*4) / 0.85 = 4 / 0.85 = 4.705882
# everything below the top 5 alternatives is cut by the server (the request asks for top_logprobs 5)
WEIGHTED = {"preciseness": 4.1, "instruction_following": 4 / 0.85}
DISTRIBUTIONS: dict[str, dict[int | str, float]] = {
    "preciseness": {4: 0.5, 5: 0.3, 3: 0.2},
    "instruction_following": {5: 0.6, 4: 0.25, '"': 0.15},
}


def test_weighted_scores_are_stored_beside_the_integer_ones(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.judge_score = {"preciseness": 4, "instruction_following": 5}
    fake_openai.score_logprobs = lambda criterion, call, chosen: DISTRIBUTIONS[criterion]
    suite = write_suite(tmp_path / "s.yaml", {"c1": [], "c2": []})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, targets="a"))

    judge_calls = fake_openai.calls(judge=True)
    assert len(judge_calls) == 2
    for call in judge_calls:
        assert call.body["logprobs"] is True and call.body["top_logprobs"] == 5
        assert call.body["temperature"] == 0
    for call in fake_openai.calls(judge=False):
        assert "logprobs" not in call.body, "targets are not asked for logprobs"

    stored = judgments(db, out["run_id"])
    assert len(stored) == 4
    for j in stored:
        assert j["status"] == "scored" and j["score_kind"] == "int"
        assert j["score"] == {"preciseness": 4.0, "instruction_following": 5.0}[j["criterion"]]
        assert j["weighted_score"] == pytest.approx(WEIGHTED[j["criterion"]])
        assert j["weighted_note"] is None

    doc = report(db, out["run_id"])
    (target,) = doc["targets"].values()
    for c, w in WEIGHTED.items():
        stats = target["criteria"][c]
        assert stats["mean"] == {"preciseness": 4.0, "instruction_following": 5.0}[c]
        assert stats["weighted_mean"] == pytest.approx(w, abs=1e-4)
        assert stats["weighted_n"] == 2 and stats["weighted_missing"] == 0
    for case in doc["cases"]:
        for c, w in WEIGHTED.items():
            score = case["scores"][c]
            assert score["status"] == "scored"
            assert score["weighted"] == pytest.approx(w)
            (verdict,) = score["verdicts"]
            assert verdict["weighted"] == pytest.approx(w) and verdict["weighted_note"] is None

    # the same command again: a new run judged from the cache, which kept the logprobs
    again = invoke_json(*run_args(suite, db, fake_openai, targets="a"))
    assert again["run_id"] != out["run_id"]
    assert len(fake_openai.calls(judge=True)) == 2
    cached = judgments(db, again["run_id"])
    assert all(j["from_cache"] == 1 for j in cached)
    assert [(j["criterion"], j["weighted_score"]) for j in cached] == [
        (j["criterion"], j["weighted_score"]) for j in stored
    ]


def test_no_judge_logprobs_asks_for_none_and_says_so(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.score_logprobs = {4: 0.5, 5: 0.5}  # would be returned if asked
    suite = write_suite(tmp_path / "s.yaml", {"c1": []})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, "--no-judge-logprobs", targets="a"))

    (call,) = fake_openai.calls(judge=True)
    assert "logprobs" not in call.body and "top_logprobs" not in call.body
    stored = judgments(db, out["run_id"])
    assert len(stored) == 2
    for j in stored:
        assert j["score"] == 4.0 and j["score_kind"] == "int" and j["status"] == "scored"
        assert j["weighted_score"] is None
        assert "not requested" in j["weighted_note"]
    (target,) = report(db, out["run_id"])["targets"].values()
    for c in CRITERIA:
        assert target["criteria"][c]["mean"] == 4.0
        assert target["criteria"][c]["weighted_mean"] is None
        assert target["criteria"][c]["weighted_n"] == 0 and target["criteria"][c]["weighted_missing"] == 1
    method = rows(db, "SELECT config FROM runs WHERE run_id = ?", out["run_id"])[0]["config"]
    assert json.loads(method)["judge_method"]["logprobs"] is False


def test_a_server_that_ignores_logprobs_leaves_the_integer_score(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    # the default fake server answers `"logprobs": null` whatever the request asks
    suite = write_suite(tmp_path / "s.yaml", {"c1": [], "c2": []})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, targets="a"))
    assert all(c.body.get("logprobs") is True for c in fake_openai.calls(judge=True))
    stored = judgments(db, out["run_id"])
    assert len(stored) == 4
    for j in stored:
        assert j["status"] == "scored" and j["score"] == 4.0 and j["score_kind"] == "int"
        assert j["weighted_score"] is None
        assert j["weighted_note"] == "the judge endpoint returned no logprobs"
    doc = report(db, out["run_id"])
    (target,) = doc["targets"].values()
    assert target["criteria"]["preciseness"]["weighted_missing"] == 2
    assert target["criteria"]["preciseness"]["weighted_mean"] is None
    assert target["passed"] == 2, "a missing weighted score does not make a response unscored"


def test_a_score_digit_merged_with_other_text_gets_no_weighted_score(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    text = '{"preciseness": {"rationale": "ok", "score": 3}, "instruction_following": {"rationale": "ok", "score": 5}}'
    cut = text.index("3}")
    half = math.log(0.5)
    tokens: list[dict[str, Any]] = [
        {"token": text[:cut], "logprob": 0.0, "top_logprobs": []},
        {"token": "3},", "logprob": math.log(0.9), "top_logprobs": [{"token": "3},", "logprob": math.log(0.9)}]},
        {"token": text[cut + 3 : -3], "logprob": 0.0, "top_logprobs": []},
        {
            "token": "5",
            "logprob": half,
            "top_logprobs": [{"token": "5", "logprob": half}, {"token": "3", "logprob": half}],
        },
        {"token": "}}", "logprob": 0.0, "top_logprobs": []},
    ]
    assert "".join(str(t["token"]) for t in tokens) == text
    fake_openai.script(prompt_of("c1"), reply(text, logprobs=tokens), judge=True)
    suite = write_suite(tmp_path / "s.yaml", {"c1": []})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, targets="a"))
    by_criterion = {j["criterion"]: j for j in judgments(db, out["run_id"])}
    assert by_criterion["preciseness"]["score"] == 3.0
    assert by_criterion["preciseness"]["weighted_score"] is None
    assert by_criterion["preciseness"]["weighted_note"] == "the score digit shares a token with other text"
    assert by_criterion["instruction_following"]["score"] == 5.0
    assert by_criterion["instruction_following"]["weighted_score"] == pytest.approx(4.0)  # (5 + 3) / 2


# reference-guided judging -------------------------------------------------------------------------------------
def test_reference_mode_uses_the_reference_template_where_there_are_references(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    suite = write_suite(tmp_path / "s.yaml", {"with-ref": ["Paris", "The city of Paris"], "no-ref": []})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, "--judge-mode", "reference", targets="a"))

    calls = rows(
        db,
        "SELECT c.*, r.case_id FROM judge_calls c JOIN responses r ON r.id = c.response_id WHERE c.run_id = ?",
        out["run_id"],
    )
    by_case = {c["case_id"]: c for c in calls}
    assert set(by_case) == {"with-ref", "no-ref"}
    assert by_case["with-ref"]["template"] == "reference_v1"
    assert by_case["with-ref"]["template_sha256"] == sha256("reference_v1")
    assert by_case["no-ref"]["template"] == "rubric_v1"
    assert by_case["no-ref"]["template_sha256"] == sha256("rubric_v1")
    user = json.loads(by_case["with-ref"]["prompt"])[1]["content"]
    assert "<<<HUMAN RESPONSE 1 " in user and "<<<HUMAN RESPONSE 2 " in user
    assert "The city of Paris" in user and "MODEL RESPONSE" in user
    plain = json.loads(by_case["no-ref"]["prompt"])[1]["content"]
    assert "HUMAN RESPONSE" not in plain and "<<<RESPONSE " in plain
    assert all(c["status"] == "scored" for c in calls)

    doc = report(db, out["run_id"])
    assert doc["judging"]["mode"] == "reference"
    assert doc["run"]["judge_method"]["template"] == "reference_v1"
    templates = {r["case_id"]: r["scores"]["preciseness"]["template"] for r in doc["cases"]}
    assert templates == {"with-ref": "reference_v1", "no-ref": "rubric_v1"}


def test_an_explicit_template_is_used_for_every_case(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    suite = write_suite(tmp_path / "s.yaml", {"with-ref": ["Paris"], "no-ref": []})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, "--judge-template", "rubric_v1", targets="a"))
    calls = rows(db, "SELECT template FROM judge_calls WHERE run_id = ?", out["run_id"])
    assert [c["template"] for c in calls] == ["rubric_v1", "rubric_v1"]


def test_unknown_template_is_a_one_line_usage_error(
    tmp_path: Path, fake_openai: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path / "s.yaml", {"c1": []})
    db = tmp_path / "r.db"
    code, err = harness_exit(capsys, *run_args(suite, db, fake_openai, "--judge-template", "nope_v9"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "unknown judge template 'nope_v9'" in lines[0]
    assert "rubric_v1" in lines[0] and "Traceback" not in err
    assert fake_openai.calls() == [], "nothing was run"
    assert not db.exists() or rows(db, "SELECT * FROM runs") == []


# one call per criterion ---------------------------------------------------------------------------------------
def test_per_criterion_makes_one_call_per_criterion(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.judge_score = {"preciseness": 2, "instruction_following": 5}
    suite = write_suite(tmp_path / "s.yaml", {"c1": [], "c2": []})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, "--per-criterion"))

    responses = rows(db, "SELECT * FROM responses WHERE run_id = ?", out["run_id"])
    calls = rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", out["run_id"])
    assert len(responses) == 4
    assert len(calls) == len(responses) * len(CRITERIA) == 8
    assert sorted((c["response_id"], c["criterion"]) for c in calls) == sorted(
        (r["id"], c) for r in responses for c in CRITERIA
    )
    other = {"preciseness": "instruction_following", "instruction_following": "preciseness"}
    for c in calls:
        user = json.loads(c["prompt"])[1]["content"]
        assert f"{c['criterion']}:" in user
        assert other[c["criterion"]] not in user, "a per-criterion prompt names another criterion"
    for seen in fake_openai.calls(judge=True):
        assert len(seen.criteria()) == 1
    assert len(fake_openai.calls(judge=True)) == 8

    stored = judgments(db, out["run_id"])
    assert len(stored) == 8
    for j in stored:
        assert j["criterion"] == j["call_criterion"]
        assert j["score"] == {"preciseness": 2.0, "instruction_following": 5.0}[j["criterion"]]
    doc = report(db, out["run_id"])
    for t in doc["targets"].values():
        assert t["criteria"]["preciseness"]["mean"] == 2.0 and t["criteria"]["preciseness"]["n"] == 2
        assert t["criteria"]["instruction_following"]["mean"] == 5.0
    assert doc["run"]["judge_method"]["per_criterion"] is True

    # without the flag: one call per response, criterion NULL
    again = invoke_json(*run_args(suite, db, fake_openai))
    calls = rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", again["run_id"])
    assert len(calls) == 4 and all(c["criterion"] is None for c in calls)


# pairwise -----------------------------------------------------------------------------------------------------
def pairwise_rows(db: Path, run_id: str) -> list[dict[str, Any]]:
    return rows(db, "SELECT * FROM pairwise WHERE run_id = ? ORDER BY case_id, first", run_id)


def prefers_model_a(call: Call) -> str:
    first, second = call.shown()
    assert first and second, "the pairwise prompt shows two responses"
    return "1" if "model-a says" in first else "2"


def test_pairwise_judge_that_always_says_1_gives_ties(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.pairwise_winner = "1"
    cases = ["c1", "c2", "c3"]
    suite = write_suite(tmp_path / "s.yaml", {c: ["Paris"] for c in cases})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, "--judge-mode", "pairwise"))

    pairs = pairwise_rows(db, out["run_id"])
    assert [(p["case_id"], p["first"]) for p in pairs] == [(c, f) for c in cases for f in ("a", "b")]
    assert len(fake_openai.calls(judge=True)) == 6
    for p in pairs:
        assert (p["model_a"], p["model_b"], p["judge"]) == ("a", "b", "judge")
        assert p["status"] == "scored" and p["reason"] is None
        assert p["winner"] == p["first"], "'1' is whoever was shown first"
        assert p["template"] == "pairwise_v1" and p["template_sha256"] == sha256("pairwise_v1")
        assert p["response_a"] == f"model-a says: {prompt_of(p['case_id'])}"
        assert p["response_b"] == f"model-b says: {prompt_of(p['case_id'])}"
        assert json.loads(p["raw"])["winner"] == "1"
        user = json.loads(p["prompt"])[1]["content"]
        shown_first = p["response_a"] if p["first"] == "a" else p["response_b"]
        shown_second = p["response_b"] if p["first"] == "a" else p["response_a"]
        assert user.index(shown_first) < user.index("RESPONSE 2:") < user.index(shown_second)
    # no rubric judgments in pairwise mode
    assert rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", out["run_id"]) == []

    doc = report(db, out["run_id"])
    judging = doc["judging"]
    assert judging["mode"] == "pairwise" and judging["judges"] == ["judge"]
    assert set(judging["pairwise"]) == {"judge"}
    r = judging["pairwise"]["judge"]
    assert (r["pairs"], r["verdicts"], r["unscored"]) == (3, 6, 0)
    assert r["position_consistency"] == 0.0
    assert r["first_shown_win_rate"] == 1.0
    # a-first verdicts all "a", b-first all "b": no agreement beyond chance, kappa 0
    assert r["kappa_orders"] == pytest.approx(0.0)
    for model in ("a", "b"):
        w = r["win_rates"][model]
        assert (w["pairs"], w["wins"], w["losses"], w["ties"]) == (3, 0, 0, 3)
        assert w["score"] == 0.5
    assert out["judging"]["pairwise"] == judging["pairwise"]


def test_pairwise_judge_that_prefers_one_models_text(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.pairwise_winner = prefers_model_a
    cases = ["c1", "c2"]
    suite = write_suite(tmp_path / "s.yaml", {c: [] for c in cases})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, "--judge-mode", "pairwise"))

    pairs = pairwise_rows(db, out["run_id"])
    assert [(p["case_id"], p["first"], p["winner"]) for p in pairs] == [(c, f, "a") for c in cases for f in ("a", "b")]
    assert [json.loads(p["raw"])["winner"] for p in pairs] == ["1", "2"] * 2
    r = report(db, out["run_id"])["judging"]["pairwise"]["judge"]
    assert r["pairs"] == 2 and r["position_consistency"] == 1.0
    assert r["first_shown_win_rate"] == 0.5
    assert {m: (w["wins"], w["losses"], w["ties"]) for m, w in r["win_rates"].items()} == {
        "a": (2, 0, 0),
        "b": (0, 2, 0),
    }
    assert r["win_rates"]["a"]["win_rate"] == 1.0 and r["win_rates"]["b"]["score"] == 0.0


def test_pairwise_three_targets_compares_every_pair(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.pairwise_winner = prefers_model_a
    suite = write_suite(tmp_path / "s.yaml", {"c1": []})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, "--judge-mode", "pairwise", targets="abc"))
    pairs = rows(db, "SELECT model_a, model_b, first, winner FROM pairwise WHERE run_id = ?", out["run_id"])
    assert sorted((p["model_a"], p["model_b"], p["first"]) for p in pairs) == [
        (a, b, f) for a, b in [("a", "b"), ("a", "c"), ("b", "c")] for f in ("a", "b")
    ]
    r = report(db, out["run_id"])["judging"]["pairwise"]["judge"]
    assert r["pairs"] == 3
    # a beats b and c in both orders; between b and c (neither is model-a) the judge says "2" both times, so
    # the second shown wins each order: a tie
    assert {m: (w["pairs"], w["wins"], w["losses"], w["ties"]) for m, w in r["win_rates"].items()} == {
        "a": (2, 2, 0, 0),
        "b": (2, 0, 1, 1),
        "c": (2, 0, 1, 1),
    }
    assert r["position_consistency"] == pytest.approx(2 / 3)


def test_pairwise_reply_unparseable_twice_is_unscored(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    def b_shown_first_on_c1(call: Call) -> bool:
        return prompt_of("c1") in call.text and call.shown()[0].startswith("model-b says")

    fake_openai.pairwise_winner = prefers_model_a
    fake_openai.script(b_shown_first_on_c1, not_json("Response 1, clearly."), not_json("Still 1."), judge=True)
    suite = write_suite(tmp_path / "s.yaml", {"c1": [], "c2": []})
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(suite, db, fake_openai, "--judge-mode", "pairwise"))

    pairs = {(p["case_id"], p["first"]): p for p in pairwise_rows(db, out["run_id"])}
    assert len(pairs) == 4
    bad = pairs[("c1", "b")]
    assert bad["status"] == "unscored" and bad["winner"] is None and bad["rationale"] is None
    assert "attempt 1" in bad["reason"] and "attempt 2" in bad["reason"]
    assert bad["raw"] == "Still 1."
    assert sum(1 for c in fake_openai.calls(judge=True) if b_shown_first_on_c1(c)) == 2, "asked again once"
    assert all(p["status"] == "scored" for k, p in pairs.items() if k != ("c1", "b"))
    r = report(db, out["run_id"])["judging"]["pairwise"]["judge"]
    # c2: a wins in both orders; c1: a wins a-first, b-first unscored -> not consistent, not a win
    assert (r["pairs"], r["verdicts"], r["unscored"]) == (2, 4, 1)
    assert r["position_consistency"] == 0.5
    assert (r["win_rates"]["a"]["wins"], r["win_rates"]["a"]["ties"]) == (1, 1)


def test_pairwise_with_one_target_is_a_usage_error(
    tmp_path: Path, fake_openai: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = write_suite(tmp_path / "s.yaml", {"c1": []})
    db = tmp_path / "r.db"
    code, err = harness_exit(capsys, *run_args(suite, db, fake_openai, "--judge-mode", "pairwise", targets="a"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "pairwise" in err and "two --target" in err
    assert fake_openai.calls() == []
