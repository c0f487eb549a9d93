"""`harness bench` on the tiny vLLM server: lm-eval runs a local generate_until task over a JSONL written here, from a
working directory that holds neither the task nor its data; the metrics land in the store with their stderr, agree
with lm-eval's own results and samples files, are served from lm-eval's cache on a rerun, and reach the report.

The random-weight model never writes a chosen answer, so the first run scores 0; the second task asks the same
questions with the first run's own generations as the answers of documents 0 and 2, so it must score exactly 0.5
(stderr 0.2887 over 4 documents), and it asks nothing of the server: every request is in lm-eval's cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.store import Store
from reports.bench import bench_rows, bench_section
from reports.render import md_table

QUESTIONS = ["Name a colour.", "Say hello.", "Name a fruit.", "Name a planet.", "Count to three.", "Name a city."]
NEVER = "zzz-never-written"


def task_yaml(name: str, data: str) -> str:
    return f"""task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: data/{data}
test_split: test
output_type: generate_until
doc_to_text: question
doc_to_target: answer
generation_kwargs:
  max_gen_toks: 16
  temperature: 0
  until: ["\\n"]
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def write_jsonl(path: Path, answers: list[str]) -> None:
    rows = [{"question": q, "answer": a} for q, a in zip(QUESTIONS, answers, strict=True)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def harness(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def bench(*args: str | Path, cwd: Path) -> dict[str, Any]:
    proc = harness("bench", *args, "--format", "json", cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


@pytest.fixture(scope="module")
def bench_runs(vllm_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("bench")
    tasks = work / "tasks"
    (tasks / "data").mkdir(parents=True)
    (tasks / "tiny_echo.yaml").write_text(task_yaml("tiny_echo", "questions.jsonl"), encoding="utf-8")
    write_jsonl(tasks / "data" / "questions.jsonl", [NEVER] * len(QUESTIONS))
    elsewhere = work / "elsewhere"  # the working directory: no task, no data
    elsewhere.mkdir()
    db = work / "data" / "results.db"
    common: list[str | Path] = ["--include-path", tasks, "--limit", "4", "--db", db]
    base = f"base=openai:tiny@{vllm_url}"

    first = bench("-t", base, "--tasks", "tiny_echo", *common, "--output-path", work / "out", "--log-samples",
                  "--name", "bench-first", cwd=elsewhere)  # fmt: skip
    samples_file = next(Path(f) for f in first["targets"]["base"]["files"] if "samples_tiny_echo" in f)
    samples = [json.loads(line) for line in samples_file.read_text(encoding="utf-8").splitlines()]
    generated = {s["doc_id"]: s["filtered_resps"][0] for s in samples}

    # the same questions; documents 0 and 2 answered with what the model wrote for them
    gold = [generated[0], NEVER, generated[2], NEVER, NEVER, NEVER]
    (tasks / "tiny_echo_gold.yaml").write_text(task_yaml("tiny_echo_gold", "gold.jsonl"), encoding="utf-8")
    write_jsonl(tasks / "data" / "gold.jsonl", gold)
    second = bench("-t", base, "--tasks", "tiny_echo_gold", *common, "--output-path", work / "out2",
                   "--name", "bench-gold", cwd=elsewhere)  # fmt: skip

    adapter = bench("-t", f"ft=openai:ft@{vllm_url}", "--tasks", "tiny_echo", "--model-type", "completions", *common,
                    "--name", "bench-completions", cwd=elsewhere)  # fmt: skip
    return {"work": work, "db": db, "elsewhere": elsewhere, "first": first, "second": second, "adapter": adapter,
            "samples": samples}  # fmt: skip


def test_bench_first_run_matches_lm_evals_own_samples(bench_runs: dict[str, Any]) -> None:
    first = bench_runs["first"]
    [row] = first["metrics"]
    assert [row[k] for k in ("target", "task", "metric", "filter")] == ["base", "tiny_echo", "exact_match", "none"]
    per_doc = [s["exact_match"] for s in bench_runs["samples"]]
    assert len(per_doc) == 4 and row["n_samples"] == 4
    assert row["value"] == pytest.approx(sum(per_doc) / 4) == 0.0
    assert row["stderr"] == pytest.approx(0.0)  # computed (4 documents), not lm-eval's "N/A"
    assert first["targets"]["base"]["requests"] == 4 and first["targets"]["base"]["requests_sent"] == 4
    prompts = {s["doc_id"]: json.loads(s["arguments"]["gen_args_0"]["arg_0"][0]) for s in bench_runs["samples"]}
    assert prompts[1] == [{"role": "user", "content": QUESTIONS[1]}]  # sent as chat messages


def test_bench_gold_run_scores_half_with_stderr_and_is_served_from_lm_evals_cache(bench_runs: dict[str, Any]) -> None:
    second = bench_runs["second"]
    [row] = second["metrics"]
    assert row["task"] == "tiny_echo_gold" and row["n_samples"] == 4
    assert row["value"] == pytest.approx(0.5)
    assert row["stderr"] == pytest.approx((1 / 3) ** 0.5 / 2)  # sample sd of [1, 0, 1, 0] over sqrt(4)
    assert second["targets"]["base"]["requests"] == 4
    assert second["targets"]["base"]["requests_sent"] == 0  # the same requests: all from the cache
    [results_file] = second["targets"]["base"]["files"]
    own = json.loads(Path(results_file).read_text(encoding="utf-8"))["results"]["tiny_echo_gold"]
    assert own["exact_match,none"] == pytest.approx(row["value"])
    assert own["exact_match_stderr,none"] == pytest.approx(row["stderr"])
    caches = list((bench_runs["db"].parent / "lm-eval-cache").glob("base-chat-*_rank0.db"))
    assert len(caches) == 1


def test_bench_completions_endpoint_on_the_adapter(bench_runs: dict[str, Any]) -> None:
    adapter = bench_runs["adapter"]
    [row] = adapter["metrics"]
    assert row["target"] == "ft" and row["value"] == pytest.approx(0.0) and row["stderr"] == pytest.approx(0.0)
    assert adapter["targets"]["ft"]["requests_sent"] == 4
    run = Store(bench_runs["db"]).run("bench-completions")
    assert run["config"]["bench"]["model_type"] == "completions"
    assert run["config"]["bench"]["endpoints"]["ft"]["base_url"].endswith("/v1/completions")


def test_bench_runs_are_stored_and_reported(bench_runs: dict[str, Any]) -> None:
    store = Store(bench_runs["db"])
    run = store.run("bench-gold")
    assert run["status"] == "complete"
    assert run["config"]["bench"]["tasks"] == ["tiny_echo_gold"]
    assert [t["name"] for t in run["config"]["targets"]] == ["base"]
    rows = bench_rows(store, "bench-gold")
    assert [(r["target"], r["task"], r["metric"], r["value"]) for r in rows] == [
        ("base", "tiny_echo_gold", "exact_match", 0.5)
    ]
    section = bench_section(rows)
    assert section is not None
    assert "| base | tiny_echo_gold | exact_match ↑ | none | 0.5000 | 0.2887 | 4 | 1.0 |" in md_table(section)

    proc = harness("report", "bench-gold", "--db", bench_runs["db"], "--format", "json", cwd=bench_runs["elsewhere"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["run"]["status"] == "complete"
    assert [(r["task"], r["value"], r["stderr"]) for r in doc["bench"]] == [
        ("tiny_echo_gold", 0.5, pytest.approx(0.2887, abs=1e-4))
    ]
    md = harness("report", "bench-gold", "--db", bench_runs["db"], "--format", "md", cwd=bench_runs["elsewhere"])
    assert "| base | tiny_echo_gold | exact_match ↑ | none | 0.5000 | 0.2887 | 4 | 1.0 |" in md.stdout
