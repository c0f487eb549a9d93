"""reports.ci_summary.append_step_summary: appends to $GITHUB_STEP_SUMMARY when it is set, never overwrites, stays
under GitHub's 1 MiB per step, masks secret-looking environment values, and prints nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.ci_summary import STEP_LIMIT, append_step_summary


def test_unset_or_empty_variable_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert append_step_summary("## hello") is None
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "")
    assert append_step_summary("## hello") is None
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr() == ("", "")


def test_appends_and_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("# written by an earlier command\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert append_step_summary("## Run `one`\n\n| a | b |\n|---|---|\n| 1 | 2 |") == summary
    assert append_step_summary("## Gate passed\n") == summary
    assert summary.read_text(encoding="utf-8") == (
        "# written by an earlier command\n## Run `one`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n## Gate passed\n"
    )
    assert capsys.readouterr() == ("", "")


def test_creates_the_file_when_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert append_step_summary("first") == summary
    assert summary.read_text(encoding="utf-8") == "first\n"


def test_secret_values_from_the_environment_are_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-123456")
    monkeypatch.setenv("GH_TOKEN", "ghp_secret_token_value")
    monkeypatch.setenv("MODEL_NAME", "gpt-4o-mini-2024")  # not secret-looking: kept
    append_step_summary("error: key sk-test-SECRET-123456 rejected; token ghp_secret_token_value; gpt-4o-mini-2024")
    text = summary.read_text(encoding="utf-8")
    assert "sk-test-SECRET" not in text and "ghp_secret" not in text
    assert text == "error: key *** rejected; token ***; gpt-4o-mini-2024\n"


def test_stays_under_githubs_per_step_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("x" * 1000, encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    append_step_summary("é" * STEP_LIMIT)  # two bytes a character: twice the limit
    data = summary.read_bytes()
    assert len(data) <= STEP_LIMIT
    text = data.decode("utf-8")  # cut on a character boundary
    assert text.startswith("x" * 1000 + "é")
    assert text.endswith("GitHub accepts at most 1 MiB per step; see the uploaded report)_\n")
