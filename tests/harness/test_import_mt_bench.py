"""`harness import mt-bench`: FastChat single-answer judgments become one judged run whose summary gives the
MT-Bench means per model and per turn; a bad line is one error naming the file, the line and the field, and
nothing is written."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_rows import rows

from harness.cli import cli, main
from harness.importers.names import target_name
from harness.store import Store
from reports.summary import summarise

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mt_bench" / "judgments.q81-100.jsonl"
MODELS = ["gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"]


def data_lines() -> list[dict[str, Any]]:
    assert DATA.is_file(), f"missing test data {DATA} (see shared/data/README.md)"  # fail, never skip
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


def invoke_json(*args: str | Path) -> Any:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def harness_exit(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def target_blocks(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The summary's per-target blocks by name, whether `targets` is a list of blocks or a dict keyed by name."""
    targets = doc["targets"]
    return dict(targets) if isinstance(targets, dict) else {t["target"]: t for t in targets}


def by_hand(lines: list[dict[str, Any]]) -> tuple[dict[str, list[float]], dict[tuple[str, int], list[float]]]:
    """Scores per model and per (model, turn), leaving out -1 (no score)."""
    per_model: dict[str, list[float]] = defaultdict(list)
    per_turn: dict[tuple[str, int], list[float]] = defaultdict(list)
    for line in lines:
        if line["score"] != -1:
            per_model[line["model"]].append(line["score"])
            per_turn[(line["model"], line["turn"])].append(line["score"])
    return per_model, per_turn


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_the_summary_gives_the_means_per_model_and_turn(tmp_path: Path) -> None:
    lines = data_lines()
    per_model, per_turn = by_hand(lines)
    assert sorted(per_model) == MODELS and len(lines) == 80
    db = tmp_path / "r.db"
    out = invoke_json("import", "mt-bench", DATA, "--db", db, "--name", "mt", "--format", "json")
    assert (out["judgments"], out["cases"], out["judges"], out["threshold"]) == (80, 40, ["gpt-4"], 8)

    store = Store(db)
    run = store.run("mt")
    assert run["run_id"] == out["run_id"] and run["status"] == "complete"
    assert [t["model"] for t in run["config"]["targets"]] == MODELS  # the model names as given
    # target names are the model names made safe: "mistralai/Mixtral-..." -> "mistralai-Mixtral-..."
    assert [t["name"] for t in run["config"]["targets"]] == [target_name(m) for m in MODELS]
    blocks = {m: target_blocks(summarise(store, out["run_id"]))[target_name(m)] for m in MODELS}
    for model in MODELS:
        stats = blocks[model]["criteria"]["mt_bench"]
        assert stats["mean"] == pytest.approx(mean(per_model[model]), abs=1e-4)
        assert stats["n"] == len(per_model[model]) == out["models"][model]["n"]
        assert out["models"][model]["mean"] == pytest.approx(mean(per_model[model]))
        # every score is 8 or more here, so at the default threshold of 8 every response passes
        assert blocks[model]["passed"] == sum(s >= 8 for s in per_model[model]) == 40
        for turn in (1, 2):
            tag = blocks[model]["tags"][f"turn-{turn}"]["criteria"]["mt_bench"]
            assert tag["mean"] == pytest.approx(mean(per_turn[(model, turn)]), abs=1e-4)
            assert tag["n"] == 20
            assert out["models"][model]["turns"][str(turn)] == pytest.approx(mean(per_turn[(model, turn)]))
    # the means this file gives (FastChat's show_result computes the same)
    assert mean(per_model[MODELS[0]]) == 9.5625 and mean(per_model[MODELS[1]]) == 9.525


def test_threshold_sets_the_pass_verdicts(tmp_path: Path) -> None:
    per_model, _ = by_hand(data_lines())
    db = tmp_path / "r.db"
    out = invoke_json("import", "mt-bench", DATA, "--db", db, "--threshold", "10", "--format", "json")
    blocks = target_blocks(summarise(Store(db), out["run_id"]))
    for model in MODELS:
        tens = sum(s >= 10 for s in per_model[model])
        assert 0 < tens < 40
        block = blocks[target_name(model)]
        assert (block["passed"], block["failed"]) == (tens, 40 - tens)
    cases = rows(db, "SELECT data FROM cases WHERE run_id = ?", out["run_id"])
    assert {json.loads(c["data"])["threshold"] for c in cases} == {10}


def test_what_the_run_records(tmp_path: Path) -> None:
    lines = data_lines()
    db = tmp_path / "r.db"
    out = invoke_json("import", "mt-bench", DATA, "--db", db, "--format", "json")
    run_id = out["run_id"]
    cases = {c["case_id"]: json.loads(c["data"]) for c in rows(db, "SELECT * FROM cases WHERE run_id = ?", run_id)}
    assert len(cases) == 40 and set(cases) == {f"{q}-turn{t}" for q in range(81, 101) for t in (1, 2)}
    case = cases["81-turn2"]
    assert (case["tags"], case["criteria"], case["threshold"], case["scale"]) == (["turn-2"], ["mt_bench"], 8, [1, 10])
    assert case["messages"][0]["role"] == "user" and case["messages"][0]["content"]

    responses = {(r["target"], r["case_id"]): r for r in rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id)}
    calls = {c["response_id"]: c for c in rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", run_id)}
    judgments = {j["response_id"]: j for j in rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id)}
    assert len(responses) == len(calls) == len(judgments) == 80
    for line in lines:
        r = responses[(target_name(line["model"]), f"{line['question_id']}-turn{line['turn']}")]
        assert (r["status"], r["checks"], r["attempts"], r["from_cache"], r["sample"]) == ("ok", "[]", 1, 0, 0)
        text = r["text"]  # exactly what the judge saw, e.g. " 1. ..." keeps its leading space
        (question,) = cases[r["case_id"]]["messages"]
        if line["turn"] == 1:  # FastChat's single-v1 prompt holds the question and answer between these markers
            asked = f"[Question]\n{question['content']}\n\n[The Start of Assistant's Answer]\n"
            assert f"{asked}{text}\n[The End of Assistant's Answer]" in line["user_prompt"]
        else:  # ... and single-v1-multi-turn ends with the second question and answer
            end = "<|The End of Assistant A's Conversation with User|>"
            asked = f"### User:\n{question['content']}\n\n### Assistant A:\n"
            assert line["user_prompt"].endswith(f"{asked}{text}\n\n{end}")
        call = calls[r["id"]]
        assert (call["judge"], call["template"], call["raw"]) == (
            "gpt-4",
            f"mt-bench/{line['judge'][1]}",
            line["judgment"],
        )
        assert json.loads(call["prompt"]) == [{"role": "user", "content": line["user_prompt"]}]
        j = judgments[r["id"]]
        assert (j["criterion"], j["score"], j["status"]) == ("mt_bench", line["score"], "scored")
    assert rows(db, "SELECT COUNT(*) AS n FROM call_cache")[0]["n"] == 0


def prompt(turn: int, answer: str) -> str:
    if turn == 1:
        return f"[Question]\nQ?\n\n[The Start of Assistant's Answer]\n{answer}\n[The End of Assistant's Answer]"
    return (
        "<|The Start of Assistant A's Conversation with User|>\n\n### User:\nQ?\n\n### Assistant A:\nfirst\n\n"
        f"### User:\nQ2?\n\n### Assistant A:\n{answer}\n\n<|The End of Assistant A's Conversation with User|>"
    )


def judgment(**overrides: Any) -> dict[str, Any]:
    turn = overrides.get("turn", 1)
    base: dict[str, Any] = {
        "question_id": 1,
        "model": "m",
        "judge": ["gpt-4", "single-v1" if turn == 1 else "single-v1-multi-turn"],
        "user_prompt": prompt(turn, "an answer"),
        "judgment": "Fine. Rating: [[7]]",
        "score": 7,
        "turn": 1,
        "tstamp": 1.0,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def write(path: Path, items: list[Any]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else json.dumps(x).encode()) + b"\n" for x in items))
    return path


def test_no_score_is_unscored_and_left_out_of_the_mean(tmp_path: Path) -> None:
    src = write(
        tmp_path / "j.jsonl",
        [
            judgment(),
            judgment(turn=2, score=-1, judgment="no rating"),
            judgment(question_id=2, score=9.5),
            judgment(question_id=2, turn=2, score=4, user_prompt=prompt(2, "second answer")),
        ],
    )
    db = tmp_path / "r.db"
    out = invoke_json("import", "mt-bench", src, "--db", db, "--format", "json")
    assert out["models"]["m"] == {"n": 3, "unscored": 1, "mean": pytest.approx(20.5 / 3), "turns": {"1": 8.25, "2": 4}}
    (block,) = target_blocks(summarise(Store(db), out["run_id"])).values()
    stats = block["criteria"]["mt_bench"]
    assert (stats["n"], stats["unscored"], stats["mean"]) == (3, 1, pytest.approx(20.5 / 3, abs=1e-4))
    assert (block["passed"], block["failed"], block["unscored"]) == (1, 2, 1)  # 9.5 passes 8; 7 and 4 fail
    unscored = rows(db, "SELECT * FROM judgments WHERE status != 'scored'")
    assert [(j["score"], j["status"], j["reason"]) for j in unscored] == [
        (None, "unscored", "the judge gave no score (-1)")
    ]
    texts = [r["text"] for r in rows(db, "SELECT text FROM responses ORDER BY id")]
    assert texts == ["an answer", "an answer", "an answer", "second answer"]


BAD = [
    # (lines, line, field or None, message fragment)
    ([judgment(), b'{"question_id": 2, "model": '], 2, None, "invalid JSON"),
    ([judgment(), judgment(question_id=2, score=...)], 2, "score", "is required but missing"),
    ([judgment(), judgment(question_id=2, model=...)], 2, "model", "is required but missing"),
    ([judgment(score=11)], 1, "score", "between 1 and 10, or -1"),
    ([judgment(score=0)], 1, "score", "between 1 and 10, or -1"),
    ([judgment(turn=3)], 1, "turn", "1 or 2"),
    ([judgment(judge="gpt-4")], 1, "judge", "valid"),
    ([judgment(), judgment(judgment="again")], 2, "turn", "first at line 1"),
    ([judgment(user_prompt="Rate this.")], 1, "user_prompt", "cannot find the answer judged"),
    ([judgment(turn=2, user_prompt=prompt(1, "x"))], 1, "user_prompt", "cannot find the answer judged"),
    ([judgment(), [1]], 2, None, "JSON object"),
    ([b"", b" "], None, None, "no MT-Bench judgments"),
]


@pytest.mark.parametrize(("items", "at", "field", "message"), BAD)
def test_a_bad_line_is_one_error_and_nothing_is_written(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    items: list[Any],
    at: int | None,
    field: str | None,
    message: str,
) -> None:
    src = write(tmp_path / "bad.jsonl", items)
    db = tmp_path / "r.db"
    code, out, err = harness_exit(capsys, "import", "mt-bench", src, "--db", db)
    assert (code, out) == (2, "")
    err = err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: {src}:{at}: " if at else f"error: {src}: "), err
    if field is not None:
        assert f"field '{field}'" in err
    assert message in err
    assert not db.exists()  # the file is validated before the store is opened


def test_a_bad_last_line_writes_nothing_to_an_existing_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.db"
    Store(db).close()
    src = write(tmp_path / "bad.jsonl", [judgment(), judgment(turn=2), judgment(question_id=3, score=12)])
    code, _, err = harness_exit(capsys, "import", "mt-bench", src, "--db", db)
    assert code == 2 and f"{src}:3: field 'score'" in err
    for table in ("runs", "cases", "responses", "judge_calls", "judgments"):
        assert rows(db, f"SELECT * FROM {table}") == []


def test_reference_guided_prompts_give_the_answer_and_question(tmp_path: Path) -> None:
    """FastChat's single-math-v1 prompts put a reference answer between the question and the answer judged."""
    turn1 = (
        "[Instruction]\nJudge.\n\n[Question]\nWhat is 2+2?\n\n[The Start of Reference Answer]\n4\n"
        "[The End of Reference Answer]\n\n[The Start of Assistant's Answer]\nIt is 4.\n[The End of Assistant's Answer]"
    )
    turn2 = (
        "<|The Start of Reference Answer|>\n\n### User:\nWhat is 2+2?\n\n### Reference answer:\n4\n\n### User:\n"
        "And 3+3?\n\n### Reference answer:\n6\n\n<|The End of Reference Answer|>\n\n\n"
        "<|The Start of Assistant A's Conversation with User|>\n\n### User:\nWhat is 2+2?\n\n### Assistant A:\n"
        "It is 4.\n\n### User:\nAnd 3+3?\n\n### Assistant A:\n6, I think.\n\n"
        "<|The End of Assistant A's Conversation with User|>"
    )
    src = write(
        tmp_path / "math.jsonl",
        [
            judgment(question_id=111, user_prompt=turn1, judge=["gpt-4", "single-math-v1"]),
            judgment(question_id=111, turn=2, user_prompt=turn2, judge=["gpt-4", "single-math-v1-multi-turn"]),
        ],
    )
    db = tmp_path / "r.db"
    invoke_json("import", "mt-bench", src, "--db", db, "--format", "json")
    got = rows(
        db, "SELECT r.case_id, r.text, c.data FROM responses r JOIN cases c USING (run_id, case_id) ORDER BY r.id"
    )
    assert [(r["case_id"], r["text"], json.loads(r["data"])["messages"]) for r in got] == [
        ("111-turn1", "It is 4.", [{"role": "user", "content": "What is 2+2?"}]),
        ("111-turn2", "6, I think.", [{"role": "user", "content": "And 3+3?"}]),
    ]
    templates = [c["template"] for c in rows(db, "SELECT template FROM judge_calls ORDER BY id")]
    assert templates == ["mt-bench/single-math-v1", "mt-bench/single-math-v1-multi-turn"]


def test_our_judge_rescores_the_imported_answers_on_our_criteria(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fake_openai_server import FakeOpenAIServer, verdict

    db = tmp_path / "r.db"
    run_id = invoke_json("import", "mt-bench", DATA, "--db", db, "--format", "json")["run_id"]
    with FakeOpenAIServer(policy=lambda call: verdict(4) if call.is_judge else None) as server:
        judge = f"j=openai:judge@{server.url}"
        # the imported criterion is MT-Bench's own: our judges cannot score it, and say so instead of crashing
        code, _, err = harness_exit(capsys, "judge", run_id, "--judge", judge, "--db", db)
        assert code == 2 and "'mt_bench', which no judge here knows" in err and "--criteria" in err
        ours = ["--criteria", "preciseness", "--no-canaries"]
        out = invoke_json("judge", run_id, "--judge", judge, *ours, "--db", db, "--format", "json")
        assert len(server.calls(judge=True)) == 80
    new = out["run_id"]
    cases = [json.loads(c["data"]) for c in rows(db, "SELECT data FROM cases WHERE run_id = ?", new)]
    assert {(tuple(c["criteria"]), c["threshold"]) for c in cases} == {(("preciseness",), 4)}  # 8 of 10 is off-scale
    blocks = target_blocks(summarise(Store(db), new))
    assert {n: (b["passed"], b["criteria"]["preciseness"]["n"]) for n, b in blocks.items()} == {
        target_name(m): (40, 40) for m in MODELS
    }
