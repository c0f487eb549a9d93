"""Tidy tables of a stored run (reports/tables.py): the values are the store's, and CSV and Parquet round-trip,
texts with commas, quotes and newlines included."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from fake_openai_server import Action, Call, FakeOpenAIServer, bad_request, not_json, reply, verdict
from store_rows import rows

from harness.cli import cli
from harness.store import Store
from reports.tables import SCHEMA, TABLES, read_table, tables, write_tables

CRITERIA = ["preciseness", "instruction_following"]
TRICKY = 'He said "hi", then left,\nnew line\r\nand ""doubled"" quotes; NA, null, None\ttab, ünïcode ✓ =1+1'
RATIONALE = 'Fine, mostly: "quoted"\nsecond line, with commas'
ERROR = 'bad "request", with a comma\nand a newline'
# case -> (judge-1 score, judge-2 score); None: the judge answers prose, twice (unscored)
SCORES: dict[str, tuple[int, int] | None] = {"good": (5, 4), "low": (2, 3), "garbled": None, "failcheck": (5, 5)}
VERDICTS = {"good": "pass", "low": "fail", "garbled": "unscored", "failcheck": "fail", "broken": "error"}
CHECKS = {"good": "[{contains: said}]", "failcheck": "[{contains: said}, {ifeval: {id: 'punctuation:no_comma'}}]"}


def prompt_of(case_id: str) -> str:
    return f"[{case_id}] Say something tricky."


def case_of(call: Call) -> str:
    (case,) = [c for c in VERDICTS if prompt_of(c) in call.text]
    return case


def policy(call: Call) -> Action | None:
    case = case_of(call)
    if call.is_judge:
        scores = SCORES[case]
        if scores is None:
            return not_json()
        return verdict(scores[0] if call.model == "judge-1" else scores[1], RATIONALE)
    if case == "broken":
        return bad_request(ERROR)
    return reply(TRICKY if call.model == "model-a" else f"he said {case}, briefly")


def make_run(tmp_path: Path, judged: bool = True) -> tuple[Path, str]:
    suite = tmp_path / "tricky.yaml"
    lines = ["suite: tricky", "version: 1.0.0", "defaults:", f"  criteria: {json.dumps(CRITERIA)}", "cases:"]
    for cid in VERDICTS:
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}", f"    tags: [t-{cid}, shared]"]
        if cid in CHECKS:
            lines.append(f"    checks: {CHECKS[cid]}")
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "results.db"
    with FakeOpenAIServer(policy=policy) as server:
        args = ["run", str(suite), "-t", f"a=openai:model-a@{server.url}", "-t", f"b=openai:model-b@{server.url}"]
        if judged:
            args += ["--judge", f"j1=openai:judge-1@{server.url}", "--judge", f"j2=openai:judge-2@{server.url}"]
            args.append("--no-canaries")
        args += ["--samples", "2", "--db", str(db), "--format", "json", "--name", "tables-run"]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db, json.loads(result.stdout)["run_id"]


@pytest.fixture
def stored_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.chdir(tmp_path)
    return make_run(tmp_path)


def load(db: Path, run_id: str) -> dict[str, pd.DataFrame]:
    store = Store(db)
    try:
        return tables(store, run_id)
    finally:
        store.close()


def na(value: Any) -> Any:
    return None if value is pd.NA or (isinstance(value, float) and value != value) else value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: na(v) for k, v in r.items()} for r in df.to_dict("records")]


def test_tables_hold_the_stores_values(stored_run: tuple[Path, str]) -> None:
    db, run_id = stored_run
    by_name = load(db, "tables-run")  # a run's name resolves to its id
    assert list(by_name) == list(TABLES) == ["responses", "scores", "verdicts", "checks"]
    for name, df in by_name.items():
        assert list(df.columns) == list(SCHEMA[name]), name
        assert {c: str(t) for c, t in df.dtypes.items()} == SCHEMA[name], name
        assert set(df["run_id"]) == {run_id}

    # responses: one row per stored response, field for field
    stored = rows(db, "SELECT * FROM responses WHERE run_id = ? ORDER BY id", run_id)
    assert len(stored) == len(VERDICTS) * 2 * 2  # cases x targets x samples
    responses = records(by_name["responses"])
    assert [r["response_id"] for r in responses] == [s["id"] for s in stored]
    for r, s in zip(responses, stored, strict=True):
        for column in ("suite", "case_id", "target", "sample", "status", "latency_ms", "tokens_in", "tokens_out"):
            assert r[column] == s[column], column
        for column in ("attempts", "finish_reason", "error", "text", "created_at"):
            assert r[column] == s[column], column
        assert r["from_cache"] is bool(s["from_cache"])
        assert r["text_chars"] == (None if s["text"] is None else len(s["text"]))
        assert r["verdict"] == VERDICTS[s["case_id"]]
        assert r["tags"] == f"t-{s['case_id']},shared"
        assert r["threshold"] == 4
    assert {r["text"] for r in responses if r["target"] == "a" and r["status"] == "ok"} == {TRICKY}
    assert all(ERROR in r["error"] for r in responses if r["status"] == "error")

    # verdicts: one row per stored judgment, with its judge call's judge, sample and template
    judgments = rows(
        db,
        "SELECT j.*, c.judge, c.judge_sample, c.template FROM judgments j JOIN judge_calls c ON c.id = j.judge_call_id"
        " WHERE j.run_id = ? ORDER BY j.response_id, j.id",
        run_id,
    )
    verdicts = records(by_name["verdicts"])
    columns = ["response_id", "criterion", "judge", "judge_sample", "score", "weighted_score", "status", "reason"]
    columns += ["template", "rationale"]
    assert len(verdicts) == len(judgments) > 0
    assert sorted(tuple(str(v[c]) for c in columns) for v in verdicts) == sorted(
        tuple(str(j[c]) for c in columns) for j in judgments
    )
    assert {v["judge"] for v in verdicts} == {"j1", "j2"}

    # scores: one row per response x criterion, the panel's mean of the scored verdicts
    scores = records(by_name["scores"])
    by_key: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for j in judgments:
        by_key.setdefault((j["response_id"], j["criterion"]), []).append(j)
    assert {(s["response_id"], s["criterion"]) for s in scores} == set(by_key)
    case_of_response = {s["id"]: s["case_id"] for s in stored}
    for s in scores:
        group = by_key[(s["response_id"], s["criterion"])]
        assert s["verdicts"] == len(group) == 2
        scored = [j["score"] for j in group if j["status"] == "scored"]
        if scored:
            assert s["status"] == "scored" and s["score"] == pytest.approx(statistics.fmean(scored))
            assert s["score"] == pytest.approx(statistics.fmean(SCORES[case_of_response[s["response_id"]]] or ()))
            first = next(j for j in group if j["status"] == "scored")  # the panel's first verdict, as stored
            assert s["rationale"] == RATIONALE and s["judge"] == first["judge"] and s["unscored_verdicts"] == 0
        else:
            assert case_of_response[s["response_id"]] == "garbled"
            assert s["status"] == "unscored" and s["score"] is None and s["reason"]
            assert s["unscored_verdicts"] == 2
    assert "broken" not in {case_of_response[s["response_id"]] for s in scores}  # errors are never judged

    # checks: one row per response x stored check result
    expected = [
        (s["id"], c["check"], c["passed"], c.get("loose"), c["detail"]) for s in stored for c in json.loads(s["checks"])
    ]
    got = [(c["response_id"], c["check"], c["passed"], c["loose"], c["detail"]) for c in records(by_name["checks"])]
    assert got == expected
    assert {c[1] for c in got} == {"contains: said", "ifeval: punctuation:no_comma"}
    assert {c[3] for c in got if c[1] == "contains: said"} == {None}  # only IFEval checks have a loose outcome
    assert {c[3] for c in got if c[1].startswith("ifeval")} == {True, False}  # a's text passes loose, b's does not
    failcheck = [c for c in got if case_of_response[c[0]] == "failcheck" and c[2] is False]
    assert failcheck and all(case_of_response[c[0]] == "failcheck" for c in got if c[2] is False)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_tables_round_trip(stored_run: tuple[Path, str], tmp_path: Path, fmt: str) -> None:
    db, run_id = stored_run
    store = Store(db)
    try:
        paths = write_tables(store, run_id, tmp_path / "out", fmt)
        expected = tables(store, run_id)
    finally:
        store.close()
    assert paths == [tmp_path / "out" / f"{name}.{fmt}" for name in TABLES]
    for name, path in zip(TABLES, paths, strict=True):
        back = read_table(path)
        pd.testing.assert_frame_equal(back, expected[name], check_exact=True)
        plain = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path, keep_default_na=False)
        assert list(plain.columns) == list(SCHEMA[name]) and len(plain) == len(expected[name])
    if fmt == "parquet":  # the dtypes travel with the file
        plain = pd.read_parquet(paths[0])
        assert {c: str(t) for c, t in plain.dtypes.items()} == SCHEMA["responses"]
    else:  # plain pandas reads the texts back as written: quotes, commas, CR/LF and all
        plain = pd.read_csv(paths[0], keep_default_na=False)
        assert (plain.loc[plain["target"] == "a", "text"].isin([TRICKY, ""])).all()
        assert (plain["text"] == TRICKY).sum() == 4 * 2  # four answered cases x two samples for target a
        scores = pd.read_csv(paths[1], keep_default_na=False)
        assert set(scores.loc[scores["status"] == "scored", "rationale"]) == {RATIONALE}
        assert paths[0].read_text(encoding="utf-8").count('"He said ""hi"", then left,\n') == 8


def test_an_unjudged_run_has_empty_score_tables_with_every_column(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db, run_id = make_run(tmp_path, judged=False)
    store = Store(db)
    try:
        paths = write_tables(store, run_id, tmp_path / "csv", "csv")
        paths += write_tables(store, run_id, tmp_path / "parquet", "parquet")
        with pytest.raises(ValueError, match="unknown table format 'xlsx'"):
            write_tables(store, run_id, tmp_path / "x", "xlsx")
    finally:
        store.close()
    for path in paths:
        df = read_table(path)
        assert list(df.columns) == list(SCHEMA[path.stem])
        assert len(df) == {"responses": 20, "scores": 0, "verdicts": 0, "checks": 12}[path.stem], path
    responses = read_table(tmp_path / "csv" / "responses.csv")
    # checks alone decide; a case without checks was evaluated by nothing: unscored, never a pass
    assert set(responses["verdict"]) == {"pass", "fail", "error", "unscored"}


def test_importing_the_tables_module_does_not_import_pandas() -> None:
    code = "import sys, reports.tables; print('pandas' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd())
    assert out.stdout.strip() == "False"
