"""`harness suites validate`: a summary on good files, one `error: FILE:LINE: ...` line and exit 2 on bad ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from harness.suites import load_suite

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "prompt_suites" / "examples"


def harness(*args: str | Path, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_validate_prints_a_table_of_the_example_suites() -> None:
    proc = harness("suites", "validate", EXAMPLES)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split() == ["suite", "version", "cases", "sha256", "file"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"factual-qa", "format-following", "support-triage"}
    for name, file, count in [
        ("factual-qa", "factual_qa.yaml", 14),
        ("format-following", "format_following.yaml", 14),
        ("support-triage", "support_triage.yaml", 24),
    ]:
        suite = load_suite(EXAMPLES / file)
        row = rows[name]
        assert row[1] == suite.version
        assert row[2] == str(count)
        assert row[3] == suite.content_hash[:16]
        assert row[4].endswith(file)


def test_validate_json_format_parses(tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text("suite: mine\nversion: 3.2.1\ncases:\n  - id: a\n    prompt: hi\n", encoding="utf-8")
    proc = harness("suites", "validate", "--format", "json", EXAMPLES / "support_triage.yaml", good)
    assert proc.returncode == 0, proc.stderr
    doc = orjson.loads(proc.stdout)
    assert isinstance(doc, list)
    assert [d["suite"] for d in doc] == ["support-triage", "mine"]
    assert doc[0]["cases"] == 24
    assert doc[0]["hash"] == load_suite(EXAMPLES / "support_triage.yaml").content_hash
    assert doc[1] == {
        "suite": "mine",
        "version": "3.2.1",
        "hash": load_suite(good).content_hash,
        "cases": 1,
        "path": str(good),
    }


def test_validate_malformed_suite_prints_one_error_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "suite: bad\n"  # 1
        "version: 1.0.0\n"  # 2
        "cases:\n"  # 3
        "  - id: a\n"  # 4
        "    prompt: hi\n"  # 5
        "    checks:\n"  # 6
        "      - max_words: 0\n",  # 7
        encoding="utf-8",
    )
    proc = harness("suites", "validate", bad)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {bad}:7: ")
    assert "max_words" in lines[0]


def test_validate_yaml_syntax_error_via_subprocess(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("suite: s\nversion: 1.0.0\ncases:\n  - id: a\n    prompt: what: now\n", encoding="utf-8")
    proc = harness("suites", "validate", "--format", "json", bad)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(f"error: {bad}:5: invalid YAML")


def test_bad_jsonl_line_names_the_jsonl(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("suite: s\nversion: 1.0.0\ncases_file: c.jsonl\n", encoding="utf-8")
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"id": "a", "prompt": "x"}\n{"id": "b", "prompt": "x", "bogus": 1}\n', encoding="utf-8")
    proc = harness("suites", "validate", tmp_path / "s.yaml")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {jsonl.resolve()}:2: field 'bogus': is not a known field"]


def test_one_bad_file_among_good_ones_fails_the_command(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(
        "suite: s\nversion: 1.0.0\ncases:\n  - id: a\n    prompt: x\n  - id: a\n    prompt: y\n", encoding="utf-8"
    )
    proc = harness("suites", "validate", EXAMPLES / "factual_qa.yaml", path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith(f"error: {path}:6: field 'cases[1].id': duplicate case id 'a'")


def test_missing_path(tmp_path: Path) -> None:
    proc = harness("suites", "validate", tmp_path / "none.yaml")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {tmp_path / 'none.yaml'}: no such file or directory"]


def test_usage_error_exits_2_without_traceback() -> None:
    proc = harness("suites", "validate")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "Missing argument" in proc.stderr
