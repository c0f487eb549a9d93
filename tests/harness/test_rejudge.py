"""Judging stored responses again: `harness judge RUN` makes a new run from the stored responses without calling
the targets; an interrupted pairwise, panel or re-judging run continues under the same id and asks only for
the verdicts it has not recorded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_openai_server import Call, FakeOpenAIServer, bad_request
from store_rows import rows

from harness.cli import cli, main

CRITERIA = ["preciseness", "instruction_following"]
CASES = ["c1", "c2", "c3"]
RESPONSE_COLUMNS = "suite, case_id, target, sample, status, text, error, finish_reason, tokens_in, tokens_out, checks"


def prompt_of(case_id: str) -> str:
    return f"[{case_id}] What is the answer to question {case_id}?"


def write_suite(path: Path, cases: list[str] = CASES) -> Path:
    lines = ["suite: rejudge", "version: 1.0.0", "defaults:", f"  criteria: {json.dumps(CRITERIA)}", "cases:"]
    checks = {"c1": "says", "c2": "model-a"}  # c2's check fails for b's reply
    for cid in cases:
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}"]
        if cid in checks:
            lines += ["    checks:", f"      - regex: {json.dumps(checks[cid])}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def invoke_json(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def harness_exit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def judge_spec(server: FakeOpenAIServer, name: str) -> str:
    return f"{name}=openai:judge-{name}@{server.url}"


def run_args(suite: Path, db: Path, server: FakeOpenAIServer, *extra: str, targets: str = "ab") -> list[str]:
    args = ["run", str(suite)]
    for t in targets:
        args += ["-t", f"{t}=openai:model-{t}@{server.url}"]
    return [*args, "--no-canaries", "--db", str(db), "--format", "json", *extra]


def judge_args(run_id: str, db: Path, *extra: str) -> list[str]:
    return ["judge", run_id, "--no-canaries", "--db", str(db), "--format", "json", *extra]


def by_judge_model(call: Call) -> Any:
    return {"judge-j1": 4, "judge-j2": 2}.get(call.model, 3)


def snapshot(db: Path, run_id: str) -> dict[str, list[dict[str, Any]]]:
    return {
        table: rows(db, f"SELECT * FROM {table} WHERE run_id = ? ORDER BY 1, 2, 3", run_id)
        for table in ("runs", "cases", "responses", "judge_calls", "judgments", "pairwise")
    }


def execute(db: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    con = sqlite3.connect(db)
    try:
        for sql, params in statements:
            con.execute(sql, params)
        con.commit()
    finally:
        con.close()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def original(tmp_path: Path, fake_openai: FakeOpenAIServer) -> tuple[Path, str]:
    """A complete run: targets a and b on c1-c3 (b errors on c3), judged by j1 (score 4)."""
    fake_openai.judge_score = lambda criterion, call: by_judge_model(call)
    fake_openai.script(lambda c: c.model == "model-b" and prompt_of("c3") in c.text, bad_request())
    db = tmp_path / "r.db"
    out = invoke_json(
        *run_args(write_suite(tmp_path / "s.yaml"), db, fake_openai, "--judge", judge_spec(fake_openai, "j1"))
    )
    return db, out["run_id"]


# re-judging ---------------------------------------------------------------------------------------------------
def test_rejudge_is_a_new_run_over_the_same_responses(
    original: tuple[Path, str], fake_openai: FakeOpenAIServer
) -> None:
    db, source = original
    before = snapshot(db, source)
    assert len(before["responses"]) == 6 and len(before["judge_calls"]) == 5
    target_calls = fake_openai.count(judge=False)
    assert target_calls == 6

    out = invoke_json(*judge_args(source, db, "--judge", judge_spec(fake_openai, "j2")))
    run_id = out["run_id"]
    assert run_id != source and out["resumed"] is False

    # config: where it came from, who judged, the same suites
    (run,) = rows(db, "SELECT * FROM runs WHERE run_id = ?", run_id)
    config = json.loads(run["config"])
    assert run["status"] == "complete"
    assert config["rejudge_of"] == source
    assert [j["name"] for j in config["judges"]] == ["j2"]
    assert config["suites"] == json.loads(before["runs"][0]["config"])["suites"]
    assert [t["name"] for t in config["targets"]] == ["a", "b"]

    # the same responses, texts, errors and check results; the same cases
    copied = rows(
        db,
        f"SELECT {RESPONSE_COLUMNS}, from_cache FROM responses WHERE run_id = ? ORDER BY case_id, target, sample",
        run_id,
    )
    originals = rows(
        db, f"SELECT {RESPONSE_COLUMNS} FROM responses WHERE run_id = ? ORDER BY case_id, target, sample", source
    )
    assert [{k: r[k] for k in r if k != "from_cache"} for r in copied] == originals
    assert all(r["from_cache"] == 1 for r in copied)
    checks = {(r["case_id"], r["target"]): json.loads(r["checks"]) for r in copied}
    assert [c["passed"] for c in checks[("c2", "a")]] == [True]
    assert [c["passed"] for c in checks[("c2", "b")]] == [False]
    assert rows(db, "SELECT suite, case_id, data FROM cases WHERE run_id = ? ORDER BY case_id", run_id) == rows(
        db, "SELECT suite, case_id, data FROM cases WHERE run_id = ? ORDER BY case_id", source
    )

    # no target was called; j2 judged every ok response, j1 was not asked again
    assert fake_openai.count(judge=False) == target_calls
    assert fake_openai.count(judge=True, model="judge-j2") == 5
    assert fake_openai.count(judge=True, model="judge-j1") == 5
    calls = rows(
        db,
        "SELECT c.*, r.case_id, r.target FROM judge_calls c JOIN responses r ON r.id = c.response_id"
        " WHERE c.run_id = ?",
        run_id,
    )
    assert sorted((c["case_id"], c["target"]) for c in calls) == sorted(
        (cid, t) for cid in CASES for t in "ab" if (cid, t) != ("c3", "b")
    )
    assert all(c["judge"] == "j2" and c["status"] == "scored" and c["from_cache"] == 0 for c in calls)
    judgments = rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id)
    assert len(judgments) == 10 and all(j["score"] == 2.0 for j in judgments)

    # the report of the new run: j2's scores over the copied responses
    doc = invoke_json("report", run_id, "--format", "json", "--db", str(db))
    targets = {t["target"]: t for t in doc["targets"].values()}
    assert targets["a"]["criteria"]["preciseness"]["mean"] == 2.0 and targets["a"]["failed"] == 3
    assert targets["b"]["errors"] == 1 and targets["b"]["responses"] == 3
    assert doc["judging"]["judges"] == ["j2"]

    # the original run is untouched
    assert snapshot(db, source) == before


def test_the_same_rejudge_again_is_a_new_run_served_from_the_cache(
    original: tuple[Path, str], fake_openai: FakeOpenAIServer
) -> None:
    db, source = original
    args = judge_args(source, db, "--judge", judge_spec(fake_openai, "j2"))
    first = invoke_json(*args)
    seen = len(fake_openai.calls())
    second = invoke_json(*args)

    assert second["run_id"] not in (source, first["run_id"])
    assert second["resumed"] is False
    assert len(fake_openai.calls()) == seen, "the second re-judging called the server"
    config = json.loads(rows(db, "SELECT config FROM runs WHERE run_id = ?", second["run_id"])[0]["config"])
    assert config["rejudge_of"] == source
    calls = rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", second["run_id"])
    assert len(calls) == 5 and all(c["from_cache"] == 1 and c["judge"] == "j2" for c in calls)
    scores = rows(db, "SELECT score FROM judgments WHERE run_id = ?", second["run_id"])
    assert [s["score"] for s in scores] == [2.0] * 10
    assert len(rows(db, "SELECT * FROM responses WHERE run_id = ?", second["run_id"])) == 6


def test_rejudge_in_pairwise_mode_compares_the_stored_responses(
    original: tuple[Path, str], fake_openai: FakeOpenAIServer
) -> None:
    db, source = original
    target_calls = fake_openai.count(judge=False)
    out = invoke_json(*judge_args(source, db, "--judge", judge_spec(fake_openai, "j2"), "--judge-mode", "pairwise"))
    assert fake_openai.count(judge=False) == target_calls
    pairs = rows(db, "SELECT * FROM pairwise WHERE run_id = ? ORDER BY case_id, first", out["run_id"])
    # c3 has no pair: b's response is an error
    assert [(p["case_id"], p["first"]) for p in pairs] == [("c1", "a"), ("c1", "b"), ("c2", "a"), ("c2", "b")]
    assert all(p["status"] == "scored" and p["judge"] == "j2" for p in pairs)
    assert rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", out["run_id"]) == []
    assert out["judging"]["mode"] == "pairwise"


def test_rejudge_with_a_judge_named_like_a_target(original: tuple[Path, str], fake_openai: FakeOpenAIServer) -> None:
    db, source = original
    target_calls = fake_openai.count(judge=False)
    out = invoke_json(*judge_args(source, db, "--judge", "a"))
    assert fake_openai.count(judge=False) == target_calls
    assert fake_openai.count(judge=True, model="model-a") == 5
    calls = rows(db, "SELECT judge FROM judge_calls WHERE run_id = ?", out["run_id"])
    assert [c["judge"] for c in calls] == ["a"] * 5


def test_rejudge_of_an_unknown_run_is_a_usage_error(
    tmp_path: Path, fake_openai: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.db"
    code, err = harness_exit(capsys, *judge_args("no-such-run", db, "--judge", judge_spec(fake_openai, "j2")))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert "no run 'no-such-run'" in err
    assert fake_openai.calls() == []


def test_rejudge_without_a_judge_is_a_usage_error(
    original: tuple[Path, str], fake_openai: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    db, source = original
    seen = len(fake_openai.calls())
    code, err = harness_exit(capsys, *judge_args(source, db))
    assert code == 2 and "--judge" in err and len(err.strip().splitlines()) == 1
    assert len(fake_openai.calls()) == seen
    assert len(rows(db, "SELECT * FROM runs")) == 1


def test_pairwise_rejudge_of_a_one_target_run_is_a_usage_error(
    tmp_path: Path, fake_openai: FakeOpenAIServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # `harness run --judge-mode pairwise` with one target is refused (exit 2); re-judging a one-target run in
    # pairwise mode has nothing to compare either, and should be refused the same way, not make an empty run
    db = tmp_path / "r.db"
    out = invoke_json(*run_args(write_suite(tmp_path / "s.yaml"), db, fake_openai, targets="a"))
    code, err = harness_exit(
        capsys, *judge_args(out["run_id"], db, "--judge", judge_spec(fake_openai, "j2"), "--judge-mode", "pairwise")
    )
    assert code == 2, "a pairwise re-judging of a one-target run was accepted"
    assert "pairwise" in err and len(err.strip().splitlines()) == 1
    assert fake_openai.count(judge=True) == 0
    assert len(rows(db, "SELECT * FROM runs")) == 1


# resuming -----------------------------------------------------------------------------------------------------
def interrupt(db: Path, run_id: str, *deletes: tuple[str, tuple[Any, ...]]) -> None:
    """Forget some recorded verdicts and mark the run interrupted, as a run killed part-way leaves it."""
    execute(db, *deletes, ("UPDATE runs SET status = 'interrupted', finished_at = NULL WHERE run_id = ?", (run_id,)))


def test_interrupted_pairwise_run_resumes_with_only_the_missing_orders(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    db = tmp_path / "r.db"
    args = run_args(
        write_suite(tmp_path / "s.yaml"), db, fake_openai, "--judge", judge_spec(fake_openai, "j1"),
        "--judge-mode", "pairwise", "--no-cache",
    )  # fmt: skip
    first = invoke_json(*args)
    run_id = first["run_id"]
    assert len(rows(db, "SELECT * FROM pairwise WHERE run_id = ?", run_id)) == 6
    interrupt(
        db, run_id, ("DELETE FROM pairwise WHERE run_id = ? AND first = 'b' AND case_id IN ('c1', 'c2')", (run_id,))
    )
    seen = len(fake_openai.calls())

    second = invoke_json(*args)
    assert second["run_id"] == run_id and second["resumed"] is True
    new = fake_openai.calls()[seen:]
    assert [c.is_judge for c in new] == [True, True], "only the two missing verdicts were asked for"
    assert sorted(next(cid for cid in CASES if prompt_of(cid) in c.text) for c in new) == ["c1", "c2"]
    assert all(c.shown()[0].startswith("model-b says") for c in new), "the missing order is b shown first"
    pairs = rows(db, "SELECT case_id, first, status FROM pairwise WHERE run_id = ? ORDER BY case_id, first", run_id)
    assert [(p["case_id"], p["first"]) for p in pairs] == [(c, f) for c in CASES for f in "ab"]
    assert all(p["status"] == "scored" for p in pairs)
    assert rows(db, "SELECT status FROM runs WHERE run_id = ?", run_id) == [{"status": "complete"}]
    assert len(rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id)) == 6


def test_interrupted_panel_run_resumes_with_only_the_missing_calls(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    db = tmp_path / "r.db"
    args = run_args(
        write_suite(tmp_path / "s.yaml", ["c1", "c2"]), db, fake_openai,
        "--judge", judge_spec(fake_openai, "j1"), "--judge", judge_spec(fake_openai, "j2"),
        "--judge-samples", "2", "--per-criterion", "--no-cache", targets="a",
    )  # fmt: skip
    run_id = invoke_json(*args)["run_id"]
    key = "SELECT r.case_id, c.judge, c.judge_sample, c.criterion FROM judge_calls c JOIN responses r ON r.id = c.response_id WHERE c.run_id = ?"  # noqa: E501
    full = sorted(tuple(r.values()) for r in rows(db, key, run_id))
    # 2 responses x 2 judges x 2 samples x 2 criteria
    assert full == sorted(
        (cid, j, k, c) for cid in ("c1", "c2") for j in ("j1", "j2") for k in (0, 1) for c in CRITERIA
    )
    missing = [
        "SELECT c.id FROM judge_calls c JOIN responses r ON r.id = c.response_id WHERE c.run_id = ? AND"
        " ((r.case_id = 'c1' AND c.judge = 'j2') OR"
        " (r.case_id = 'c2' AND c.judge = 'j1' AND c.judge_sample = 1 AND c.criterion = 'preciseness'))"
    ]
    ids = [r["id"] for r in rows(db, missing[0], run_id)]
    assert len(ids) == 5
    marks = ",".join("?" * len(ids))
    interrupt(
        db,
        run_id,
        (f"DELETE FROM judgments WHERE judge_call_id IN ({marks})", tuple(ids)),
        (f"DELETE FROM judge_calls WHERE id IN ({marks})", tuple(ids)),
    )
    seen = len(fake_openai.calls())

    second = invoke_json(*args)
    assert second["run_id"] == run_id and second["resumed"] is True
    new = fake_openai.calls()[seen:]
    assert all(c.is_judge for c in new), "a target was called again"
    asked = sorted((c.model, "c1" if prompt_of("c1") in c.text else "c2", tuple(c.criteria())) for c in new)
    assert asked == [
        ("judge-j1", "c2", ("preciseness",)),
        ("judge-j2", "c1", ("instruction_following",)),
        ("judge-j2", "c1", ("instruction_following",)),
        ("judge-j2", "c1", ("preciseness",)),
        ("judge-j2", "c1", ("preciseness",)),
    ]
    assert sorted(tuple(r.values()) for r in rows(db, key, run_id)) == full, "every call once, none twice"
    assert len(rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id)) == 16
    doc = invoke_json("report", run_id, "--format", "json", "--db", str(db))
    assert all(len(s["verdicts"]) == 4 for r in doc["cases"] for s in r["scores"].values())


def test_interrupted_rejudge_resumes_without_copying_again(
    original: tuple[Path, str], fake_openai: FakeOpenAIServer
) -> None:
    db, source = original
    args = judge_args(source, db, "--judge", judge_spec(fake_openai, "j2"), "--no-cache")
    run_id = invoke_json(*args)["run_id"]
    ids = [
        r["id"]
        for r in rows(
            db,
            "SELECT c.id FROM judge_calls c JOIN responses r ON r.id = c.response_id"
            " WHERE c.run_id = ? AND r.target = 'a'",
            run_id,
        )
    ]
    assert len(ids) == 3
    marks = ",".join("?" * len(ids))
    interrupt(
        db,
        run_id,
        (f"DELETE FROM judgments WHERE judge_call_id IN ({marks})", tuple(ids)),
        (f"DELETE FROM judge_calls WHERE id IN ({marks})", tuple(ids)),
    )
    seen = len(fake_openai.calls())

    second = invoke_json(*args)
    assert second["run_id"] == run_id and second["resumed"] is True
    new = fake_openai.calls()[seen:]
    assert len(new) == 3 and all(c.model == "judge-j2" and "model-a says" in c.text for c in new)
    assert len(rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id)) == 6, "responses copied twice"
    assert len(rows(db, "SELECT * FROM cases WHERE run_id = ?", run_id)) == 3
    assert len(rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", run_id)) == 5
    assert rows(db, "SELECT status FROM runs WHERE run_id = ?", run_id) == [{"status": "complete"}]
