"""The example GitHub Actions workflow (.github/workflows/nightly-eval.yml): scheduled, installs the package, calls
only `harness` commands and flags that the CLI has, keeps secrets in `${{ secrets.* }}` references passed as
environment to the one step that needs them, and uploads the report, JUnit file and store whatever the outcome."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from harness.cli import cli

ROOT = Path(__file__).parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "nightly-eval.yml"
# the commands the workflow relies on; `gate` comes from harness/cli_gate.py and must be registered in harness.cli
USED_COMMANDS = {"run", "report", "gate"}
REGISTRATION = {"gate": "cli.add_command(gate_cmd)  # from harness.cli_gate import gate_cmd"}
SECRET_REF = re.compile(r"^\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SHELL_OPERATORS = {";", "&&", "||", "|", "(", "{", "then", "do", "!"}


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    if True in data:  # YAML 1.1 reads the key `on` as the boolean true
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in workflow["jobs"].values() for s in job["steps"]]


def job_env(workflow: dict[str, Any]) -> dict[str, str]:
    (job,) = workflow["jobs"].values()
    return {str(k): str(v) for k, v in (job.get("env") or {}).items()}


def expand(text: str, env: dict[str, str]) -> str:
    """`${{ env.X }}`, `$X` and `${X}` replaced by the job's env values; other expressions by a placeholder."""
    text = EXPRESSION.sub(lambda m: env.get(m.group(1).removeprefix("env."), "EXPR"), text)
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), m.group(0)), text)


def harness_invocations(script: str) -> list[list[str]]:
    """Each `harness ...` command line of a run: script, as argument lists (continuation lines joined)."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        for i, token in enumerate(tokens):
            if token == "harness" and (i == 0 or tokens[i - 1] in SHELL_OPERATORS):
                args = []
                for t in tokens[i + 1 :]:
                    if t in SHELL_OPERATORS or t in (">", ">>", "<"):
                        break
                    args.append(t)
                out.append(args)
    return out


def parse(args: list[str]) -> tuple[str, dict[str, Any]]:
    """The command an argument list names (descending into groups) and its parsed parameters, parsed by click
    itself: an unknown command or flag, a bad value or a missing argument fails here."""
    command: click.Command = cli
    path: list[str] = []
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        name, args = args[0], args[1:]
        path.append(name)
        sub = command.commands.get(name)
        hint = f"; register it in harness/cli.py: {REGISTRATION[name]}" if name in REGISTRATION else ""
        assert sub is not None, f"the workflow runs `harness {' '.join(path)}`, which the CLI does not have{hint}"
        command = sub
    try:
        ctx = command.make_context(f"harness {' '.join(path)}", list(args))
    except click.UsageError as exc:
        raise AssertionError(f"`harness {' '.join(path)}` in the workflow: {exc.format_message()}") from exc
    return " ".join(path), dict(ctx.params)


def invocations(workflow: dict[str, Any]) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """(step, command, parameters) of every `harness` command of the workflow, with the job's env expanded."""
    env = job_env(workflow)
    return [
        (step, *parse(args))
        for step in steps(workflow)
        for args in harness_invocations(expand(step.get("run", ""), env))
    ]


def test_scheduled_and_dispatchable(workflow: dict[str, Any]) -> None:
    on = workflow["on"]
    crons = [entry["cron"] for entry in on["schedule"]]
    assert crons, "the workflow must run on a schedule"
    for cron in crons:
        fields = cron.split()
        assert len(fields) == 5 and all(re.fullmatch(r"[0-9*/,-]+", f) for f in fields), cron
    assert "workflow_dispatch" in on


def test_installs_the_package_on_python_311(workflow: dict[str, Any]) -> None:
    all_steps = steps(workflow)
    uses = [s.get("uses", "") for s in all_steps]
    assert any(u.startswith("actions/checkout@") for u in uses)
    (python,) = [s for s in all_steps if s.get("uses", "").startswith("actions/setup-python@")]
    assert str(python["with"]["python-version"]) == "3.11"
    assert any(re.search(r"(^|\s)pip install \.(\s|$)", s.get("run", "")) for s in all_steps)


def test_every_harness_command_and_flag_exists_in_the_cli(workflow: dict[str, Any]) -> None:
    found = invocations(workflow)
    used = {command for _, command, _ in found}
    assert used >= USED_COMMANDS, f"the workflow should run {sorted(USED_COMMANDS)}, it runs {sorted(used)}"
    (run,) = [params for _, command, params in found if command == "run"]
    assert run["suites"] and all((ROOT / s).exists() for s in run["suites"]), run["suites"]
    assert run["judges"] and run["targets"]


def test_secrets_only_as_expressions_in_the_env_of_the_step_that_calls_the_models(workflow: dict[str, Any]) -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "secrets." in text
    assert not any("secrets." in str(v) for v in (workflow.get("env") or {}).values()), "no workflow-level secrets"
    assert not any("secrets." in v for v in job_env(workflow).values()), "no job-level secrets"
    secret_envs = []
    for step in steps(workflow):
        for key, value in (step.get("env") or {}).items():
            if "secrets." in str(value):
                assert SECRET_REF.match(str(value)), f"{key}: a secret must be exactly ${{{{ secrets.NAME }}}}"
                secret_envs.append((step, str(key)))
        for field in ("run", "with"):
            assert "secrets." not in str(step.get(field, "")), f"a secret inlined in a step's {field}: {step}"
    assert text.count("secrets.") == len(secret_envs), "every secret reference is a step's env value"
    assert [k for _, k in secret_envs] == ["OPENAI_API_KEY"]  # the name harness/targets/openai_chat.py reads
    for step, key in secret_envs:
        assert harness_invocations(step["run"])[0][0] == "run", "only the step that calls the models gets the key"
        assert not re.search(rf"\$\{{?{key}\b", step["run"]), f"${key} is read by the harness, never by the script"


def test_artifacts_uploaded_always_with_report_junit_and_store(workflow: dict[str, Any]) -> None:
    (upload,) = [s for s in steps(workflow) if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["if"] == "always()"
    env = job_env(workflow)
    uploaded = {expand(p.strip(), env) for p in upload["with"]["path"].splitlines() if p.strip()}
    assert all(not p.startswith(".") for p in uploaded), "upload-artifact@v4 leaves hidden files out by default"
    params = {command: (step, p) for step, command, p in invocations(workflow)}
    report, gate = params["report"][1], params["gate"][1]
    assert report["fmt"] == "html"
    assert {str(report["output"]), str(gate["junit"]), str(params["run"][1]["db"])} <= uploaded
    assert len({str(p["db"]) for _, p in params.values()}) == 1, "every step reads the same store"
    assert gate["baseline"] and gate["min_pass_rate"] is not None
    assert params["gate"][0].get("if") == "${{ !cancelled() }}", "the gate runs, and fails the job, after a failure"


def test_the_readme_documents_the_workflow() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".github/workflows/nightly-eval.yml" in readme, "README.md must document the example workflow"
