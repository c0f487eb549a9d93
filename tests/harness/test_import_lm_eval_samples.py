"""`harness import lm-eval-samples`: samples files written by a real lm-eval run (`--log_samples`, and
`--predict_only`) against the loopback OpenAI-compatible server become one run whose checks are lm-eval's
per-document metrics; `harness judge` then judges every imported response end to end. A bad file is one error
naming the file, the line and the field, and nothing is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_openai_server import Action, Call, FakeOpenAIServer, reply
from store_rows import rows

from harness.cli import cli, main
from harness.importers.lm_eval_samples import SAMPLES_NAME
from harness.store import Store
from reports.summary import summarise

MODEL = "org/Capitals-7B"  # a model name with a "/": its target name is "org-Capitals-7B"
TARGET = "org-Capitals-7B"
DOCS = [
    ("What is the capital of France?", "Paris", "Paris"),
    ("What is the capital of Italy?", "Rome", "Milan"),
    ("What is the capital of Spain?", "Madrid", "Madrid."),  # exact_match ignores punctuation here: a match
    ("What is the capital of Japan?", "Tokyo", "The capital is Tokyo"),
]
REPLIES = {question: answer for question, _, answer in DOCS}

# "capitals": lm-eval's exact_match (0/1: checks) and bleu (a corpus metric: not a number per document)
CAPITALS_YAML = """\
task: capitals
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Q: {{{{question}}}}\\nA:"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 16
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: true
  - metric: bleu
    aggregation: bleu
    higher_is_better: true
metadata:
  version: 1.0
"""
# "capitals_scored": two filters, two generations per document, metrics from process_results: exact (0/1) and
# f1 (a fraction under the "raw" filter: a score; 0/1 only under "last": a check)
SCORED_YAML = """\
task: capitals_scored
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
repeats: 2
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 16
  do_sample: false
process_results: !function utils.process_results
metric_list:
  - metric: exact
    aggregation: mean
    higher_is_better: true
  - metric: f1
    aggregation: mean
    higher_is_better: true
filter_list:
  - name: raw
    filter:
      - function: take_first
  - name: last
    filter:
      - function: regex
        regex_pattern: "(\\\\w+)\\\\W*$"
      - function: take_first
metadata:
  version: 1.0
"""
UTILS_PY = """\
def process_results(doc, results):
    pred = results[0].strip().lower().rstrip(".").split()
    gold = doc["answer"].lower().split()
    common = len(set(pred) & set(gold))
    return {"exact": int(pred == gold), "f1": 2 * common / (len(pred) + len(gold)) if common else 0.0}
"""


@dataclass(frozen=True)
class LmEvalOutputs:
    logged: Path  # the output folder of the --log_samples run
    predict_only: Path  # ... of the --predict_only run
    requests: list[Call]  # what lm-eval sent the server


def answer(call: Call) -> Action | None:
    """The scripted reply to each question (judge calls fall through to the server's default verdict)."""
    if call.is_judge:
        return None
    for question, text in REPLIES.items():
        if question in call.text:
            return reply(text)
    return reply("I do not know")


def run_lm_eval(server: FakeOpenAIServer, tasks: Path, out: Path, home: Path, *extra: str) -> None:
    env = {
        **os.environ,
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(home),
        "HF_DATASETS_CACHE": str(home / "datasets"),
    }
    model_args = f"base_url={server.url}/chat/completions,model={MODEL},num_concurrent=1,tokenized_requests=False"
    args = ["--model", "local-chat-completions", "--model_args", model_args, "--apply_chat_template"]
    args += ["--include_path", str(tasks), "--output_path", str(out), "--log_samples", *extra]
    done = subprocess.run(
        [sys.executable, "-m", "lm_eval", *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LmEvalOutputs]:
    root = tmp_path_factory.mktemp("lm_eval")
    tasks = root / "tasks"
    tasks.mkdir()
    data = tasks / "capitals.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a, _ in DOCS), encoding="utf-8")
    (tasks / "capitals.yaml").write_text(CAPITALS_YAML.format(data=data), encoding="utf-8")
    (tasks / "capitals_scored.yaml").write_text(SCORED_YAML.format(data=data), encoding="utf-8")
    (tasks / "utils.py").write_text(UTILS_PY, encoding="utf-8")
    with FakeOpenAIServer(policy=answer) as server:
        run_lm_eval(server, tasks, root / "logged", root / "hf", "--tasks", "capitals,capitals_scored")
        run_lm_eval(server, tasks, root / "predict", root / "hf", "--tasks", "capitals", "--predict_only")
        yield LmEvalOutputs(root / "logged", root / "predict", server.calls())


def samples(folder: Path, task: str) -> Path:
    (path,) = [p for p in folder.glob("*/samples_*.jsonl") if task_of(p) == task]
    return path


def task_of(path: Path) -> str | None:
    found = SAMPLES_NAME.match(path.name)
    return found["task"] if found else None


def results_json(folder: Path) -> dict[str, Any]:
    (path,) = folder.glob("*/results_*.json")
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def invoke_json(*args: str | Path) -> Any:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def harness_exit(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_lm_eval_wrote_what_the_importer_reads(outputs: LmEvalOutputs) -> None:
    """The files come from lm-eval itself: its per-document metrics and aggregate figures for the replies."""
    capitals = lines(samples(outputs.logged, "capitals"))
    assert [(s["doc_id"], s["filter"], s["exact_match"]) for s in capitals] == [
        (0, "none", 1.0),
        (1, "none", 0.0),
        (2, "none", 1.0),
        (3, "none", 0.0),
    ]
    assert all(isinstance(s["bleu"], list) for s in capitals)  # a corpus metric: [reference, prediction] per doc
    scored = lines(samples(outputs.logged, "capitals_scored"))
    assert sorted((s["doc_id"], s["filter"]) for s in scored) == [(d, f) for d in range(4) for f in ("last", "raw")]
    assert all(len(s["resps"][0]) == 2 for s in scored)  # repeats: 2
    figures = results_json(outputs.logged)["results"]
    assert figures["capitals"]["exact_match,none"] == 0.5
    assert figures["capitals_scored"]["exact,last"] == 0.75  # "Tokyo" is the last word of the fourth reply


def test_the_import_holds_lm_evals_generations_and_metrics(outputs: LmEvalOutputs, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    files = [samples(outputs.logged, "capitals"), samples(outputs.logged, "capitals_scored")]
    out = invoke_json("import", "lm-eval-samples", *files, "--db", db, "--name", "lm", "--format", "json")
    assert (out["cases"], out["responses"], out["targets"]) == (8, 4 + 8, {TARGET: MODEL})
    assert out["skipped_metrics"] == ["capitals: bleu,none"]
    # the importer's means are lm-eval's own aggregate figures
    lm_eval = results_json(outputs.logged)["results"]
    for figure in out["tasks"]:
        assert figure["model"] == MODEL
        for metric, mean in figure["metrics"].items():
            assert mean == pytest.approx(lm_eval[figure["task"]][metric]), (figure["task"], metric)
    assert {f["task"]: sorted(f["metrics"]) for f in out["tasks"]} == {
        "capitals": ["exact_match,none"],
        "capitals_scored": ["exact,last", "exact,raw", "f1,last", "f1,raw"],
    }

    store = Store(db)
    run = store.run("lm")
    (spec,) = run["config"]["targets"]
    assert (spec["name"], spec["provider"], spec["model"]) == (TARGET, "imported", MODEL)
    assert [s["suite"] for s in run["config"]["suites"]] == ["capitals", "capitals_scored"]

    cases = {(c["suite"], c["case_id"]): c for c in store.cases(out["run_id"])}
    sent = {c.text: c.messages for c in outputs.requests if not c.is_judge}
    for i, (question, gold, _) in enumerate(DOCS):
        case = cases[("capitals", str(i))]
        # the chat messages lm-eval sent are the case's messages
        assert case["messages"] == [{"role": "user", "content": f"Q: {question}\nA:"}]
        assert sent[f"Q: {question}\nA:"] == case["messages"]
        assert (case["references"], case["tags"]) == ([gold], ["capitals"])
        assert case["criteria"] == ["preciseness", "instruction_following"]
        assert cases[("capitals_scored", str(i))]["messages"][0]["content"] == f"Question: {question}\nAnswer:"

    responses = rows(db, "SELECT * FROM responses WHERE run_id = ? ORDER BY suite, case_id, sample", out["run_id"])
    by_key = {(r["suite"], r["case_id"], r["sample"]): r for r in responses}
    assert len(by_key) == 12 and {r["target"] for r in responses} == {TARGET}
    for i, (_, _, text) in enumerate(DOCS):
        r = by_key[("capitals", str(i), 0)]
        assert r["text"] == text and r["status"] == "ok"
        (check,) = json.loads(r["checks"])
        assert check["check"] == "lm-eval:exact_match,none"
        assert check["passed"] is (i in (0, 2))
        for sample in (0, 1):  # both generations of a repeated task, with the document's checks
            scored = by_key[("capitals_scored", str(i), sample)]
            assert scored["text"] == text
            names = {c["check"]: c["passed"] for c in json.loads(scored["checks"])}
            assert names == {
                "lm-eval:exact,raw": i in (0, 2),
                "lm-eval:exact,last": i != 1,  # the last word of "The capital is Tokyo" is the answer
                "lm-eval:f1,last": i != 1,
            }
    # f1 under the raw filter is a fraction (0.4 for "The capital is Tokyo"): a score, not a check
    judged = rows(
        db,
        "SELECT r.case_id, r.sample, j.criterion, j.score, c.judge FROM judgments j JOIN responses r ON r.id ="
        " j.response_id JOIN judge_calls c ON c.id = j.judge_call_id WHERE j.run_id = ?",
        out["run_id"],
    )
    assert {(j["case_id"], j["sample"], j["criterion"], j["judge"]) for j in judged} == {
        (str(i), s, "lm-eval:f1,raw", "lm-eval") for i in range(4) for s in (0, 1)
    }
    assert {j["case_id"]: j["score"] for j in judged} == {"0": 1.0, "1": 0.0, "2": 1.0, "3": 0.4}

    # the report's pass rate on "capitals" is lm-eval's exact_match
    doc = summarise(store, out["run_id"])
    coverage = {c["suite"]: c for c in doc["coverage"]}
    assert (coverage["capitals"]["passed"], coverage["capitals"]["failed"]) == (2, 2)
    assert coverage["capitals"]["pass_rate"] == lm_eval["capitals"]["exact_match,none"]
    assert doc["targets"][TARGET]["criteria"]["lm-eval:f1,raw"]["mean"] == pytest.approx(
        lm_eval["capitals_scored"]["f1,raw"], abs=1e-4
    )
    assert rows(db, "SELECT COUNT(*) AS n FROM call_cache")[0]["n"] == 0


def test_imported_samples_are_judged_end_to_end(outputs: LmEvalOutputs, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    files = [samples(outputs.logged, "capitals"), samples(outputs.logged, "capitals_scored")]
    imported = invoke_json("import", "lm-eval-samples", *files, "--db", db, "--format", "json")["run_id"]
    with FakeOpenAIServer(judge_score=5) as judge:
        out = invoke_json(
            "judge", imported, "--judge", f"j=openai:judge@{judge.url}", "--no-canaries", "--db", db, "--format", "json"
        )
        asked = judge.calls()
    run_id = out["run_id"]
    assert run_id != imported and len(asked) == 12  # one judge call per imported response, no target call
    assert all(c.is_judge and c.model == "judge" for c in asked)
    # every judge prompt shows the generation it judges
    for _, _, text in DOCS:
        assert sum(text in c.text for c in asked) >= 3
    responses = rows(db, "SELECT id, text, checks FROM responses WHERE run_id = ?", run_id)
    judgments = rows(db, "SELECT response_id, criterion, score, status FROM judgments WHERE run_id = ?", run_id)
    assert len(responses) == 12
    assert {(j["response_id"], j["criterion"]) for j in judgments} == {
        (r["id"], c) for r in responses for c in ("preciseness", "instruction_following")
    }
    assert {(j["score"], j["status"]) for j in judgments} == {(5.0, "scored")}
    # lm-eval's checks travel with the responses: a judged response passes when its checks pass too
    block = out["summary"][TARGET]
    assert block["criteria"]["preciseness"]["n"] == 12
    assert (block["passed"], block["failed"]) == (2 + 4, 2 + 4)  # capitals: docs 0 and 2; scored: 0 and 2, twice


def test_predict_only_samples_are_unscored_until_judged(outputs: LmEvalOutputs, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    path = samples(outputs.predict_only, "capitals")
    assert {tuple(s["metrics"]) for s in lines(path)} == {("bypass",)}
    out = invoke_json("import", "lm-eval-samples", path, "--db", db, "--format", "json")
    assert (out["cases"], out["responses"], out["tasks"][0]["metrics"]) == (4, 4, {})
    block = summarise(Store(db), out["run_id"])["targets"][TARGET]
    assert (block["passed"], block["failed"], block["unscored"]) == (0, 0, 4)
    assert {r["checks"] for r in rows(db, "SELECT checks FROM responses WHERE run_id = ?", out["run_id"])} == {"[]"}
    with FakeOpenAIServer(judge_score=lambda criterion, call: 2 if "Milan" in call.text else 4) as judge:
        judged = invoke_json(
            "judge", out["run_id"], "-j", f"j=openai:judge@{judge.url}", "--db", db, "--format", "json"
        )
    block = judged["summary"][TARGET]
    assert (block["passed"], block["failed"], block["unscored"]) == (3, 1, 0)


def test_model_name_option_and_target_name(outputs: LmEvalOutputs, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    path = samples(outputs.logged, "capitals")
    out = invoke_json(
        "import", "lm-eval-samples", path, "--model-name", "my org/tuned:v2", "--db", db, "--format", "json"
    )
    assert out["targets"] == {"my-org-tuned-v2": "my org/tuned:v2"}
    # without a results file beside it, the model must be named
    alone = tmp_path / "alone" / path.name
    alone.parent.mkdir()
    alone.write_bytes(path.read_bytes())
    again = invoke_json("import", "lm-eval-samples", alone, "--db", db, "--model-name", "m", "--format", "json")
    assert again["targets"] == {"m": "m"}


def bad_copy(src: Path, folder: Path, edit: Any, name: str | None = None, model: str | None = None) -> Path:
    """A copy of a real samples file (with its results file, naming `model` if given) whose second line is
    changed by `edit`."""
    folder.mkdir(exist_ok=True)
    for results in src.parent.glob("results_*.json"):
        doc = json.loads(results.read_text(encoding="utf-8"))
        doc["model_name"] = model or doc["model_name"]
        (folder / results.name).write_text(json.dumps(doc), encoding="utf-8")
    items = lines(src)
    items[1] = edit(items[1])
    path = folder / (name or src.name)
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda s: s | {"resps": [[[-1.5, False]], [[-0.2, True]]]}, "resps", "only generate_until tasks"),
        (lambda s: s | {"doc_id": "two"}, "doc_id", "valid integer"),
        (lambda s: s | {"doc_id": 0}, "doc_id", "a second sample of document 0"),
        (lambda s: {k: v for k, v in s.items() if k != "arguments"}, "arguments", "required"),
        (lambda s: s | {"arguments": {"gen_args_0": {"arg_0": 7}}}, "arguments", "prompt text"),
    ],
)
def test_a_bad_line_names_file_line_and_field_and_writes_nothing(
    outputs: LmEvalOutputs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    edit: Any,
    field: str,
    message: str,
) -> None:
    db = tmp_path / "r.db"
    good = samples(outputs.logged, "capitals_scored")
    bad = bad_copy(samples(outputs.logged, "capitals"), tmp_path / "bad", edit)
    code, err = harness_exit(capsys, "import", "lm-eval-samples", good, bad, "--db", db)
    assert code == 2
    assert f"{bad}:2: field '{field}'" in err and message in err, err
    assert not db.exists() or rows(db, "SELECT COUNT(*) AS n FROM runs")[0]["n"] == 0


def test_files_it_cannot_read_as_samples(
    outputs: LmEvalOutputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.db"
    src = samples(outputs.logged, "capitals")
    renamed = bad_copy(src, tmp_path / "renamed", lambda s: s, name="capitals.jsonl")
    code, err = harness_exit(capsys, "import", "lm-eval-samples", renamed, "--db", db)
    assert code == 2 and f"{renamed}: expected a samples file as lm-eval names it" in err
    alone = tmp_path / "alone" / src.name
    alone.parent.mkdir()
    alone.write_bytes(src.read_bytes())
    code, err = harness_exit(capsys, "import", "lm-eval-samples", alone, "--db", db)
    assert code == 2 and f"{alone}: field '--model-name': cannot tell which model" in err
    # another task's data under the same task name and doc_id: not the same cases
    other = bad_copy(src, tmp_path / "other", lambda s: s | {"doc_hash": "0" * 64}, model="another/model")
    code, err = harness_exit(capsys, "import", "lm-eval-samples", src, other, "--db", db)
    assert code == 2 and f"{other}:2: field 'doc_hash'" in err
    assert not db.exists() or rows(db, "SELECT COUNT(*) AS n FROM runs")[0]["n"] == 0
