"""The fine-tuning set (prompt_suites/training) and `harness suites overlap`: the shipped set shares no user prompt
with any evaluation suite (so `make test` fails on an overlap); a planted verbatim copy and a near-duplicate are
caught with their suite and case ids; a malformed training line is exit 2 naming the line; the generator is
deterministic and its triage lines follow the support-triage suite."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from harness.cli import main
from harness.suites import load_suite
from harness.suites.loader import iter_cases
from harness.suites.overlap import CHAR_THRESHOLD, WORD_THRESHOLD, find_overlaps, normalise, scan

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "prompt_suites"
EXAMPLES = SUITES / "examples"
TRAIN = SUITES / "training" / "sft.jsonl"
GENERATOR = SUITES / "training" / "generate.py"
CATEGORIES = {"billing", "bug", "account", "other"}


def harness(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run the `harness` command line in-process: exit code, stdout, stderr."""
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(path: Path = TRAIN) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def eval_prompt(suite_file: str, case_id: str) -> str:
    (case,) = [c for c in iter_cases(load_suite(EXAMPLES / suite_file)) if c.id == case_id]
    return case.messages[-1]["content"]


def training_line(id_: str, prompt: str, system: str = "You triage customer support messages.") -> str:
    messages = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    return json.dumps({"id": id_, "task": "triage", "messages": messages, "response": "{}"}) + "\n"


# --- the shipped set -------------------------------------------------------------------------------------------


def test_the_shipped_training_set_has_no_overlap_with_any_suite() -> None:
    result = scan(TRAIN, [SUITES])
    assert result.overlaps == [], [(o.train_id, o.suite, o.case_id, o.kind) for o in result.overlaps]
    assert result.training_prompts == len(rows()) >= 400
    # every shipped suite was compared (the training folder and canary sets are not suites)
    assert {"factual-qa", "format-following", "support-triage", "judge-injection"} <= set(result.suites)
    assert result.best is not None and result.best.similarity < min(WORD_THRESHOLD, CHAR_THRESHOLD)


def test_the_cli_says_no_overlap_on_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = harness(capsys, "suites", "overlap", "--train", TRAIN, SUITES)
    assert code == 0, err
    assert re.match(r"no overlap: \d+ training prompts vs \d+ evaluation cases in \d+ suites", out), out


# --- planted overlaps ------------------------------------------------------------------------------------------


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """The shipped training file plus a verbatim evaluation prompt, a two-word edit of another, a far-away one."""
    verbatim = eval_prompt("support_triage.yaml", "bug-sync-deleting-files")
    original = eval_prompt("support_triage.yaml", "billing-double-charge")
    near = original.replace("March", "April").replace("$29", "$49")
    assert near != original and len(near.split()) == len(original.split())
    train = tmp_path / "sft.jsonl"
    train.write_text(
        TRAIN.read_text(encoding="utf-8")
        + training_line("planted-verbatim", "  " + verbatim.upper() + " ")  # normalisation: case and spacing
        + training_line("planted-near", near)
        + training_line("planted-far", "Could you tell me which colour the new onboarding e-book cover will be?"),
        encoding="utf-8",
    )
    return train


def test_a_verbatim_and_a_near_duplicate_prompt_are_caught(planted: Path) -> None:
    found = {o.train_id: o for o in find_overlaps(planted, [SUITES])}
    assert set(found) == {"planted-verbatim", "planted-near"}
    exact, near = found["planted-verbatim"], found["planted-near"]
    assert (exact.suite, exact.case_id, exact.kind, exact.similarity) == (
        "support-triage",
        "bug-sync-deleting-files",
        "exact",
        1.0,
    )
    assert (near.suite, near.case_id, near.kind) == ("support-triage", "billing-double-charge", "near")
    assert near.word_jaccard >= WORD_THRESHOLD and near.char_jaccard >= CHAR_THRESHOLD
    assert near.similarity == max(near.word_jaccard, near.char_jaccard) < 1.0
    assert near.train_line == len(rows(planted)) - 1


def test_the_cli_prints_each_overlap_and_exits_1(planted: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = harness(capsys, "suites", "overlap", "--train", planted, SUITES)
    assert code == 1
    assert "planted-verbatim" in out and "support-triage/bug-sync-deleting-files: exact" in out
    assert "planted-near" in out and "support-triage/billing-double-charge: near" in out
    assert "planted-far" not in out
    assert "train: Hi, I was charged twice for my April subscription" in out
    assert "eval:  Hi, I was charged twice for my March subscription" in out
    assert "2 overlap(s)" in err


def test_a_split_multi_turn_prompt_and_a_short_question_are_caught(tmp_path: Path) -> None:
    """A training example is compared turn by turn and as its user turns joined; a short eval question with a
    number changed is a near-duplicate by character shingles even where no word 3-gram survives."""
    turns = [
        {"role": "user", "content": "From now on, answer each of my questions with a single numeral and nothing else."},
        {"role": "assistant", "content": "OK"},
        {"role": "user", "content": "How many legs does a spider have?"},
    ]
    train = tmp_path / "sft.jsonl"
    train.write_text(
        json.dumps({"id": "split", "task": "terse", "messages": turns, "response": "8"})
        + "\n"
        + training_line("numbers", "What is 14 multiplied by 26?"),
        encoding="utf-8",
    )
    found = {o.train_id: o for o in find_overlaps(train, [EXAMPLES])}
    assert (found["split"].suite, found["split"].case_id) == ("format-following", "multi-turn-number-only")
    numbers = found["numbers"]
    assert (numbers.case_id, numbers.kind, numbers.word_jaccard) == ("multiply-two-digit", "near", 0.0)
    assert numbers.char_jaccard >= CHAR_THRESHOLD


def test_system_prompts_are_not_compared(tmp_path: Path) -> None:
    system = load_suite(EXAMPLES / "support_triage.yaml").defaults.system
    assert system
    train = tmp_path / "sft.jsonl"
    train.write_text(training_line("shared-system", "Do you sell gift cards for birthdays?", system), "utf-8")
    assert find_overlaps(train, [SUITES]) == []


def test_the_training_folder_and_canary_sets_are_not_scanned_as_suites(tmp_path: Path) -> None:
    root = tmp_path / "suites"
    (root / "training").mkdir(parents=True)
    suite = "suite: {name}\nversion: 1.0.0\ncases:\n  - id: q\n    prompt: {prompt}\n"
    (root / "qa.yaml").write_text(suite.format(name="qa", prompt="Which river flows through Vienna?"), "utf-8")
    (root / "judge.canaries.yaml").write_text("not: a suite\n", "utf-8")  # would not load as a suite
    prompt = "Tell me a fun fact about owls."
    (root / "training" / "mirror.yaml").write_text(suite.format(name="mirror", prompt=prompt), "utf-8")
    train = root / "training" / "sft.jsonl"
    train.write_text(training_line("owls", prompt), "utf-8")
    result = scan(train, [root])
    assert result.overlaps == [] and result.suites == ["qa"]
    # named directly, a file is always compared
    assert [o.case_id for o in find_overlaps(train, [root / "training" / "mirror.yaml"])] == ["q"]


def test_normalise_casefolds_and_drops_punctuation() -> None:
    assert normalise("  Hello,\tWORLD!! It's   $5 — ok? ") == "hello world it s 5 ok"


# --- malformed training files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        ("{not json", "invalid JSON"),
        (json.dumps({"id": "x", "task": "triage", "messages": [], "response": "y"}), "messages"),
        (
            json.dumps({"id": "x", "task": "t", "messages": [{"role": "system", "content": "s"}], "response": "y"}),
            "user",
        ),
        (json.dumps({"id": "x", "task": "triage", "messages": [{"role": "user", "content": "hi"}]}), "response"),
    ],
)
def test_a_malformed_training_line_is_exit_2_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_line: str, expected: str
) -> None:
    train = tmp_path / "sft.jsonl"
    train.write_text(training_line("ok-1", "Where is the nearest post office?") + "\n" + bad_line + "\n", "utf-8")
    code, out, err = harness(capsys, "suites", "overlap", "--train", train, SUITES)
    assert code == 2
    assert out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: {train}:3: ") and expected in line


def test_a_repeated_training_id_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = tmp_path / "sft.jsonl"
    train.write_text(training_line("a", "First question here?") + training_line("a", "Second one?"), "utf-8")
    code, _, err = harness(capsys, "suites", "overlap", "--train", train, SUITES)
    assert code == 2 and f"{train}:2: duplicate id 'a' (first at line 1)" in err


def test_a_missing_training_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = harness(capsys, "suites", "overlap", "--train", tmp_path / "nope.jsonl", SUITES)
    assert code == 2 and "nope.jsonl: training file not found" in err


# --- the generator ---------------------------------------------------------------------------------------------


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sft_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generator_is_deterministic_and_matches_the_committed_file(tmp_path: Path) -> None:
    gen = generator()
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    gen.main(["--out", str(first)])
    gen.main(["--out", str(second)])
    assert first.read_bytes() == second.read_bytes() == TRAIN.read_bytes(), (
        "prompt_suites/training/sft.jsonl is stale: run `python prompt_suites/training/generate.py`"
    )


def test_triage_lines_follow_the_support_triage_suite() -> None:
    system = load_suite(EXAMPLES / "support_triage.yaml").defaults.system
    triage = [r for r in rows() if r["task"] == "triage"]
    assert 250 <= len(triage) <= 350
    per_category: dict[str, int] = {}
    urgent = 0
    for r in triage:
        messages = r["messages"]
        assert isinstance(messages, list)
        assert [m["role"] for m in messages] == ["system", "user"]
        assert messages[0]["content"] == system
        response = r["response"]
        assert isinstance(response, str)
        answer = json.loads(response)
        assert set(answer) == {"category", "urgent"}
        assert answer["category"] in CATEGORIES and isinstance(answer["urgent"], bool)
        assert response == json.dumps(answer)  # the references' spacing: {"category": "x", "urgent": false}
        assert str(r["id"]).startswith(f"triage-{answer['category']}-")
        per_category[answer["category"]] = per_category.get(answer["category"], 0) + 1
        urgent += answer["urgent"]
    assert set(per_category) == CATEGORIES and max(per_category.values()) - min(per_category.values()) <= 10
    assert 0.15 * len(triage) <= urgent <= 0.5 * len(triage)


# terse prompts whose answer is recomputed here: pattern -> answer from its integer groups
COMPUTED: list[tuple[str, Callable[..., str]]] = [
    (r"Add (\d+) and (\d+)\.", lambda a, b: str(a + b)),
    (r"Compute (\d+) × (\d+)\.", lambda a, b: str(a * b)),
    (r"Subtract (\d+) from (\d+)\.", lambda b, a: str(a - b)),
    (r"is (\d+) greater than (\d+)\?", lambda a, b: "YES" if a > b else "NO"),
    (r"Is (\d+) divisible by (\d+)\?", lambda a, b: "YES" if a % b == 0 else "NO"),
    (r"is (\d+) an even number\?", lambda a: "YES" if a % 2 == 0 else "NO"),
]


def test_terse_lines_have_the_suites_system_prompts_and_correct_computed_answers() -> None:
    systems = {load_suite(EXAMPLES / f).defaults.system for f in ("format_following.yaml", "factual_qa.yaml")}
    terse = [r for r in rows() if r["task"] == "terse"]
    assert 100 <= len(terse) <= 150
    seen_systems, checked = set(), 0
    for r in terse:
        messages = r["messages"]
        assert isinstance(messages, list)
        seen_systems.add(messages[0]["content"])
        prompt, answer = messages[1]["content"], r["response"]
        assert isinstance(answer, str) and answer.strip() == answer and answer
        for pattern, expected in COMPUTED:
            m = re.search(pattern, prompt)
            if m:
                assert answer == expected(*map(int, m.groups())), (prompt, answer)
                checked += 1
        if m := re.search(r"for the numbers (\d+) and (\d+)", prompt):
            a, b = map(int, m.groups())
            assert json.loads(answer) == {"sum": a + b, "product": a * b}
            checked += 1
        if prompt.startswith("Convert to capital letters"):
            assert answer == prompt.split(": ", 1)[1].upper()
            checked += 1
    assert seen_systems == systems
    assert checked >= len(terse) // 2
    assert len({r["id"] for r in rows()}) == len(rows())
