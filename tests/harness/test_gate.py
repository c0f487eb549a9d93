"""`harness gate` exit codes on real runs (loopback OpenAI-compatible server as target and judge): 0 when every
condition holds, 1 when quality drops (a floor missed, or a significant regression against a baseline run or
file), 3 when the run cannot be trusted (the target down), 2 on a bad flag; and the baseline file round trip."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fake_openai_server import Action, Call, FakeOpenAIServer, reply, server_error, verdict

from harness.cli import cli

CASES = [f"c{n}" for n in range(12)]
WORSE = set(CASES[:8])  # the new model's answers to these get 2 instead of 5


def policy(call: Call) -> Action | None:
    if call.is_judge:
        worse = "answer from new" in call.text and any(f"[{c}]" in call.text for c in WORSE)
        return verdict(2 if worse else 5, "because")
    if call.model == "down":
        return server_error(503)
    return reply(f"answer from {call.model}")


def invoke(*args: Any, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("gate")
    suite = work / "s.yaml"
    lines = ["suite: s", "version: 1.0.0", "defaults:", "  criteria: [preciseness]", "  tags: [all]", "cases:"]
    lines += [f"  - id: {c}\n    prompt: '[{c}] question'" for c in CASES]
    suite.write_text("\n".join(lines) + "\n")
    db = work / "r.db"
    out: dict[str, Any] = {"db": db, "work": work}
    with FakeOpenAIServer(policy=policy) as server:
        for name, model in (("old", "old"), ("new", "new"), ("down", "down")):
            res = invoke(
                "run", suite, "-t", f"m=openai:{model}@{server.url}", "--judge", f"j=openai:judge@{server.url}",
                "--db", db, "--name", name, "--max-attempts", "1", "--no-canaries", "--format", "json",
            )  # fmt: skip
            assert res.exit_code == 0, res.output
            out[name] = json.loads(res.stdout)["run_id"]
    return out


def gate(runs: dict[str, Any], run: str, *args: Any, env: dict[str, str] | None = None) -> Result:
    return invoke("gate", runs[run], "--db", runs["db"], *args, env=env)


def test_passing_gate_exits_0(runs: dict[str, Any]) -> None:
    res = gate(runs, "old", "--min-pass-rate", "0.9", "--min-mean", "preciseness=4.5", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["exit_code"] == 0 and doc["failed"] == []
    names = {c["name"] for c in doc["conditions"]}
    assert {"run_complete", "min_availability", "max_errors", "max_unscored", "min_pass_rate", "min_mean"} <= names


def test_quality_floor_missed_exits_1_and_says_by_how_much(runs: dict[str, Any]) -> None:
    res = gate(runs, "new", "--min-pass-rate", "0.5", "--min-pass-rate-tag", "all=0.5")
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.stdout and "pass rate 0.333 (4/12; min 0.5, 16.7 points short)" in res.stdout
    # a floor on a suite or tag the run does not have is a failure, not silently met
    res = gate(runs, "old", "--min-pass-rate-suite", "other=0.5", "--format", "json")
    assert res.exit_code == 1
    (failed,) = json.loads(res.stdout)["failed"]
    assert failed["scope"] == "suite other" and failed["message"] == "no response of m in this suite"


def test_regression_against_a_baseline_run_exits_1(runs: dict[str, Any]) -> None:
    res = gate(runs, "new", "--baseline", "old", "--max-regression", "preciseness=0.5", "--format", "json")
    assert res.exit_code == 1, res.output
    (failed,) = json.loads(res.stdout)["failed"]
    assert failed["name"] == "max_regression" and failed["kind"] == "quality"
    assert failed["actual"] == pytest.approx(-3 * 8 / 12)
    # within tolerance: no failure even though the drop is significant
    assert gate(runs, "new", "--baseline", "old", "--max-regression", "2.5").exit_code == 0


def test_baseline_file_round_trip_gives_the_same_verdict(runs: dict[str, Any]) -> None:
    path = runs["work"] / "baselines" / "nightly.json"
    res = invoke("baseline", "export", runs["old"], "-o", path, "--db", runs["db"], "--format", "json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["results"] == info["cases"] == 12
    snapshot = json.loads(path.read_text())
    assert snapshot["schema"] == "judge-harness/baseline@1"
    assert "answer from old" not in path.read_text()  # compact: no response text
    assert {s["suite"]: s["version"] for s in snapshot["config"]["suites"]} == {"s": "1.0.0"}
    by_run = json.loads(gate(runs, "new", "--baseline", "old", "--max-regression", "0.5", "--format", "json").stdout)
    by_file = json.loads(gate(runs, "new", "--baseline", path, "--max-regression", "0.5", "--format", "json").stdout)
    assert by_file["exit_code"] == by_run["exit_code"] == 1
    strip = [{k: v for k, v in c.items() if k != "message"} for c in by_run["conditions"]]
    assert [{k: v for k, v in c.items() if k != "message"} for c in by_file["conditions"]] == strip
    # a baseline gate of the baseline's own run passes
    assert gate(runs, "old", "--baseline", path, "--max-regression", "0.5").exit_code == 0


def test_target_down_exits_3_even_with_quality_flags(runs: dict[str, Any]) -> None:
    res = gate(runs, "down", "--min-pass-rate", "0.5", "--format", "json")
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    failed = {c["name"] for c in doc["failed"]}
    assert {"min_availability", "max_errors", "evaluated"} <= failed
    assert doc["outcome"].startswith("not trustworthy")


@pytest.mark.parametrize(
    "args",
    [
        ["--min-pass-rate", "1.5"],
        ["--min-mean", "preciseness"],
        ["--min-mean", "preciseness=high"],
        ["--max-regression", "0.5"],  # needs --baseline
        ["--target", "nobody"],
        ["--baseline", "no-such-run", "--max-regression", "0.5"],
        ["--min-pas-rate", "0.5"],  # a misspelt flag
    ],
)
def test_bad_flags_exit_2(runs: dict[str, Any], args: list[str]) -> None:
    from harness.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["gate", runs["new"], "--db", str(runs["db"]), *args])
    assert exc.value.code == 2


def test_gate_section_of_harness_yaml_and_step_summary(runs: dict[str, Any], tmp_path: Path) -> None:
    config = tmp_path / "harness.yaml"
    config.write_text("gate:\n  baseline: old\n  max_regression: {preciseness: 0.5}\n  min_pass_rate: 0.2\n")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    res = gate(runs, "new", "--config", config, env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert res.exit_code == 1, res.output
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert "### Quality gate ❌ failed" in text and "max_regression" in text
    assert "## Run `" in text  # the run's Markdown report follows
    # a flag overrides the file
    assert gate(runs, "new", "--config", config, "--max-regression", "preciseness=3").exit_code == 0


def test_a_regression_check_that_cannot_be_made_is_never_a_silent_pass(runs: dict[str, Any]) -> None:
    res = gate(runs, "new", "--baseline", "old", "--max-regression", "precisenes=0.5", "--format", "json")
    assert res.exit_code == 3, res.output
    (failed,) = json.loads(res.stdout)["failed"]
    assert failed["name"] == "regression_checked" and "precisenes was not scored" in failed["message"]
    # a baseline whose target only errored: no pair scored on both sides, so nothing was compared
    res = gate(runs, "new", "--baseline", "down", "--max-regression", "0.5", "--format", "json")
    assert res.exit_code == 3, res.output
    (failed,) = json.loads(res.stdout)["failed"]
    assert failed["name"] == "regression_checked" and failed["kind"] == "trust"


def test_a_handful_of_drops_is_not_significant_by_bootstrap_alone() -> None:
    from reports.gate import _criterion_condition

    two = {"mean_delta": -1.0, "ci95": [-1.0, -1.0], "p_wilcoxon": 0.5, "n": 2}
    assert _criterion_condition("m", "preciseness", two, 0.5, 0.05, "old").ok
    many = {"mean_delta": -1.0, "ci95": [-1.4, -0.6], "p_wilcoxon": 0.07, "n": 12}
    assert not _criterion_condition("m", "preciseness", many, 0.5, 0.05, "old").ok


def test_a_broken_baseline_file_is_a_usage_error(runs: dict[str, Any], tmp_path: Path) -> None:
    from harness.cli import main

    path = tmp_path / "b.json"
    assert invoke("baseline", "export", runs["old"], "-o", path, "--db", runs["db"]).exit_code == 0
    doc = json.loads(path.read_text())
    del doc["results"][3]["scores"]["preciseness"][0]["judge"]
    path.write_text(json.dumps(doc))
    with pytest.raises(SystemExit) as exc:
        main(["gate", runs["new"], "--db", str(runs["db"]), "--baseline", str(path), "--max-regression", "0.5"])
    assert exc.value.code == 2
