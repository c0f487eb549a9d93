"""`harness import alpaca-eval`: AlpacaEval annotations become one pairwise run whose analysis gives the published
leaderboard figures; a bad element is one error naming the file, the line and the field, and nothing is written."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from store_rows import rows

from harness.cli import cli, main
from harness.store import Store
from reports.pairwise import pairwise_table
from reports.summary import summarise

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "alpaca_eval"
MODELS = ["alpaca-7b", "falcon-40b-instruct", "claude-2"]
BASELINE = "gpt4_1106_preview"
ANNOTATOR = "weighted_alpaca_eval_gpt4_turbo"


def data_file(name: str) -> Path:
    path = DATA / name
    assert path.is_file(), f"missing test data {path} (see shared/data/README.md)"  # fail, never skip
    return path


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


def target_names(doc: dict[str, Any]) -> list[str]:
    """The summary's target names, whether `targets` is a list of blocks or a dict keyed by name."""
    targets = doc["targets"]
    return list(targets) if isinstance(targets, dict) else [t["target"] for t in targets]


def test_three_models_give_the_leaderboard_figures(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    files = [data_file(f"{m}.annotations.json") for m in MODELS]
    out = invoke_json("import", "alpaca-eval", *files, "--db", db, "--name", "ae", "--format", "json")
    assert out["annotations"] == 3 * 805
    assert out["models"] == MODELS and out["baselines"] == [BASELINE] and out["judges"] == [ANNOTATOR]

    with (DATA / "leaderboard_rows.csv").open(newline="") as handle:
        board = {row[""]: row for row in csv.DictReader(handle)}
    store = Store(db)
    run = store.run("ae")
    assert run["run_id"] == out["run_id"] and run["status"] == "complete"
    table = {(e["judge"], e["model"], e["opponent"]): e for e in pairwise_table(store.pairwise(out["run_id"]))}
    printed = {e["model"]: e for e in out["win_rates"]}
    for model in MODELS:
        e, want = table[(ANNOTATOR, model, BASELINE)], board[model]
        assert 100 * e["win_rate"] == pytest.approx(float(want["win_rate"]), abs=5e-4)
        assert 100 * e["standard_error"] == pytest.approx(float(want["standard_error"]), abs=5e-4)
        got = (e["wins"], e["losses"], e["ties"], e["n"], e["unscored"])
        assert got == (int(want["n_wins"]), int(want["n_wins_base"]), int(want["n_draws"]), int(want["n_total"]), 0)
        assert printed[model] == e  # what the command prints is the report's figure
    assert set(printed) == set(MODELS)

    # the run's targets are the model names found in the files, and the report lists them
    names = [t["name"] for t in run["config"]["targets"]]
    assert names == [*MODELS, BASELINE]
    assert target_names(summarise(store, out["run_id"], include_cases=False)) == names
    assert run["config"]["judge"]["name"] == ANNOTATOR


def test_each_annotation_is_a_pairwise_row(tmp_path: Path) -> None:
    src = data_file("alpaca-7b.annotations.json")
    first = json.loads(src.read_text(encoding="utf-8"))[0]
    db = tmp_path / "r.db"
    out = invoke_json("import", "alpaca-eval", src, "--db", db, "--format", "json")
    stored = rows(db, "SELECT * FROM pairwise ORDER BY id")
    assert len(stored) == 805 and {r["run_id"] for r in stored} == {out["run_id"]}
    row = stored[0]
    assert (row["model_a"], row["model_b"], row["judge"], row["first"]) == (BASELINE, "alpaca-7b", ANNOTATOR, "a")
    assert (row["suite"], row["sample"], row["status"], row["winner"]) == ("alpaca_eval", 0, "scored", "a")
    assert row["case_id"] == hashlib.sha256(first["instruction"].encode()).hexdigest()[:16]
    assert (row["instruction"], row["response_a"], row["response_b"]) == (
        first["instruction"],
        first["output_1"],
        first["output_2"],
    )
    assert row["preference"] == first["preference"]
    assert json.loads(row["raw"]) == first["raw_completion"]
    assert {r["winner"] for r in stored if r["preference"] > 1.5} == {"b"}
    assert {r["winner"] for r in stored if r["preference"] < 1.5} == {"a"}
    assert {r["winner"] for r in stored if r["preference"] == 1.5} == {"tie"}
    assert len({r["case_id"] for r in stored}) == 805  # one case per instruction

    config = rows(db, "SELECT config FROM runs")[0]["config"]
    imported = json.loads(config)["imported"]
    assert imported["format"] == "alpaca-eval"
    assert imported["files"] == [{"file": str(src), "sha256": hashlib.sha256(src.read_bytes()).hexdigest()}]

    # the table output: the run id alone on stdout, the figures on stderr
    result = CliRunner().invoke(cli, ["import", "alpaca-eval", str(src), "--db", str(db)], catch_exceptions=False)
    assert result.exit_code == 0
    assert len(rows(db, "SELECT * FROM runs WHERE run_id = ?", result.stdout.strip())) == 1
    assert "alpaca-7b" in result.stderr and "2.59" in result.stderr and "785" in result.stderr


def annotation(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "instruction": "Say hi",
        "output_1": "hi",
        "output_2": "hello",
        "generator_1": "base",
        "generator_2": "model-x",
        "annotator": "judge-j",
        "preference": 1.8,
        "dataset": "tiny",
        "price_per_example": 0.01,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def write(path: Path, items: list[Any]) -> Path:
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")  # annotation() spans 11 lines: 2-12, 13-23, ...
    return path


def test_null_preference_is_unscored_and_files_add_up(tmp_path: Path) -> None:
    one = write(tmp_path / "one.json", [annotation(), annotation(instruction="Count", preference=None)])
    two = write(tmp_path / "two.json", [annotation(generator_2="model-y", preference=0)])
    db = tmp_path / "r.db"
    out = invoke_json("import", "alpaca-eval", one, two, "--db", db, "--format", "json")
    assert out["models"] == ["model-x", "model-y"]
    stored = rows(db, "SELECT winner, status, reason, preference, model_b FROM pairwise ORDER BY id")
    assert [(r["winner"], r["status"], r["preference"]) for r in stored] == [
        ("b", "scored", 1.8),
        (None, "unscored", None),
        ("tie", "scored", 1.5),
    ]
    assert stored[1]["reason"] == "no preference in the annotation"
    figures = {e["model"]: e for e in out["win_rates"]}
    assert (figures["model-x"]["n"], figures["model-x"]["unscored"], figures["model-x"]["wins"]) == (1, 1, 1)
    assert figures["model-x"]["win_rate"] == pytest.approx(0.8)
    assert (figures["model-y"]["ties"], figures["model-y"]["win_rate"]) == (1, 0.5)


BAD = [
    # (elements or raw text, line, field or None, message fragment)
    ('[\n  {"instruction": "a",\n   "output_1": }\n]', 3, None, "invalid JSON"),
    ({"not": "an array"}, 1, None, "must be a JSON array"),
    ([annotation(), [1, 2]], 13, None, "must be a JSON object"),
    ([annotation(), annotation(preference=...)], 13, "preference", "is required but missing"),
    ([annotation(), annotation(preference=2.5)], 20, "preference", "less than or equal to 2"),
    ([annotation(preference=0.5)], 9, "preference", "greater than or equal to 1"),
    ([annotation(generator_2="")], 7, "generator_2", "at least 1 character"),
    ([annotation(), annotation(output_2="other")], 13, "instruction", "first at"),
    ([], None, None, "holds no annotations"),
]


@pytest.mark.parametrize(("items", "at", "field", "message"), BAD)
def test_a_bad_annotation_is_one_error_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], items: Any, at: int | None, field: str | None, message: str
) -> None:
    src = tmp_path / "bad.json"
    if isinstance(items, str):
        src.write_text(items, encoding="utf-8")
    else:
        write(src, items)
    db = tmp_path / "r.db"
    code, out, err = harness_exit(capsys, "import", "alpaca-eval", src, "--db", db)
    assert (code, out) == (2, "")
    err = err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: {src}:{at}: " if at else f"error: {src}: "), err
    if field is not None:
        assert f"field '{field}'" in err
    assert message in err
    assert not db.exists()  # every file is validated before the store is opened


def test_a_bad_second_file_writes_nothing_to_an_existing_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.db"
    Store(db).close()
    good = write(tmp_path / "good.json", [annotation()])
    same = write(tmp_path / "same.json", [annotation(instruction="Other"), annotation(output_1="x")])
    code, _, err = harness_exit(capsys, "import", "alpaca-eval", good, same, "--db", db)
    assert code == 2
    assert f"{same}:13: field 'instruction'" in err and f"first at {good}:2" in err
    assert rows(db, "SELECT * FROM runs") == [] and rows(db, "SELECT * FROM pairwise") == []
