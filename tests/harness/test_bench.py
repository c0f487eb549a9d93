"""`harness bench`: lm-evaluation-harness run on a loopback OpenAI-compatible server, from a working directory other
than the task folder's, its metrics stored with their stderr; the include-path mirror; lm-eval's request cache in
the data folder; the offline environment; option and task errors as UserErrors (exit 2)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner
from fake_openai_server import FakeOpenAIServer

from harness.cli import cli
from harness.errors import UserError
from harness.lmeval.include import mirror_include_path
from harness.store import Store
from reports.bench import bench_rows, bench_section
from reports.render import md_table

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = [f"Question {i}: what is {i} plus {i}?" for i in range(6)]

ECHO_TASK = """task: echo_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: data/echo.jsonl
test_split: test
output_type: generate_until
doc_to_text: "{{question}}"
doc_to_target: "{{answer}}"
generation_kwargs:
  max_gen_toks: 16
  until: ["\\n"]
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 2.0
"""

CHOICE_TASK = """task: yes_no_local
dataset_path: json
dataset_kwargs:
  data_files: [data/yes_no.jsonl]
test_split: train
output_type: multiple_choice
doc_to_text: "{{question}} Answer:"
doc_to_choice: ["yes", "no"]
doc_to_target: "{{label}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def echo_docs(model: str) -> list[dict[str, str]]:
    """Six documents; the fake server answers "<model> says: <prompt>", right for the even ones (docs 0, 2, 4)."""
    return [
        {"question": q, "answer": f"{model} says: {q}" if i % 2 == 0 else "something else"}
        for i, q in enumerate(QUESTIONS)
    ]


def write_tasks(folder: Path, model: str = "fake") -> Path:
    """A task folder: the YAML files at the top, their data in data/ (relative paths in the YAML)."""
    (folder / "data").mkdir(parents=True)
    (folder / "echo.yaml").write_text(ECHO_TASK, encoding="utf-8")
    (folder / "yes_no.yaml").write_text(CHOICE_TASK, encoding="utf-8")
    lines = [json.dumps(d) for d in echo_docs(model)]
    (folder / "data" / "echo.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    labels = [0, 0, 1, 0]  # the fake model always prefers "yes": acc 3/4
    docs = [{"question": f"Is {i} a number?", "label": label} for i, label in enumerate(labels)]
    (folder / "data" / "yes_no.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return folder


class CompletionsServer(FakeOpenAIServer):
    """The fake chat server plus `/v1/completions` (text, or echoed prompt logprobs) and vLLM's tokenizer endpoints
    (`/tokenizer_info`, `/tokenize`, `/detokenize`) over a word tokenizer, so lm-eval's `local-completions` can
    score loglikelihoods with `--tokenizer remote`. The model's log-probability of a token is -0.1 for "yes" and
    -2.0 for anything else."""

    def __init__(self) -> None:
        super().__init__()
        self.vocab: dict[str, int] = {}
        self.completions: list[dict[str, Any]] = []

    def _routes(self, app: web.Application) -> None:
        super()._routes(app)
        app.router.add_post("/v1/completions", self._complete)
        app.router.add_get("/tokenizer_info", self._tokenizer_info)
        app.router.add_post("/tokenize", self._tokenize)
        app.router.add_post("/detokenize", self._detokenize)

    def _ids(self, text: str) -> list[int]:
        return [self.vocab.setdefault(tok, len(self.vocab)) for tok in re.findall(r"\s*\S+|\s+", text)]

    def _text(self, ids: list[int]) -> str:
        words = {i: t for t, i in self.vocab.items()}
        return "".join(words[i] for i in ids)

    async def _tokenizer_info(self, request: web.Request) -> web.Response:
        return web.json_response({"eos_token": "</s>", "bos_token": "<s>", "pad_token": None})

    async def _tokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"tokens": self._ids(body["prompt"])})

    async def _detokenize(self, request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"prompt": self._text(body["tokens"])})

    def _choice(self, index: int, prompt: Any, body: dict[str, Any]) -> dict[str, Any]:
        ids = prompt if isinstance(prompt, list) else self._ids(str(prompt))
        text = self._text(ids)
        if not body.get("echo"):
            return {"index": index, "text": f"{body['model']} says: {text}", "finish_reason": "stop", "logprobs": None}
        tokens = [self._text([i]) for i in ids] + [" ."]
        logprobs = [None] + [-0.1 if t.strip() == "yes" else -2.0 for t in tokens[1:]]
        top = [None] + [{t: lp} for t, lp in zip(tokens[1:], logprobs[1:], strict=True)]
        return {
            "index": index,
            "text": text + " .",
            "finish_reason": "length",
            "logprobs": {"tokens": tokens, "token_logprobs": logprobs, "top_logprobs": top},
        }

    async def _complete(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.completions.append(body)
        prompt = body["prompt"]
        batch = prompt if isinstance(prompt, list) and prompt and isinstance(prompt[0], (list, str)) else [prompt]
        choices = [self._choice(i, p, body) for i, p in enumerate(batch)]
        reply = {"id": "cmpl-fake", "object": "text_completion", "model": body["model"], "choices": choices}
        return web.json_response(reply)


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: str
    output: str  # stdout and stderr, or the one line `harness` prints for a UserError


def invoke(*args: str | Path, code: int = 0) -> Ran:
    """The command run in-process; a UserError counts as `harness` exits on it (code 2, one line on stderr)."""
    result = CliRunner().invoke(cli, [str(a) for a in args])
    if isinstance(result.exception, UserError):
        ran = Ran(2, result.stdout, f"error: {result.exception.render()}")
    else:
        ran = Ran(result.exit_code, result.stdout, result.output)
    assert ran.code == code, (ran.output, result.exception)
    return ran


def bench_json(*args: str | Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(invoke("bench", *args, "--format", "json").stdout)
    return out


def sample_stderr(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs from an empty working directory that holds neither the tasks nor their data."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for var in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(var, "1")  # bench sets them too; set here, they are restored after the test
    return cwd


@pytest.fixture
def tasks(tmp_path: Path) -> Path:
    return write_tasks(tmp_path / "tasks")


# the include-path mirror ---------------------------------------------------------------------------
def test_mirror_makes_existing_relative_data_paths_absolute_against_each_yaml(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub" / "data").mkdir(parents=True)
    (src / "sub" / "data" / "a.jsonl").write_text("{}\n", encoding="utf-8")
    (src / "sub" / "data" / "b.jsonl").write_text("{}\n", encoding="utf-8")
    (src / "sub" / "utils.py").write_text("def docs(d):\n    return d\n", encoding="utf-8")
    (src / "sub" / "_template_yaml").write_text(
        "dataset_path: json\ndataset_kwargs:\n  data_files: {test: data/a.jsonl, train: [data/*.jsonl]}\n",
        encoding="utf-8",
    )
    (src / "sub" / "t.yaml").write_text(
        "include: _template_yaml\ntask: t\nprocess_docs: !function utils.docs\n", encoding="utf-8"
    )
    (src / "hub.yaml").write_text(  # a path inside a Hub dataset repository: relative to the repository, kept
        "task: h\ndataset_path: org/name\ndataset_kwargs: {data_files: {test: test.jsonl}, data_dir: en}\n",
        encoding="utf-8",
    )
    (tmp_path / "common.yaml").write_text("output_type: generate_until\n", encoding="utf-8")
    (src / "outside.yaml").write_text("include: ../common.yaml\ntask: o\n", encoding="utf-8")
    dest = tmp_path / "dest"
    dest.mkdir()

    changes = mirror_include_path(src, dest)

    template = (dest / "sub" / "_template_yaml").read_text(encoding="utf-8")
    data = src.resolve() / "sub" / "data"
    assert f"test: {data / 'a.jsonl'}" in template
    assert f"- {data / '*.jsonl'}" in template
    assert (dest / "sub" / "t.yaml").read_text(encoding="utf-8") == (src / "sub" / "t.yaml").read_text(
        encoding="utf-8"
    )  # nothing to change: copied as written, the !function tag intact
    assert (dest / "hub.yaml").read_text(encoding="utf-8") == (src / "hub.yaml").read_text(encoding="utf-8")
    assert f"include: {tmp_path.resolve() / 'common.yaml'}" in (dest / "outside.yaml").read_text(encoding="utf-8")
    assert (dest / "sub" / "utils.py").resolve() == (src / "sub" / "utils.py").resolve()
    assert (dest / "sub" / "data" / "a.jsonl").resolve() == (data / "a.jsonl").resolve()
    assert sorted((c.file, c.key) for c in changes) == [
        ("outside.yaml", "include"),
        ("sub/_template_yaml", "dataset_kwargs.data_files"),
        ("sub/_template_yaml", "dataset_kwargs.data_files"),
    ]


def test_mirror_keeps_function_tags_when_it_rewrites(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "x.jsonl").write_text("{}\n", encoding="utf-8")
    (src / "t.yaml").write_text(
        "task: t\ndataset_path: json\ndataset_kwargs: {data_files: d/x.jsonl}\nprocess_docs: !function utils.docs\n",
        encoding="utf-8",
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    mirror_include_path(src, dest)
    text = (dest / "t.yaml").read_text(encoding="utf-8")
    assert "process_docs: !function 'utils.docs'" in text or "process_docs: !function utils.docs" in text
    assert f"data_files: {src.resolve() / 'd' / 'x.jsonl'}" in text


# runs against the loopback server --------------------------------------------------------------
def test_bench_chat_stores_metrics_with_stderr_from_another_cwd_and_reruns_from_cache(
    tasks: Path, tmp_path: Path
) -> None:
    db = tmp_path / "data" / "results.db"
    out = tmp_path / "lm-eval-out"
    with FakeOpenAIServer() as server:
        target = f"fake=openai:fake@{server.url}"
        common: list[str | Path] = ["-t", target, "--tasks", "echo_local", "--include-path", tasks]
        first = bench_json(*common, "--limit", "4", "--db", db, "--output-path", out, "--name", "b1")
        assert len(server.calls()) == 4
        assert {c.path for c in server.calls()} == {"/v1/chat/completions"}
        body = server.calls()[0].body
        assert body["messages"] == [{"role": "user", "content": QUESTIONS[0]}]  # a chat message, as templated
        assert body["max_tokens"] == 16 and body["stop"] == ["\n"] and body["temperature"] == 0
        second = bench_json(*common, "--limit", "4", "--db", db)
        assert len(server.calls()) == 4  # every request served from lm-eval's cache in the data folder

    expected = [1.0, 0.0, 1.0, 0.0]  # docs 0..3: the even ones are answered right
    for doc in (first, second):
        [row] = doc["metrics"]
        assert [row[k] for k in ("target", "task", "metric", "filter")] == ["fake", "echo_local", "exact_match", "none"]
        assert row["value"] == pytest.approx(0.5)
        assert row["stderr"] == pytest.approx(sample_stderr(expected))
        assert row["n_samples"] == 4 and row["task_version"] == "2.0" and row["higher_is_better"] is True
    assert first["targets"]["fake"]["requests"] == 4 and first["targets"]["fake"]["requests_sent"] == 4
    assert second["targets"]["fake"]["requests"] == 4 and second["targets"]["fake"]["requests_sent"] == 0
    assert list((tmp_path / "data" / "lm-eval-cache").glob("fake-chat-*_rank0.db"))

    # lm-eval's own results file says the same
    [results_file] = first["targets"]["fake"]["files"]
    own = json.loads(Path(results_file).read_text(encoding="utf-8"))
    assert own["results"]["echo_local"]["exact_match,none"] == pytest.approx(first["metrics"][0]["value"])
    assert own["results"]["echo_local"]["exact_match_stderr,none"] == pytest.approx(first["metrics"][0]["stderr"])
    assert own["n-samples"]["echo_local"] == {"original": 6, "effective": 4}

    store = Store(db)
    run = store.run("b1")
    assert run["status"] == "complete"
    bench = run["config"]["bench"]
    assert bench["tasks"] == ["echo_local"] and bench["limit"] == 4 and bench["model_type"] == "chat"
    assert bench["lm_eval_version"].startswith("0.4.")
    assert bench["endpoints"]["fake"]["base_url"] == f"{server.url}/chat/completions"
    assert bench["data_paths_rewritten"][0]["new"] == str(tasks.resolve() / "data" / "echo.jsonl")
    assert [t["name"] for t in run["config"]["targets"]] == ["fake"]
    rows = bench_rows(store, "b1")
    assert [(r["task"], r["value"], r["requests"], r["requests_sent"]) for r in rows] == [("echo_local", 0.5, 4, 4)]
    section = bench_section(rows)
    assert section is not None
    table = "\n".join(md_table(section))
    assert "| fake | echo_local | exact_match ↑ | none | 0.5000 | 0.2887 | 4 | 2.0 |" in table
    assert bench_section([]) is None
    assert bench_rows(store, "b1", targets={"other"}) == []


def test_bench_table_output_and_two_targets_in_one_run(tasks: Path, tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    with FakeOpenAIServer() as server:
        result = invoke(
            "bench",
            *("-t", f"a=openai:fake@{server.url}", "-t", f"b=openai:fake@{server.url}"),
            *("--tasks", "echo_local", "--include-path", tasks, "--limit", "2", "--db", db),
        )
        assert len(server.calls()) == 4  # two targets: two caches, each target asked
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run "), result.stdout
    for name in ("a", "b"):  # stderr of [1, 0]: sd 0.7071 / sqrt(2)
        assert any(re.match(rf"{name}\s+echo_local\s+exact_match\s+none\s+0\.5000\s+0\.5000\s+2$", x) for x in lines)
    run_id = lines[0].split()[1]
    assert {r["target"] for r in bench_rows(Store(db), run_id)} == {"a", "b"}


def test_bench_completions_generate_and_loglikelihood_with_the_remote_tokenizer(tasks: Path, tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    with CompletionsServer() as server:
        target = f"fake=openai:fake@{server.url}"
        gen = bench_json("-t", target, "--tasks", "echo_local", "--include-path", tasks, "--limit", "4", "--db", db,
                         "--model-type", "completions")  # fmt: skip
        assert sorted(b["prompt"] for b in server.completions) == sorted(QUESTIONS[:4])  # raw prompts, no template
        assert gen["metrics"][0]["value"] == pytest.approx(0.5)
        choice = bench_json("-t", target, "--tasks", "yes_no_local", "--include-path", tasks, "--db", db,
                            "--model-type", "completions", "--tokenizer", "remote")  # fmt: skip
    [acc] = [r for r in choice["metrics"] if r["metric"] == "acc"]
    assert acc["value"] == pytest.approx(0.75)  # "yes" is the likelier choice; 3 of 4 golds are "yes"
    assert acc["stderr"] == pytest.approx(sample_stderr([1, 1, 0, 1]))
    assert choice["targets"]["fake"]["requests"] == 8  # two choices per document
    echoed = [b for b in server.completions if b.get("echo")]
    assert len(echoed) == 8 and all(b["max_tokens"] == 1 and b["logprobs"] == 1 for b in echoed)


def test_bench_fails_the_run_when_the_endpoint_is_down(tasks: Path, tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    with FakeOpenAIServer() as server:
        url = server.url
    result = invoke(
        "bench", "-t", f"down=openai:fake@{url}", "--tasks", "echo_local", "--include-path", tasks,
        "--limit", "1", "--db", db, "--max-attempts", "1", code=1,
    )  # fmt: skip
    assert "lm-eval failed on target 'down'" in result.output
    [run] = Store(db).runs()
    assert run["status"] == "failed"
    assert "down" in Store(db).run(run["run_id"])["config"]["failure"]


# errors ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "x=vllm:tiny", "--tasks", "t"], "managed vLLM target"),
        (["-t", "x=gemini:gemini-2.0-flash", "--tasks", "t"], "OpenAI-compatible endpoints only"),
        (["-t", "x=openai:m@http://127.0.0.1:9/v1", "--tasks", "t", "--tokenizer", "remote"], "completions only"),
        (["-t", "x=openai:m@http://127.0.0.1:9/v1", "--tasks", "t", "--log-samples"], "--output-path"),
        (["-t", "x=openai:m@http://127.0.0.1:9/v1", "--tasks", "t", "--limit", "2.5"], "whole number"),
        (["-t", "x=openai:m@http://127.0.0.1:9/v1", "--tasks", "t", "--gen-kwargs", "max_gen_toks"], "KEY=VALUE"),
        (["-t", "x=openai:m@http://127.0.0.1:9/v1", "-t", "x=openai:n@http://127.0.0.1:9/v1", "--tasks", "t"], "name"),
        (["-t", "x=openai:m@http://127.0.0.1:9/v1", "--tasks", " , "], "at least one"),
    ],
)
def test_bench_option_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = invoke("bench", *args, "--db", tmp_path / "r.db", code=2)
    assert message in result.output


def test_bench_task_errors_name_the_task(tasks: Path, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/v1"
    db = tmp_path / "r.db"
    chat = invoke("bench", "-t", f"x=openai:m@{url}", "--tasks", "yes_no_local", "--include-path", tasks, "--db", db,
                  code=2)  # fmt: skip
    assert "yes_no_local (multiple_choice)" in chat.output and "--model-type completions" in chat.output
    plain = invoke("bench", "-t", f"x=openai:m@{url}", "--tasks", "yes_no_local", "--include-path", tasks,
                   "--model-type", "completions", "--db", db, code=2)  # fmt: skip
    assert "--tokenizer" in plain.output
    path = invoke("bench", "-t", f"x=openai:m@{url}", "--tasks", str(tasks / "echo.yaml"), "--db", db, code=2)
    assert "--include-path" in path.output
    (tasks / "data" / "echo.jsonl").unlink()
    missing = invoke("bench", "-t", f"x=openai:m@{url}", "--tasks", "echo_local", "--include-path", tasks,
                     "--db", db, code=2)  # fmt: skip
    assert "task 'echo_local' could not be loaded" in missing.output
    assert Store(db).runs() == []  # nothing ran: no run recorded


def test_bench_unknown_task_is_named_with_close_matches(tasks: Path, tmp_path: Path) -> None:
    result = invoke("bench", "-t", "x=openai:m@http://127.0.0.1:9/v1", "--tasks", "echo_locl", "--include-path",
                    tasks, "--db", tmp_path / "r.db", code=2)  # fmt: skip
    assert "unknown lm-eval task 'echo_locl'" in result.output
    assert "echo_local" in result.output.split("did you mean", 1)[1]


def test_bench_is_offline_and_harness_run_never_imports_lm_eval(tmp_path: Path) -> None:
    probe = (
        "import sys, harness.cli\n"
        "assert 'lm_eval' not in sys.modules and 'datasets' not in sys.modules\n"
        "from harness.lmeval.runner import import_lm_eval\n"
        "import_lm_eval()\n"
        "import datasets, huggingface_hub.constants as hub\n"
        "print(datasets.config.HF_DATASETS_OFFLINE, hub.HF_HUB_OFFLINE)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]

    hub = tmp_path / "hub"
    hub.mkdir()
    (hub / "h.yaml").write_text(
        "task: hub_only\ndataset_path: someorg/never-downloaded\ntest_split: test\noutput_type: generate_until\n"
        "doc_to_text: '{{q}}'\ndoc_to_target: '{{a}}'\nmetric_list: [{metric: exact_match}]\n",
        encoding="utf-8",
    )
    result = invoke("bench", "-t", "x=openai:m@http://127.0.0.1:9/v1", "--tasks", "hub_only", "--include-path", hub,
                    "--db", tmp_path / "r.db", code=2)  # fmt: skip
    assert "task 'hub_only' could not be loaded" in result.output and "Offline" in result.output


def test_the_report_shows_bench_metrics_beside_the_run_of_the_same_target(tasks: Path, tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    suite = tmp_path / "s.yaml"
    suite.write_text("suite: s\nversion: 1.0.0\ncases:\n  - {id: c1, prompt: hi, checks: [{max_words: 500}]}\n")
    with FakeOpenAIServer() as server:
        target = f"fake=openai:fake@{server.url}"
        bench_json(
            "-t", target, "--tasks", "echo_local", "--include-path", tasks, "--limit", "4", "--db", db, "--name", "b1"
        )
        invoke("run", suite, "-t", target, "--db", db, "--name", "eval")
    own = json.loads(invoke("report", "b1", "--db", db, "--format", "json").stdout)
    assert own["run"]["kind"] == "bench" and [r["metric"] for r in own["bench"]] == ["exact_match"]
    own_md = invoke("report", "b1", "--db", db, "--format", "md").stdout
    assert "### Benchmarks" in own_md and "### Summary" not in own_md  # a bench run has no responses to summarise
    beside = invoke("report", "eval", "--db", db, "--bench", "b1", "--format", "md").stdout
    assert beside.index("### Summary") < beside.index("### Benchmarks")
    assert "| fake | echo_local | exact_match ↑ | none | 0.5000 | 0.2887 | 4 | 2.0 |" in beside
    html = invoke("report", "eval", "--db", db, "--bench", "b1", "--format", "html").stdout
    assert '<table id="bench">' in html and "echo_local" in html
