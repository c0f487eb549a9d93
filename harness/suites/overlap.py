"""Overlap between a fine-tuning set and the evaluation suites: a model must not be trained on the cases it is
scored on.

Every training example's USER messages are compared with every evaluation case's user messages, in every suite
found under the given paths. System prompts are not compared: a fine-tune for a suite shares the suite's system
prompt on purpose. A text with several user messages (a multi-turn case) is compared message by message and also
as all its user messages joined, so a prompt split over turns is still found.

Two kinds of overlap:

- **exact**: the two texts are equal after normalisation: casefolded (Unicode NFKC first), every punctuation or
  symbol character (Unicode categories P* and S*) turned into a space, whitespace collapsed.
- **near**: the normalised texts are similar by either of two exact (not sampled) Jaccard similarities:

  - word 3-gram shingles, at least `WORD_THRESHOLD` (0.5): the classic near-duplicate signal for prose; it finds a
    copied ticket with a few words changed or a sentence added;
  - character 5-gram shingles (over the normalised text, spaces included), at least `CHAR_THRESHOLD` (0.5): word
    3-grams alone miss short paraphrases with slots changed. Each changed word removes up to three word shingles,
    so "What is 14 multiplied by 26?" against "What is 17 multiplied by 23?" scores 0.0 on word 3-grams, and a
    27-word ticket with two words swapped 0.61 while a 15-word one drops to about 0.4; the character shingles,
    which lose only the few that span a changed word, give 0.59 and stay above 0.6 for most two-word edits.
    They also see through a split or respelt word ("e-mail" / "email": 0.37 on words, 0.69 on characters).
    A heavier rewrite (name, role and date all changed in a 20-word ticket: 0.25 words, 0.46 characters) is
    below both: by then it is a new ticket written in the same frame, not a copy.

  Measured on the shipped sets: unrelated texts score at most about 0.3 on characters (0.28 is the highest
  between the shipped training set and any case); two DIFFERENT evaluation cases that share a sentence frame
  ("How many metres are there in one kilometre?" / "...centimetres...in one inch?") reach 0.43; copies with a
  slot or two changed score 0.55 to 0.85. 0.5 sits between the last two. Word 3-gram Jaccard of unrelated texts
  is near 0, and 0.5 is the usual near-duplicate cut for it.

A text shorter than one shingle is one shingle (itself). The sets are compared exactly, pair by pair: at the size of
these sets (hundreds of training prompts against tens of cases) that takes well under a second, so no MinHash.

`find_overlaps(train_path, suite_paths)` is the function a training script calls; `harness suites overlap` is the
command (exit 1 on any overlap).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.errors import UserError
from harness.suites.loader import discover_suite_files, iter_cases, jsonl_models, load_suite
from harness.suites.models import Message

WORD_THRESHOLD = 0.5
"""Word 3-gram Jaccard at or above which two user texts are near-duplicates."""
CHAR_THRESHOLD = 0.5
"""Character 5-gram Jaccard at or above which two user texts are near-duplicates."""
H = TypeVar("H", bound=Hashable)
WORD_N = 3
CHAR_N = 5
SKIPPED_SUFFIXES = (".canaries.yaml", ".canaries.yml")
"""Files under a scanned folder that are not suites (canary strings for leak detection)."""


class TrainingExample(BaseModel):
    """One line of a fine-tuning file: chat messages and the response the model learns to give."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    task: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    response: str

    @model_validator(mode="after")
    def _has_user_message(self) -> TrainingExample:
        if not any(m.role == "user" for m in self.messages):
            raise ValueError("'messages' needs at least one message with role 'user'")
        return self


@dataclass(frozen=True)
class Text:
    """A user text to compare, with its shingles computed once."""

    raw: str
    normalised: str
    words: frozenset[tuple[str, ...]]
    chars: frozenset[str]


@dataclass(frozen=True)
class EvalCase:
    """An evaluation case's user texts."""

    suite: str
    case_id: str
    file: Path
    texts: tuple[Text, ...]


@dataclass(frozen=True)
class Overlap:
    """A training example whose user text matches an evaluation case's, exactly or nearly."""

    train_id: str
    train_line: int
    suite: str
    case_id: str
    kind: str  # "exact" | "near"
    similarity: float  # the larger of the two Jaccard similarities (1.0 for exact)
    word_jaccard: float
    char_jaccard: float
    train_text: str
    eval_text: str


@dataclass(frozen=True)
class Scan:
    """What `scan` compared and what it found; `best` is the most similar pair seen, overlapping or not."""

    overlaps: list[Overlap]
    training_prompts: int
    cases: int
    suites: list[str]
    best: Overlap | None


def normalise(text: str) -> str:
    """Casefold, turn punctuation and symbols into spaces, collapse whitespace."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in folded)
    return " ".join(kept.split())


def word_shingles(normalised: str, n: int = WORD_N) -> frozenset[tuple[str, ...]]:
    words = tuple(normalised.split())
    if len(words) <= n:
        return frozenset({words}) if words else frozenset()
    return frozenset(words[i : i + n] for i in range(len(words) - n + 1))


def char_shingles(normalised: str, n: int = CHAR_N) -> frozenset[str]:
    if len(normalised) <= n:
        return frozenset({normalised}) if normalised else frozenset()
    return frozenset(normalised[i : i + n] for i in range(len(normalised) - n + 1))


def jaccard(a: frozenset[H], b: frozenset[H]) -> float:
    if not a and not b:
        return 1.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def text(raw: str) -> Text:
    norm = normalise(raw)
    return Text(raw, norm, word_shingles(norm), char_shingles(norm))


def user_texts(messages: Iterable[dict[str, str]]) -> tuple[Text, ...]:
    """Each user message, plus all of them joined when there are several."""
    users = [m["content"] for m in messages if m["role"] == "user"]
    units = users if len(users) < 2 else [*users, "\n".join(users)]
    return tuple(text(u) for u in units)


def read_training(path: Path) -> list[tuple[int, TrainingExample]]:
    """The training file's examples with their line numbers; a malformed line or a repeated id is a UserError
    naming the file and the line."""
    if not path.is_file():
        raise UserError("training file not found", file=path)
    seen: dict[str, int] = {}
    out = []
    for number, example in jsonl_models(path, TrainingExample, "one training example"):
        if example.id in seen:
            raise UserError(f"duplicate id '{example.id}' (first at line {seen[example.id]})", file=path, line=number)
        seen[example.id] = number
        out.append((number, example))
    return out


def evaluation_suite_files(suite_paths: Sequence[str | Path], train_path: Path | None = None) -> list[Path]:
    """The suite files under `suite_paths`, less `*.canaries.yaml` and, for folders scanned, anything in the
    training file's own folder (the training set is not an evaluation suite). Files named directly are kept."""
    skip_dir = train_path.resolve().parent if train_path is not None else None
    files = []
    for raw in suite_paths:
        p = Path(raw)
        for file in _expand(p):
            if p.is_dir() and file.name.endswith(SKIPPED_SUFFIXES):
                continue
            if p.is_dir() and skip_dir is not None and file.resolve().is_relative_to(skip_dir):
                continue
            files.append(file)
    if not files:
        raise UserError("no evaluation suite files (*.yaml) found", file=", ".join(str(p) for p in suite_paths))
    return files


def _expand(path: Path) -> list[Path]:
    if not path.is_dir():
        if not path.is_file():
            raise UserError("no such file or directory", file=path)
        return [path]
    try:
        return discover_suite_files([path])
    except UserError:  # a folder with no suite in it (only canaries, say): the caller reports when none is left
        return []


def evaluation_cases(files: Sequence[Path]) -> list[EvalCase]:
    cases = []
    for file in files:
        suite = load_suite(file)
        for case in iter_cases(suite):
            cases.append(EvalCase(suite.name, case.id, file, user_texts(case.messages)))
    return cases


def compare(train: Text, case: Text) -> tuple[str | None, float, float]:
    """(kind or None, word Jaccard, char Jaccard) of one training text against one evaluation text."""
    words = jaccard(train.words, case.words)
    chars = jaccard(train.chars, case.chars)
    if train.normalised == case.normalised:
        return "exact", 1.0, 1.0
    if words >= WORD_THRESHOLD or chars >= CHAR_THRESHOLD:
        return "near", words, chars
    return None, words, chars


def scan(train_path: Path, suite_paths: Sequence[str | Path]) -> Scan:
    """Compare every training example with every evaluation case; one Overlap per (example, case) pair that
    overlaps, the strongest of its text pairs, ordered by training file line then suite and case."""
    train_path = Path(train_path)
    examples = read_training(train_path)
    files = evaluation_suite_files(suite_paths, train_path)
    cases = evaluation_cases(files)
    overlaps: list[Overlap] = []
    best: Overlap | None = None
    for line, example in examples:
        train_texts = user_texts(m.model_dump() for m in example.messages)
        for case in cases:
            found: Overlap | None = None
            for t in train_texts:
                for c in case.texts:
                    kind, words, chars = compare(t, c)
                    candidate = Overlap(
                        example.id,
                        line,
                        case.suite,
                        case.case_id,
                        kind or "none",
                        max(words, chars),
                        words,
                        chars,
                        t.raw,
                        c.raw,
                    )
                    if best is None or candidate.similarity > best.similarity:
                        best = candidate
                    if kind is not None and (found is None or candidate.similarity > found.similarity):
                        found = candidate
            if found is not None:
                overlaps.append(found)
    suites = sorted({c.suite for c in cases})
    return Scan(overlaps, len(examples), len(cases), suites, best)


def find_overlaps(train_path: Path, suite_paths: Sequence[str | Path]) -> list[Overlap]:
    """The overlaps between a training file (JSONL of {id, task, messages, response}) and the evaluation suites
    under `suite_paths`; empty when the training set is clean. A malformed training file or suite is a UserError."""
    return scan(train_path, suite_paths).overlaps


def shorten(value: str, width: int = 100) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
