"""The pytest plugin (entry point `pytest11`), run in a separate pytest process through `pytester`: suite files
become one test per case and target; failures show the checks, the judge's scores and rationales; `-k` selects
by case id and by tag; pytest-xdist gives the same outcomes; without --harness-target nothing is collected or
called; a target that is down fails as an endpoint error, not as a quality failure."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_openai_server import Action, Call, FakeOpenAIServer, not_json, verdict

from harness.store import Store

pytest_plugins = ["pytester"]

SUITE = """\
suite: demo
version: 1.0.0
defaults:
  criteria: [preciseness]
  threshold: 4
cases:
  - id: echo-ok
    prompt: Say hello
    checks: [{contains: "says: Say hello"}]
    tags: [smoke]
  - id: wrong-word
    prompt: Name the capital of France
    checks: [{contains: Paris}]
    tags: [geo]
  - id: low-score
    prompt: "LOWSCORE: describe Lyon"
    tags: [geo]
  - id: unscorable
    prompt: "UNSCORABLE: describe Nice"
  - id: plain
    prompt: Count to three
"""
LOW_RATIONALE = "The reply repeats the question and names nothing about Lyon."


def judge_policy(call: Call) -> Action | None:
    """The judge scores 4 (the threshold) except: 2 with a rationale for LOWSCORE, prose (no verdict) for
    UNSCORABLE; targets get the default reply `<model> says: <prompt>`."""
    if not call.is_judge:
        return None
    if "LOWSCORE" in call.text:
        return verdict(2, LOW_RATIONALE)
    if "UNSCORABLE" in call.text:
        return not_json()
    return None


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(policy=judge_policy) as s:
        yield s


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project folder with one suite, a YAML file that is not a suite, and an ordinary test module."""
    (pytester.path / "suites").mkdir()
    (pytester.path / "suites" / "demo.yaml").write_text(SUITE, encoding="utf-8")
    (pytester.path / "suites" / "ci.yaml").write_text("jobs:\n  build: {suite_like: 1}\n", encoding="utf-8")
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    return pytester


def targets(server: FakeOpenAIServer, judge: bool = True) -> list[str]:
    args = [
        "--harness-target",
        f"alpha=openai:model-a@{server.url}",
        "--harness-target",
        f"beta=openai:model-b@{server.url}",
    ]
    return [*args, "--harness-judge", f"judge=openai:judge-model@{server.url}"] if judge else args


def target_prompts(server: FakeOpenAIServer) -> set[str]:
    return {c.prompt for c in server.calls(judge=False)}


def test_a_suite_runs_as_one_test_per_case_and_target_and_failures_explain_themselves(
    project: pytest.Pytester, server: FakeOpenAIServer
) -> None:
    result = project.runpytest_subprocess("suites", "-v", *targets(server), timeout=300)
    result.assert_outcomes(passed=4, failed=6)
    out = result.stdout.str()
    for name in ["echo-ok[alpha]", "echo-ok[beta]", "plain[alpha]", "plain[beta]"]:
        assert f"suites/demo.yaml::{name} PASSED" in out
    for name in ["wrong-word", "low-score", "unscorable"]:
        assert f"suites/demo.yaml::{name}[alpha] FAILED" in out and f"suites/demo.yaml::{name}[beta] FAILED" in out
    assert "ci.yaml" not in out  # YAML without a top-level `suite:` key is not collected
    # the failing check, with what the response was
    assert "quality failure: failed checks: contains: Paris" in out
    assert "[FAIL] contains: Paris -- " in out
    assert "model-a says: Name the capital of France" in out
    # the judge's score below the threshold, with its rationale
    assert "quality failure: below threshold 4: preciseness=2" in out
    assert f"[FAIL] preciseness = 2 (judge judge): {LOW_RATIONALE}" in out
    assert "scores (threshold 4):" in out
    # no usable verdict: unscored, with the reason
    assert "unscored (the checks passed, the judge gave no usable score): attempt 1: no JSON object" in out
    assert "[UNSCORED] preciseness: attempt 1: no JSON object in the reply" in out
    assert "endpoint error" not in out
    # each case was sent once per target: the suite ran once, not once per test
    assert len(server.calls(judge=False)) == 10


def test_k_selects_by_case_id_and_only_those_cases_are_sent(project: pytest.Pytester, server: FakeOpenAIServer) -> None:
    result = project.runpytest_subprocess("suites", "-k", "wrong-word", *targets(server), timeout=300)
    result.assert_outcomes(failed=2, deselected=8)
    assert target_prompts(server) == {"Name the capital of France"}


def test_k_selects_by_tag_and_without_a_judge_only_the_checks_decide(
    project: pytest.Pytester, server: FakeOpenAIServer
) -> None:
    result = project.runpytest_subprocess("suites", "-k", "geo", "-rA", *targets(server, judge=False), timeout=300)
    # geo: wrong-word fails its check; low-score has no check and no judge: nothing evaluates it, so it fails as
    # unscored (never a silent pass)
    result.assert_outcomes(failed=4, deselected=6)
    result.stdout.fnmatch_lines(["*unscored (no check, no judge): nothing evaluated this response*"])
    result.stdout.fnmatch_lines(["FAILED suites/demo.yaml::low-score[[]alpha[]] - unscored (no check, no judge)*"])
    assert target_prompts(server) == {"Name the capital of France", "LOWSCORE: describe Lyon"}
    assert server.calls(judge=True) == []
    result = project.runpytest_subprocess("suites", "-k", "smoke", *targets(server, judge=False), timeout=300)
    result.assert_outcomes(passed=2, deselected=8)  # smoke has a check: it alone decides


def test_pytest_xdist_gives_the_same_outcomes_with_a_shared_store(
    project: pytest.Pytester, server: FakeOpenAIServer
) -> None:
    db = project.path / "shared.db"
    result = project.runpytest_subprocess(
        "suites", "-p", "xdist", "-n", "2", "--harness-db", str(db), *targets(server), timeout=300
    )
    result.assert_outcomes(passed=4, failed=6)
    out = result.stdout.str()
    assert "2 workers [10 items]" in out
    assert f"[FAIL] preciseness = 2 (judge judge): {LOW_RATIONALE}" in out
    assert f"harness: results stored in {db}" in out
    store = Store(db)
    try:
        runs = store.runs()
        assert {r["name"] for r in runs} == {"pytest gw0", "pytest gw1"}  # both workers wrote to the one store
        assert all(r["status"] == "complete" for r in runs)
        answered = {(r["case_id"], r["target"]) for run in runs for r in store.responses(run["run_id"])}
    finally:
        store.close()
    ids = ["echo-ok", "wrong-word", "low-score", "unscorable", "plain"]
    assert answered == {(c, t) for c in ids for t in ("alpha", "beta")}


def test_without_harness_target_no_suite_is_collected_and_nothing_is_called(
    project: pytest.Pytester, server: FakeOpenAIServer
) -> None:
    result = project.runpytest_subprocess(timeout=300)
    result.assert_outcomes(passed=1)
    assert "demo.yaml" not in result.stdout.str()
    result = project.runpytest_subprocess("suites", "--collect-only", "-q", timeout=300)
    assert "no tests collected" in result.stdout.str()
    assert server.calls() == []


def test_a_target_that_is_down_fails_as_an_endpoint_error(project: pytest.Pytester, server: FakeOpenAIServer) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (project.path / "harness.yaml").write_text(
        "targets:\n  down:\n    provider: openai\n    model: m\n"
        f"    base_url: http://127.0.0.1:{port}/v1\n    max_attempts: 1\n",
        encoding="utf-8",
    )
    result = project.runpytest_subprocess(
        "suites", "--harness-target", "down", "--harness-judge", f"judge=openai:j@{server.url}", timeout=300
    )
    result.assert_outcomes(failed=5)
    out = result.stdout.str()
    assert out.count("endpoint error (no response, so nothing was checked or judged; not a quality failure)") >= 5
    assert "endpoint: status " in out
    assert "quality failure:" not in out and "[FAIL]" not in out
    assert server.calls() == []  # nothing to judge


def test_a_bad_suite_file_is_a_collection_error_naming_file_line_and_field(
    pytester: pytest.Pytester, server: FakeOpenAIServer
) -> None:
    (pytester.path / "broken.yaml").write_text("suite: broken\nversion: v1\ncases:\n  - id: a\n    prompt: hi\n")
    result = pytester.runpytest_subprocess("broken.yaml", *targets(server), timeout=300)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*harness: *broken.yaml:2: field 'version': String should match pattern*"])


def test_a_bad_target_spec_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--harness-target", "nonsense", timeout=300)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*harness: field '--harness-target': 'nonsense' is neither a defined target*"])


def test_the_plugin_imports_nothing_of_the_harness_at_load(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_modules="""
import sys

def test_nothing_heavy_loaded():
    assert "harness.pytest_plugin" in sys.modules
    loaded = [m for m in ("harness.suites", "harness.runner", "harness.store", "reports.summary", "pydantic",
                          "openai") if m in sys.modules]
    assert loaded == []
"""
    )
    pytester.runpytest_subprocess(timeout=300).assert_outcomes(passed=1)


def test_the_entry_point_is_registered() -> None:
    from importlib.metadata import entry_points

    (plugin,) = [ep for ep in entry_points(group="pytest11") if ep.name == "harness"]
    assert plugin.value == "harness.pytest_plugin"
    assert Path(plugin.load().__file__ or "").name == "pytest_plugin.py"
