"""Loading suites: the shipped examples, defaults, the content hash, streamed JSONL cases."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from harness.errors import UserError
from harness.suites import discover_suite_files, load_suite
from harness.suites.loader import iter_cases
from harness.suites.models import DEFAULT_THRESHOLD
from judges.criteria import DEFAULT_CRITERIA

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "prompt_suites" / "examples"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def case_line(case_id: str, **fields: object) -> str:
    return orjson.dumps({"id": case_id, "prompt": f"question {case_id}", **fields}).decode()


def rehash(cases: list[dict[str, object]]) -> str:
    """The content hash as documented: sha256 over each normalised case, sorted keys, one per line."""
    digest = hashlib.sha256()
    for c in cases:
        digest.update(orjson.dumps(c, option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
    return digest.hexdigest()


SUITE_WITH_DEFAULTS = """\
suite: defaults-demo
version: 2.1.0
description: checks that defaults reach every case
defaults:
  system: Be brief.
  params: {temperature: 0, max_tokens: 64}
  criteria: [instruction_following]
  threshold: 3
  tags: [base, shared]
cases:
  - id: plain
    prompt: What is 2+2?
  - id: override
    prompt: Name a colour.
    system: Answer in French.
    params: {max_tokens: 8, top_p: 0.5}
    criteria: [preciseness, instruction_following]
    threshold: 5
    tags: [shared, extra]
  - id: chat
    messages:
      - role: user
        content: Hi
      - role: assistant
        content: Hello!
      - role: user
        content: Count to three.
  - id: own-system-message
    messages:
      - role: system
        content: You are a pirate.
      - role: user
        content: Greet me.
"""

SUITE_NO_DEFAULTS = """\
suite: bare
version: 0.1.0
cases:
  - id: only
    prompt: hello
"""


# --- the shipped examples ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "name", "count"),
    [
        ("factual_qa.yaml", "factual-qa", 14),
        ("format_following.yaml", "format-following", 14),
        ("support_triage.yaml", "support-triage", 24),
    ],
)
def test_example_suites_load_with_expected_counts(file: str, name: str, count: int) -> None:
    suite = load_suite(EXAMPLES / file)
    assert suite.name == name
    assert suite.case_count == count
    cases = list(iter_cases(suite))
    assert len(cases) == count
    assert len({c.id for c in cases}) == count
    assert len(suite.content_hash) == 64
    int(suite.content_hash, 16)  # hex
    ident = suite.identity()
    assert ident["suite"] == name
    assert ident["cases"] == count
    assert ident["hash"] == suite.content_hash


def test_support_triage_reads_its_cases_from_jsonl() -> None:
    suite = load_suite(EXAMPLES / "support_triage.yaml")
    assert suite.inline_cases == []
    assert suite.cases_file == (EXAMPLES / "support_triage.cases.jsonl").resolve()
    lines = [ln for ln in suite.cases_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
    assert len(lines) == 24
    ids = [orjson.loads(ln)["id"] for ln in lines]
    resolved = list(iter_cases(suite))
    assert [c.id for c in resolved] == ids
    # the YAML defaults reach the JSONL cases
    for case in resolved:
        assert case.suite == "support-triage"
        assert case.messages[0]["role"] == "system"
        assert case.messages[0]["content"] == suite.defaults.system
        assert "triage" in case.tags


def test_example_defaults_are_applied_to_every_case() -> None:
    suite = load_suite(EXAMPLES / "factual_qa.yaml")
    assert suite.defaults.system
    for case in iter_cases(suite):
        assert case.messages[0] == {"role": "system", "content": suite.defaults.system}
        assert case.messages[-1]["role"] == "user"
        for key, value in suite.defaults.params.items():
            assert case.params[key] == value
        assert case.tags[0] == "factual"


def test_discover_expands_a_folder_to_its_suite_files_only() -> None:
    found = discover_suite_files([EXAMPLES])
    assert [p.name for p in found] == ["factual_qa.yaml", "format_following.yaml", "support_triage.yaml"]


def test_discover_skips_harness_yaml(tmp_path: Path) -> None:
    write(tmp_path / "harness.yaml", "targets: {}\n")
    write(tmp_path / "a.yaml", SUITE_NO_DEFAULTS)
    assert discover_suite_files([tmp_path]) == [tmp_path / "a.yaml"]


def test_discover_missing_path_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        discover_suite_files([tmp_path / "nope.yaml"])
    assert info.value.file == str(tmp_path / "nope.yaml")
    assert "no such file" in info.value.message


# --- defaults -------------------------------------------------------------------------------


def test_defaults_are_applied_and_cases_override_them(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path / "s.yaml", SUITE_WITH_DEFAULTS))
    assert suite.name == "defaults-demo"
    assert suite.version == "2.1.0"
    cases = {c.id: c for c in iter_cases(suite)}
    assert list(cases) == ["plain", "override", "chat", "own-system-message"]

    plain = cases["plain"]
    assert plain.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    assert plain.params == {"temperature": 0, "max_tokens": 64}
    assert plain.criteria == ["instruction_following"]
    assert plain.threshold == 3
    assert plain.tags == ["base", "shared"]
    assert plain.references == []
    assert plain.checks == []

    override = cases["override"]
    assert override.messages[0] == {"role": "system", "content": "Answer in French."}
    # merged: the case's keys win, the defaults' other keys stay
    assert override.params == {"temperature": 0, "max_tokens": 8, "top_p": 0.5}
    assert override.criteria == ["preciseness", "instruction_following"]
    assert override.threshold == 5
    # merged in order, without duplicates
    assert override.tags == ["base", "shared", "extra"]

    chat = cases["chat"]
    assert [m["role"] for m in chat.messages] == ["system", "user", "assistant", "user"]
    assert chat.messages[0]["content"] == "Be brief."
    assert chat.messages[3]["content"] == "Count to three."

    # a conversation that brings its own system message does not get a second one
    own = cases["own-system-message"]
    assert own.messages == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Greet me."},
    ]


def test_defaults_of_the_harness_apply_when_the_suite_sets_none(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path / "s.yaml", SUITE_NO_DEFAULTS))
    (case,) = list(iter_cases(suite))
    assert case.messages == [{"role": "user", "content": "hello"}]  # no system message at all
    assert case.criteria == list(DEFAULT_CRITERIA)
    assert case.threshold == DEFAULT_THRESHOLD == 4
    assert case.params == {}
    assert case.tags == []
    assert suite.description == ""


def test_defaults_do_not_leak_between_cases(tmp_path: Path) -> None:
    suite = load_suite(write(tmp_path / "s.yaml", SUITE_WITH_DEFAULTS))
    first, second, *_ = list(iter_cases(suite))
    first.params["injected"] = True
    first.tags.append("mutated")
    assert "injected" not in second.params
    assert "injected" not in suite.defaults.params
    assert "mutated" not in suite.defaults.tags
    again = next(iter(iter_cases(suite)))
    assert again.params == {"temperature": 0, "max_tokens": 64}


# --- the content hash -----------------------------------------------------------------------


def test_hash_is_stable_across_loads_and_matches_the_normalised_cases(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", SUITE_WITH_DEFAULTS)
    a, b = load_suite(path), load_suite(path)
    assert a.content_hash == b.content_hash
    assert a.content_hash == rehash([c.normalised() for c in iter_cases(a)])


def test_hash_ignores_description_comments_and_layout(tmp_path: Path) -> None:
    base = load_suite(write(tmp_path / "a.yaml", SUITE_WITH_DEFAULTS)).content_hash
    described = SUITE_WITH_DEFAULTS.replace(
        "description: checks that defaults reach every case", "description: a completely different text"
    )
    assert load_suite(write(tmp_path / "b.yaml", described)).content_hash == base
    commented = "# a comment on top\n" + SUITE_WITH_DEFAULTS.replace(
        "params: {temperature: 0, max_tokens: 64}", "params:\n    max_tokens: 64  # flipped order\n    temperature: 0"
    )
    assert load_suite(write(tmp_path / "c.yaml", commented)).content_hash == base


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("prompt: What is 2+2?", "prompt: What is 2+3?"),  # a case's prompt
        ("threshold: 5", "threshold: 4"),  # a case's threshold
        ("system: Be brief.", "system: Be very brief."),  # a default reaching every case
        ("tags: [base, shared]", "tags: [base]"),  # default tags
        ("- id: plain", "- id: plain2"),  # a case id
        ("content: Count to three.", "content: Count to four."),  # a chat message
    ],
)
def test_hash_changes_when_a_case_changes(tmp_path: Path, old: str, new: str) -> None:
    assert old in SUITE_WITH_DEFAULTS
    base = load_suite(write(tmp_path / "a.yaml", SUITE_WITH_DEFAULTS)).content_hash
    changed = load_suite(write(tmp_path / "b.yaml", SUITE_WITH_DEFAULTS.replace(old, new, 1))).content_hash
    assert changed != base


def test_hash_changes_when_a_check_or_reference_is_added(tmp_path: Path) -> None:
    base = load_suite(write(tmp_path / "a.yaml", SUITE_NO_DEFAULTS)).content_hash
    with_check = SUITE_NO_DEFAULTS + "    checks: [{contains: hi}]\n"
    with_ref = SUITE_NO_DEFAULTS + "    references: [hi]\n"
    h1 = load_suite(write(tmp_path / "b.yaml", with_check)).content_hash
    h2 = load_suite(write(tmp_path / "c.yaml", with_ref)).content_hash
    assert len({base, h1, h2}) == 3


def test_hash_changes_when_the_jsonl_changes(tmp_path: Path) -> None:
    write(tmp_path / "s.yaml", "suite: s\nversion: 1.0.0\ncases_file: cases.jsonl\n")
    jsonl = tmp_path / "cases.jsonl"
    write(jsonl, "\n".join(case_line(f"c{i}") for i in range(3)) + "\n")
    first = load_suite(tmp_path / "s.yaml").content_hash
    assert load_suite(tmp_path / "s.yaml").content_hash == first
    write(jsonl, "\n".join(case_line(f"c{i}", references=["x"] if i == 2 else []) for i in range(3)) + "\n")
    assert load_suite(tmp_path / "s.yaml").content_hash != first


# --- JSONL cases, streamed ------------------------------------------------------------------


def test_large_jsonl_is_loaded_and_streamed(tmp_path: Path) -> None:
    n = 20_000
    write(
        tmp_path / "big.yaml",
        "suite: big\nversion: 1.0.0\ndefaults:\n  system: S\n  tags: [bulk]\ncases_file: data/big.jsonl\n",
    )
    (tmp_path / "data").mkdir()
    with (tmp_path / "data" / "big.jsonl").open("w", encoding="utf-8") as handle:
        for i in range(n):
            handle.write(case_line(f"case-{i}", checks=[{"contains": str(i)}], tags=[f"t{i % 7}"]) + "\n")
            if i % 5000 == 0:
                handle.write("\n")  # blank lines are skipped
    suite = load_suite(tmp_path / "big.yaml")
    assert suite.case_count == n
    assert suite.inline_cases == []  # the cases are not held in memory
    count = 0
    digest = hashlib.sha256()
    for case in iter_cases(suite):
        count += 1
        digest.update(orjson.dumps(case.normalised(), option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
    assert count == n
    assert digest.hexdigest() == suite.content_hash
    assert case.id == f"case-{n - 1}"
    assert case.tags == ["bulk", f"t{(n - 1) % 7}"]
    assert case.messages[0] == {"role": "system", "content": "S"}


def test_iter_cases_reads_the_jsonl_lazily(tmp_path: Path) -> None:
    write(tmp_path / "s.yaml", "suite: s\nversion: 1.0.0\ncases_file: c.jsonl\n")
    jsonl = write(tmp_path / "c.jsonl", case_line("first") + "\n" + case_line("second") + "\n")
    suite = load_suite(tmp_path / "s.yaml")
    # break the file after loading: a lazy iterator still yields what comes before the bad line
    with jsonl.open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    stream = iter_cases(suite)
    assert next(stream).id == "first"
    assert next(stream).id == "second"
    with pytest.raises(UserError) as info:
        next(stream)
    assert info.value.file == str(jsonl.resolve())
    assert info.value.line == 3


def test_inline_cases_come_before_jsonl_cases(tmp_path: Path) -> None:
    write(
        tmp_path / "s.yaml",
        "suite: s\nversion: 1.0.0\ncases:\n  - id: inline\n    prompt: p\ncases_file: c.jsonl\n",
    )
    write(tmp_path / "c.jsonl", case_line("from-file") + "\n")
    suite = load_suite(tmp_path / "s.yaml")
    assert suite.case_count == 2
    assert [c.id for c in iter_cases(suite)] == ["inline", "from-file"]
