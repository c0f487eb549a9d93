"""Secrets come from the environment only and are never written to the store, a report or the output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_openai_server import Action, Call, FakeOpenAIServer, raw_body, unauthorized

from harness.cli import cli
from harness.runner import endpoint as endpoint_module

SECRET = "sk-test-SECRET123"
KEY_ENV = "MY_TEST_KEY"


def write_files(tmp_path: Path, server: FakeOpenAIServer) -> tuple[Path, Path]:
    suite = tmp_path / "secret.yaml"
    suite.write_text(
        "suite: secrets\nversion: 1.0.0\ncases:\n"
        "  - id: one\n    prompt: Say hello.\n"
        "  - id: two\n    prompt: Say goodbye.\n",
        encoding="utf-8",
    )
    config = tmp_path / "harness.yaml"
    config.write_text(
        "targets:\n"
        "  secret:\n"
        "    provider: openai\n"
        "    model: model-s\n"
        f"    base_url: {server.url}\n"
        f"    api_key_env: {KEY_ENV}\n"
        "    max_attempts: 2\n"
        "  judge:\n"
        "    provider: openai\n"
        "    model: judge-model\n"
        f"    base_url: {server.url}\n"
        f"    api_key_env: {KEY_ENV}\n"
        "judge: judge\n"
        "db: results.db\n",
        encoding="utf-8",
    )
    return suite, config


def bearer(call: Call) -> str:
    return call.headers.get("Authorization", "")


def leaked_in(tmp_path: Path, texts: list[str]) -> list[str]:
    """Where the secret appears: the SQLite files (main, WAL) and the given outputs."""
    where = [name for name in ("results.db", "results.db-wal") if SECRET.encode() in (tmp_path / name).read_bytes()]
    assert (tmp_path / "results.db").exists()
    return where + [f"output #{i}" for i, text in enumerate(texts) if SECRET in text]


def run_and_report(tmp_path: Path, server: FakeOpenAIServer) -> tuple[str, list[str]]:
    suite, config = write_files(tmp_path, server)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["run", str(suite), "-t", "secret", "--config", str(config), "--no-canaries", "--format", "json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    outputs = [result.output, result.stderr]
    for fmt in ("html", "md", "json"):
        rep = runner.invoke(cli, ["report", run_id, "--format", fmt, "--config", str(config)], catch_exceptions=False)
        assert rep.exit_code == 0, rep.output
        outputs.append(rep.output)
    listed = runner.invoke(cli, ["runs", "--format", "json", "--config", str(config)], catch_exceptions=False)
    outputs.append(listed.output)
    table = runner.invoke(
        cli,
        ["run", str(suite), "-t", "secret", "--config", str(config), "--no-canaries", "--name", "again"],
        catch_exceptions=False,
    )
    outputs.append(table.output)
    return run_id, outputs


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(KEY_ENV, SECRET)
    monkeypatch.setattr(endpoint_module, "BACKOFF_BASE_S", 0.01)


def test_401_echoing_the_key_leaves_no_trace(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    def echo_key(call: Call) -> Action:
        token = bearer(call).removeprefix("Bearer ")
        return unauthorized(f"Incorrect API key provided: {token}. You can find your API key at your account page.")

    fake_openai.policy = echo_key
    run_id, outputs = run_and_report(tmp_path, fake_openai)

    calls = fake_openai.calls()
    assert calls and all(bearer(c) == f"Bearer {SECRET}" for c in calls), "the key was not sent from the env var"
    report = json.loads(outputs[4])
    assert report["run"]["run_id"] == run_id
    assert [r["status"] for r in report["cases"]] == ["error", "error"]
    assert all("401" in r["error"] and r["attempts"] == 1 for r in report["cases"])
    assert report["run"]["targets"][0]["api_key_env"] == KEY_ENV
    assert leaked_in(tmp_path, outputs) == []


def test_malformed_200_body_echoing_the_key_leaves_no_trace(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    """A proxy answering 200 with a page that echoes the request's Authorization header."""

    def echo_page(call: Call) -> Action:
        return raw_body(f"<html>proxy error; Authorization: {bearer(call)}</html>", content_type="text/html")

    fake_openai.policy = echo_page
    _, outputs = run_and_report(tmp_path, fake_openai)

    report = json.loads(outputs[4])
    assert [r["status"] for r in report["cases"]] == ["error", "error"]
    assert all("malformed" in r["error"] for r in report["cases"])
    assert leaked_in(tmp_path, outputs) == []


def test_successful_run_with_a_key_stores_no_secret(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    _, outputs = run_and_report(tmp_path, fake_openai)
    report = json.loads(outputs[4])
    assert [r["status"] for r in report["cases"]] == ["ok", "ok"]
    assert all(bearer(c) == f"Bearer {SECRET}" for c in fake_openai.calls())
    assert fake_openai.count(judge=True) == 2
    assert leaked_in(tmp_path, outputs) == []
