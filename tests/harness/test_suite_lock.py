"""`harness suites lock` / `harness suites check`: the lock records each suite's version and content hash and
every version ever locked; check fails on a content change without a version bump, a reused or backwards
version, a duplicate suite name, an unlocked suite; the committed prompt_suites/suites.lock is up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.suites import load_suite
from harness.suites.lock import read_lock, render_lock, scan, updated, version_key

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "prompt_suites"


def harness(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run the `harness` command line in-process: exit code, stdout, stderr."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def write_suite(path: Path, name: str, version: str, prompt: str = "What is 2 + 2?") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"suite: {name}\nversion: {version}\ncases:\n  - id: sum\n    prompt: {json.dumps(prompt)}\n"
        "  - id: other\n    prompt: Name a colour.\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "prompt_suites"
    write_suite(root / "math.yaml", "math", "1.0.0")
    write_suite(root / "sub" / "words.yaml", "words", "2.1.0", "Spell cat.")
    return root


def test_lock_then_check_passes_and_the_lock_records_name_version_hash_path(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = harness(capsys, "suites", "lock", tree)
    assert code == 0, err
    lock = tree / "suites.lock"
    assert f"wrote {lock}" in out
    doc = json.loads(lock.read_text(encoding="utf-8"))
    math = load_suite(tree / "math.yaml")
    assert doc["suites"]["math"] == {
        "version": "1.0.0",
        "sha256": math.content_hash,
        "cases": 2,
        "path": "math.yaml",
        "history": [{"version": "1.0.0", "sha256": math.content_hash}],
    }
    assert doc["suites"]["words"]["path"] == "sub/words.yaml"
    assert harness(capsys, "suites", "check", tree)[:2] == (0, f"ok: 2 suites agree with {lock}\n")
    # locking again changes nothing, byte for byte
    before = lock.read_text(encoding="utf-8")
    code, out, _ = harness(capsys, "suites", "lock", tree)
    assert code == 0 and out.startswith("up to date:")
    assert lock.read_text(encoding="utf-8") == before


def test_a_changed_case_without_a_version_bump_fails_check_and_lock(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert harness(capsys, "suites", "lock", tree)[0] == 0
    old = load_suite(tree / "math.yaml").content_hash
    write_suite(tree / "math.yaml", "math", "1.0.0", "What is 2 + 3?")
    new = load_suite(tree / "math.yaml").content_hash
    code, out, err = harness(capsys, "suites", "check", tree)
    assert code == 1 and out == ""
    assert "math (math.yaml): content changed without a version bump" in err
    assert f"version 1.0.0 was locked with sha256 {old[:16]}" in err and new[:16] in err
    assert "words" not in err  # the unchanged suite is fine
    lock_text = (tree / "suites.lock").read_text(encoding="utf-8")
    code, _, err = harness(capsys, "suites", "lock", tree)  # lock refuses to paper over it
    assert code == 1 and "content changed without a version bump" in err and "nothing written" in err
    assert (tree / "suites.lock").read_text(encoding="utf-8") == lock_text


def test_a_change_in_the_jsonl_cases_file_counts_as_content(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / "t.cases.jsonl").write_text('{"id": "a", "prompt": "hi"}\n', encoding="utf-8")
    (root / "t.yaml").write_text("suite: t\nversion: 0.1.0\ncases_file: t.cases.jsonl\n", encoding="utf-8")
    assert harness(capsys, "suites", "lock", root)[0] == 0
    (root / "t.cases.jsonl").write_text('{"id": "a", "prompt": "hello"}\n', encoding="utf-8")
    code, _, err = harness(capsys, "suites", "check", root)
    assert code == 1 and "t (t.yaml): content changed without a version bump" in err


def test_a_version_bump_passes_after_relocking_and_history_keeps_every_version(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert harness(capsys, "suites", "lock", tree)[0] == 0
    first = load_suite(tree / "math.yaml").content_hash
    write_suite(tree / "math.yaml", "math", "1.1.0", "What is 2 + 3?")
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 1 and "math (math.yaml): version 1.1.0 is not locked (the lock has 1.0.0)" in err
    code, _, err = harness(capsys, "suites", "lock", tree)
    assert code == 0 and "locked math: 1.0.0" in err
    assert harness(capsys, "suites", "check", tree)[0] == 0
    entry = read_lock(tree / "suites.lock")["math"]
    second = load_suite(tree / "math.yaml").content_hash
    assert (entry.version, entry.sha256) == ("1.1.0", second)
    assert entry.history == {"1.0.0": first, "1.1.0": second}


def test_a_reused_version_with_new_content_fails_even_after_a_later_lock(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert harness(capsys, "suites", "lock", tree)[0] == 0
    write_suite(tree / "math.yaml", "math", "1.1.0", "What is 2 + 3?")
    assert harness(capsys, "suites", "lock", tree)[0] == 0
    write_suite(tree / "math.yaml", "math", "1.0.0", "What is 7 + 7?")  # 1.0.0 again, other content
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 1 and "math (math.yaml): version 1.0.0 reused with new content" in err
    assert harness(capsys, "suites", "lock", tree)[0] == 1
    # the original 1.0.0 content back under 1.0.0 is no reuse, but the version went backwards
    write_suite(tree / "math.yaml", "math", "1.0.0")
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 1 and "version went backwards: 1.0.0 is below the locked 1.1.0" in err


def test_lock_force_overwrites_a_changed_version(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert harness(capsys, "suites", "lock", tree)[0] == 0
    write_suite(tree / "math.yaml", "math", "1.0.0", "What is 2 + 3?")
    code, _, err = harness(capsys, "suites", "lock", "--force", tree)
    assert code == 0 and "overwrote math: 1.0.0" in err
    assert harness(capsys, "suites", "check", tree)[0] == 0
    assert read_lock(tree / "suites.lock")["math"].history == {"1.0.0": load_suite(tree / "math.yaml").content_hash}


def test_new_duplicate_and_removed_suites(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert harness(capsys, "suites", "lock", tree)[0] == 0
    write_suite(tree / "extra.yaml", "extra", "0.1.0")
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 1 and "extra (extra.yaml): not in the lock; run `harness suites lock`" in err
    write_suite(tree / "copy.yaml", "math", "1.0.0")
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 1 and "math: 2 suite files share this suite name: copy.yaml, math.yaml" in err
    assert harness(capsys, "suites", "lock", tree)[0] == 1  # a duplicate cannot be locked, not even with --force
    assert harness(capsys, "suites", "lock", "--force", tree)[0] == 1
    (tree / "copy.yaml").unlink()
    (tree / "extra.yaml").unlink()
    old_words = load_suite(tree / "sub" / "words.yaml").content_hash
    (tree / "sub" / "words.yaml").unlink()
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 1 and "words: in the lock (sub/words.yaml, 2.1.0) but no suite file has it any more" in err
    assert harness(capsys, "suites", "lock", tree)[0] == 0
    assert harness(capsys, "suites", "check", tree)[0] == 0
    entry = read_lock(tree / "suites.lock")["words"]
    assert entry.removed and entry.history == {"2.1.0": old_words}
    # coming back with a version it had, but other content, is still a reused version
    write_suite(tree / "sub" / "words.yaml", "words", "2.1.0", "Spell dog.")
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 1 and "version 2.1.0 reused with new content" in err


def test_checking_a_subset_leaves_the_other_locked_suites_alone(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert harness(capsys, "suites", "lock", tree)[0] == 0
    lock = tree / "suites.lock"
    code, out, err = harness(capsys, "suites", "check", "--lock", lock, tree / "sub")
    assert code == 0, err
    assert out == f"ok: 1 suites agree with {lock}\n"


def test_a_missing_or_unreadable_lock_is_a_usage_error(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 2 and "suites.lock: no suite lock here; create it with `harness suites lock`" in err
    (tree / "suites.lock").write_text("{not json", encoding="utf-8")
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 2 and "suites.lock:1: the suite lock is not valid JSON" in err
    assert harness(capsys, "suites", "lock", tree)[0] == 2  # lock will not overwrite a lock it cannot read
    (tree / "suites.lock").write_text('{"format": 1, "suites": {"math": {"version": "1.0.0"}}}', encoding="utf-8")
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 2 and "field 'suites.math': malformed suite entry (missing 'sha256')" in err


def test_a_bad_suite_is_a_usage_error(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert harness(capsys, "suites", "lock", tree)[0] == 0
    (tree / "math.yaml").write_text("suite: math\ncases: []\n", encoding="utf-8")
    code, _, err = harness(capsys, "suites", "check", tree)
    assert code == 2 and "math.yaml" in err and "field 'version': is required but missing" in err


def test_versions_order_by_semantic_version_precedence() -> None:
    ordered = ["0.9.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0"]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert version_key("1.0.0+build.5") == version_key("1.0.0")


def test_the_committed_lock_passes_check_and_is_what_lock_writes(capsys: pytest.CaptureFixture[str]) -> None:
    lock = SUITES / "suites.lock"
    code, out, err = harness(capsys, "suites", "check", SUITES)
    assert code == 0, err
    assert out == f"ok: 5 suites agree with {lock}\n"  # 4 suites and the judge canary set
    entries = read_lock(lock)
    assert render_lock(updated(scan([SUITES], lock), entries, SUITES)) == lock.read_text(encoding="utf-8")
