"""The judge canary set: the shipped file's coverage, the loader's errors, and its place beside the suites
(skipped by suite discovery, versioned by the suite lock)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.suites import discover_suite_files
from harness.suites.loader import iter_cases, load_suite
from harness.suites.lock import problems, read_lock, scan, updated
from judges.canaries import (
    CANARY_KINDS,
    DEFAULT_CANARIES,
    CanarySet,
    discover_canary_files,
    load_canaries,
)
from judges.criteria import KNOWN_CRITERIA

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "prompt_suites"


@pytest.fixture(scope="module")
def shipped() -> CanarySet:
    return load_canaries(DEFAULT_CANARIES)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


# --- the shipped set ------------------------------------------------------------------------------------------


def test_default_path_is_the_shipped_file() -> None:
    assert DEFAULT_CANARIES == SUITES / "canaries" / "judge.canaries.yaml"
    assert DEFAULT_CANARIES.is_file()


def test_the_shipped_set_loads_with_enough_items(shipped: CanarySet) -> None:
    assert shipped.name == "judge-canaries"
    assert re.fullmatch(r"\d+\.\d+\.\d+", shipped.version)
    assert len(shipped.items) >= 48
    ids = [item.id for item in shipped.items]
    assert len(ids) == len(set(ids))
    assert re.fullmatch(r"[0-9a-f]{64}", shipped.content_hash)
    assert shipped.identity() == {
        "canaries": "judge-canaries",
        "version": shipped.version,
        "hash": shipped.content_hash,
        "items": len(shipped.items),
        "path": str(DEFAULT_CANARIES),
    }


def test_every_criterion_has_at_least_20_items(shipped: CanarySet) -> None:
    per_criterion = Counter(c for item in shipped.items for c in item.criteria)
    assert set(per_criterion) == set(KNOWN_CRITERIA)
    assert all(count >= 20 for count in per_criterion.values()), per_criterion


def test_every_kind_has_at_least_4_items(shipped: CanarySet) -> None:
    per_kind = Counter(item.kind for item in shipped.items)
    assert set(per_kind) == set(CANARY_KINDS)
    assert all(count >= 4 for count in per_kind.values()), per_kind


def test_items_are_well_formed(shipped: CanarySet) -> None:
    for item in shipped.items:
        assert item.good.strip() and item.bad.strip() and item.good.strip() != item.bad.strip(), item.id
        assert item.messages[0]["role"] == "system", item.id  # every shipped item has a system prompt
        assert item.messages[-1]["role"] == "user", item.id
        assert [m["role"] for m in item.messages].count("system") == 1, item.id
        if item.kind == "ignored_length":
            assert len(item.bad.split()) >= 2 * len(item.good.split()), item.id
        if item.kind == "truncated":
            assert item.good.startswith(item.bad[: len(item.bad) // 2]), item.id


def test_support_triage_style_items_are_included(shipped: CanarySet) -> None:
    triage = [i for i in shipped.items if '{"category"' in i.messages[0]["content"]]
    assert len(triage) >= 4
    kinds = {i.kind for i in triage}
    assert {"wrong_fact", "ignored_format"} <= kinds
    for item in triage:
        assert item.good.startswith('{"category": ')


def test_multi_turn_items_keep_their_messages(shipped: CanarySet) -> None:
    multi = [i for i in shipped.items if sum(m["role"] == "user" for m in i.messages) > 1]
    assert len(multi) >= 2
    for item in multi:
        assert [m["role"] for m in item.messages][:2] == ["system", "user"]


def test_no_canary_prompt_copies_a_suite_prompt(shipped: CanarySet) -> None:
    suite_prompts = set()
    for file in discover_suite_files([SUITES]):
        for case in iter_cases(load_suite(file)):
            suite_prompts |= {_norm(m["content"]) for m in case.messages if m["role"] == "user"}
    assert suite_prompts
    for item in shipped.items:
        for message in item.messages:
            if message["role"] == "user":
                assert _norm(message["content"]) not in suite_prompts, item.id


def test_request_carries_messages_references_and_the_side(shipped: CanarySet) -> None:
    item = shipped.item("capital-canada-wrong-fact")
    good, bad = item.request("good"), item.request("bad")
    assert good.response == "Ottawa." and bad.response == "Toronto."
    assert good.messages == bad.messages == item.messages
    assert good.references == ["Ottawa"] and good.criteria == ["preciseness"]
    assert good.fingerprint() != bad.fingerprint()
    with pytest.raises(KeyError):
        shipped.item("no-such-canary")


# --- loading: resolution and hash -----------------------------------------------------------------------------

MINIMAL = """\
canaries: tiny
version: 1.0.0
defaults:
  system: Be brief.
  criteria: [preciseness]
items:
  - id: one
    kind: wrong_fact
    prompt: What is 2 + 2?
    good: "4"
    bad: "5"
  - id: two
    kind: ignored_format
    criteria: [instruction_following]
    system: Reply in JSON.
    messages:
      - {role: user, content: Give a number.}
    good: '{"n": 1}'
    bad: one
  - id: three
    kind: refusal
    criteria: [instruction_following, preciseness]
    messages:
      - {role: system, content: Own system.}
      - {role: user, content: Hi?}
    good: Hello!
    bad: I can't help with that.
"""


def test_defaults_and_messages_resolve_like_a_suite_case(tmp_path: Path) -> None:
    canaries = load_canaries(write(tmp_path / "tiny.canaries.yaml", MINIMAL))
    one, two, three = canaries.items
    assert one.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]
    assert one.criteria == ["preciseness"]
    assert two.messages == [
        {"role": "system", "content": "Reply in JSON."},
        {"role": "user", "content": "Give a number."},
    ]
    assert two.criteria == ["instruction_following"]
    assert three.messages == [{"role": "system", "content": "Own system."}, {"role": "user", "content": "Hi?"}]
    assert three.criteria == ["instruction_following", "preciseness"]


def test_the_hash_follows_content_not_layout(tmp_path: Path) -> None:
    base = load_canaries(write(tmp_path / "a.canaries.yaml", MINIMAL)).content_hash
    relaid = MINIMAL.replace("description", "d").replace("version: 1.0.0", "version: 1.0.0\ndescription: other words")
    assert load_canaries(write(tmp_path / "b.canaries.yaml", "# a comment\n" + relaid)).content_hash == base
    changed = MINIMAL.replace('bad: "5"', 'bad: "6"')
    assert load_canaries(write(tmp_path / "c.canaries.yaml", changed)).content_hash != base
    moved_default = MINIMAL.replace("system: Be brief.", "system: Be very brief.")
    assert load_canaries(write(tmp_path / "d.canaries.yaml", moved_default)).content_hash != base


# --- loading: one clear error per bad file --------------------------------------------------------------------

# the second item (items[1]) starts at line 10: id 10, kind 11, criteria 12, prompt 13, good 14, bad 15
HEAD = "canaries: bad-set\nversion: 1.0.0\nitems:\n"
ITEM_OK = "  - id: fine\n    kind: wrong_fact\n    criteria: [preciseness]\n    prompt: Q?\n    good: A\n    bad: B\n"


@pytest.mark.parametrize(
    ("items", "line", "field", "message"),
    [
        pytest.param(
            "  - id: x\n    kind: wrong_fact\n    criteria: [precision]\n    prompt: Q?\n    good: A\n    bad: B\n",
            12,
            "items[1].criteria",
            "unknown criterion 'precision'",
            id="unknown-criterion",
        ),
        pytest.param(ITEM_OK, 10, "items[1].id", "duplicate canary id 'fine' (first at line 4)", id="duplicate-id"),
        pytest.param(
            "  - id: x\n    kind: wrong_fact\n    criteria: [preciseness]\n    prompt: Q?\n    good: Same\n"
            "    bad: ' Same '\n",
            15,
            "items[1].bad",
            "'bad' is the same text as 'good'",
            id="good-equals-bad",
        ),
        pytest.param(
            "  - id: x\n    kind: wrong_fact\n    criteria: [preciseness]\n    prompt: Q?\n    bad: B\n",
            10,
            "items[1].good",
            "is required but missing",
            id="missing-good",
        ),
        pytest.param(
            "  - id: x\n    kind: wrong_fact\n    criteria: [preciseness]\n    prompt: Q?\n    good: A\n",
            10,
            "items[1].bad",
            "is required but missing",
            id="missing-bad",
        ),
        pytest.param(
            "  - id: x\n    kind: typo\n    criteria: [preciseness]\n    prompt: Q?\n    good: A\n    bad: B\n",
            11,
            "items[1].kind",
            "'wrong_fact'",
            id="unknown-kind",
        ),
        pytest.param(
            "  - id: x\n    kind: wrong_fact\n    prompt: Q?\n    good: A\n    bad: B\n",
            10,
            "items[1].criteria",
            "is required (on the item or in defaults.criteria)",
            id="no-criteria",
        ),
        pytest.param(
            "  - id: x\n    kind: wrong_fact\n    criteria: []\n    prompt: Q?\n    good: A\n    bad: B\n",
            12,
            "items[1].criteria",
            "name at least one criterion",
            id="empty-criteria",
        ),
        pytest.param(
            "  - id: x\n    kind: wrong_fact\n    criteria: [preciseness]\n    prompt: Q?\n"
            "    messages: [{role: user, content: Q?}]\n    good: A\n    bad: B\n",
            10,
            "items[1]",
            "exactly one of 'prompt' or 'messages'",
            id="prompt-and-messages",
        ),
        pytest.param(
            "  - id: x\n    kind: wrong_fact\n    criteria: [preciseness]\n    prompt: Q?\n"
            "    good: '  '\n    bad: B\n",
            14,
            "items[1].good",
            "the good response is empty",
            id="blank-good",
        ),
        pytest.param(
            "  - id: Bad Id\n    kind: wrong_fact\n    criteria: [preciseness]\n    prompt: Q?\n"
            "    good: A\n    bad: B\n",
            10,
            "items[1].id",
            "should match pattern",
            id="bad-slug",
        ),
        pytest.param(
            "  - id: x\n    kind: wrong_fact\n    criteria: [preciseness]\n    prompt: Q?\n    good: A\n    bad: B\n"
            "    threshold: 4\n",
            16,
            "items[1].threshold",
            "is not a known field",
            id="unknown-field",
        ),
    ],
)
def test_a_bad_item_is_one_user_error_naming_file_line_and_field(
    tmp_path: Path, items: str, line: int, field: str, message: str
) -> None:
    path = write(tmp_path / "bad.canaries.yaml", HEAD + ITEM_OK + items)
    with pytest.raises(UserError) as info:
        load_canaries(path)
    err = info.value
    assert err.file == str(path)
    assert err.line == line
    assert err.field == field
    assert message in err.message
    assert str(err).startswith(f"{path}:{line}: field '{field}': ")


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        pytest.param("- just\n- a list\n", 1, None, "must be a YAML mapping", id="not-a-mapping"),
        pytest.param("canaries: x\nversion: 1.0.0\nitems: []\n", 3, "items", "at least 1 item", id="no-items"),
        pytest.param("canaries: x\nversion: one\nitems: []\n", 2, "version", "should match pattern", id="bad-version"),
        pytest.param("version: 1.0.0\nitems: []\n", None, "canaries", "is required but missing", id="no-name"),
        pytest.param(
            "canaries: x\nversion: 1.0.0\ndefaults: {criteria: [nope]}\nitems: []\n",
            3,
            "defaults.criteria",
            "unknown criterion 'nope'",
            id="bad-default-criterion",
        ),
        pytest.param("canaries: x\nversion: 1.0.0\nitems: [\n", 4, None, "invalid YAML", id="invalid-yaml"),
        pytest.param(
            "canaries: x\ncanaries: y\nversion: 1.0.0\nitems: []\n", 2, "canaries", "duplicate key", id="dup-key"
        ),
    ],
)
def test_a_bad_file_is_one_user_error(
    tmp_path: Path, text: str, line: int | None, field: str | None, message: str
) -> None:
    path = write(tmp_path / "bad.canaries.yaml", text)
    with pytest.raises(UserError) as info:
        load_canaries(path)
    assert info.value.file == str(path)
    if line is not None:
        assert info.value.line == line
    assert info.value.field == field
    assert message in info.value.message


def test_a_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        load_canaries(tmp_path / "none.canaries.yaml")
    assert "cannot read the file" in info.value.message


# --- beside the suites: discovery and the lock ----------------------------------------------------------------

SUITE = """\
suite: mini
version: 1.0.0
cases:
  - id: a
    prompt: Say hi.
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "prompt_suites"
    write(root / "mini.yaml", SUITE)
    write(root / "canaries" / "tiny.canaries.yaml", MINIMAL)
    return root


def test_suite_discovery_skips_canary_files(tree: Path) -> None:
    write(tree / "more.canaries.yml", MINIMAL.replace("canaries: tiny", "canaries: more"))
    assert discover_suite_files([tree]) == [tree / "mini.yaml"]
    assert discover_canary_files([tree]) == [tree / "canaries" / "tiny.canaries.yaml", tree / "more.canaries.yml"]
    assert discover_canary_files([tree / "mini.yaml"]) == []
    assert discover_suite_files([SUITES / "canaries"], empty_ok=True) == []
    with pytest.raises(UserError):
        discover_suite_files([SUITES / "canaries"])
    with pytest.raises(UserError) as info:
        discover_canary_files([tree / "gone.canaries.yaml"])
    assert "no such file" in info.value.message


def test_the_lock_records_and_checks_canary_sets_like_suites(tree: Path) -> None:
    lock = tree / "suites.lock"
    found = scan([tree], lock)
    assert {(f.name, f.path, f.cases) for f in found} == {
        ("mini", "mini.yaml", 1),
        ("tiny", "canaries/tiny.canaries.yaml", 3),
    }
    entries = updated(found, {}, tree)
    assert problems(scan([tree], lock), entries, tree) == []
    # a content change without a version bump is a lock problem
    write(tree / "canaries" / "tiny.canaries.yaml", MINIMAL.replace('bad: "5"', 'bad: "6"'))
    (problem,) = problems(scan([tree], lock), entries, tree)
    assert problem.kind == "changed" and problem.suite == "tiny"
    assert "content changed without a version bump" in problem.message
    # a bump makes it a new, lockable version
    write(tree / "canaries" / "tiny.canaries.yaml", MINIMAL.replace('bad: "5"', 'bad: "6"').replace("1.0.0", "1.1.0"))
    (problem,) = problems(scan([tree], lock), entries, tree)
    assert problem.kind == "unlocked"
    # a canary file named on its own is scanned alone, without the suites
    (only,) = scan([tree / "canaries" / "tiny.canaries.yaml"], lock)
    assert only.name == "tiny" and only.version == "1.1.0"


def test_the_committed_lock_records_the_shipped_canaries(shipped: CanarySet) -> None:
    entries = read_lock(SUITES / "suites.lock")
    entry = entries[shipped.name]
    assert entry.path == "canaries/judge.canaries.yaml"
    assert (entry.version, entry.sha256, entry.cases) == (shipped.version, shipped.content_hash, len(shipped.items))


@pytest.mark.parametrize(
    "statement",
    [
        "import judges.canaries",
        "import judges.canaries, harness.runner.engine",
        "import harness.runner.engine, judges.canaries",
        "import harness.suites.lock",
        "import reports.canaries",
    ],
)
def test_imports_have_no_cycle(statement: str) -> None:
    subprocess.run([sys.executable, "-c", statement], check=True, cwd=REPO)
