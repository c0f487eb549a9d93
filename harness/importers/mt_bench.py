"""Import MT-Bench single-answer grading (FastChat's judgment JSONL) as one judged run of the results store.

Each line is one FastChat judgment of one model's answer to one turn of one question:

  question_id   the MT-Bench question (81, 82, ...)
  model         the model answering: a target of the run
  judge         [judge model, prompt name], e.g. ["gpt-4", "single-v1"] (turn 1) or
                ["gpt-4", "single-v1-multi-turn"] (turn 2)
  user_prompt   the judge prompt as sent (the answer judged is inside it)
  judgment      the judge's reply
  score         1-10 (halves occur), or -1 when the judge gave no parsable score
  turn          1 or 2
Other fields (tstamp, ...) are ignored.

The run (suite "mt_bench") holds:
  * a case per (question_id, turn), case_id "<question_id>-turn<turn>", tags ["turn-<turn>"] (so per-tag figures
    are per-turn figures), criteria ["mt_bench"], the pass threshold (`threshold`, default 8: a score of 8 or more
    passes), "scale": [1, 10], and as its message the turn's user question as found in the judge prompt;
  * a response per (model, case): the model's answer, taken from the judge prompt. Turn 1 (single-v1 prompts): the
    text between "[The Start of Assistant's Answer]" and "[The End of Assistant's Answer]". Turn 2 (multi-turn
    prompts): the last "### Assistant A:" block of the conversation (up to "<|The End of Assistant A's Conversation
    with User|>"). Only the newlines FastChat's templates put around the answer are removed, so the text is the
    answer as the judge saw it; an answer that itself contains these markers would be cut;
  * a judge call per line: judge = the judge model (e.g. "gpt-4"; the run's judge spec lists the prompt names
    under params.prompts), template "mt-bench/<prompt name>", prompt = the
    user_prompt as one user message (FastChat's system message is not in the file), raw = the judgment; the
    template's text is not in the file, so its sha256 is recorded as "";
  * a judgment per line, criterion "mt_bench": the score, the judgment as its rationale; a score of -1 is unscored
    with reason "the judge gave no score (-1)".

The whole file is validated before anything is written: the first bad line is one UserError naming the file, the
line and the field. A second line for the same (model, question_id, turn, judge model) is an error naming both
lines (never "last one wins": a file with repeats is not one grading).
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from harness import __version__
from harness.errors import UserError
from harness.importers.names import imported_method, imported_spec, target_name
from harness.store import Store
from harness.suites.loader import jsonl_models

FORMAT = "mt-bench"
SUITE = "mt_bench"
CRITERION = "mt_bench"
SCALE = (1, 10)
DEFAULT_THRESHOLD = 8
NO_SCORE = -1
Name = Annotated[str, Field(min_length=1)]

_T1_START, _T1_END = "[The Start of Assistant's Answer]", "[The End of Assistant's Answer]"
_T2_START = "<|The Start of Assistant A's Conversation with User|>"
_T2_END = "<|The End of Assistant A's Conversation with User|>"
_T2_ANSWER, _T2_USER = "### Assistant A:", "### User:"


class JudgmentLine(BaseModel):
    """One FastChat single-answer judgment."""

    model_config = ConfigDict(extra="ignore")

    question_id: int | Name
    model: Name
    judge: tuple[Name, Name]
    user_prompt: str
    judgment: str
    score: float
    turn: Literal[1, 2]

    @field_validator("score")
    @classmethod
    def _score(cls, value: float) -> float:
        if value != NO_SCORE and not SCALE[0] <= value <= SCALE[1]:
            raise ValueError(f"must be between {SCALE[0]} and {SCALE[1]}, or {NO_SCORE} (no score)")
        return value

    @property
    def case_id(self) -> str:
        return f"{self.question_id}-turn{self.turn}"


@dataclass(frozen=True)
class Graded:
    """A validated line with what the importer takes from its judge prompt."""

    line: int
    item: JudgmentLine
    answer: str
    question: str | None


def _between(text: str, start: str, end: str) -> str | None:
    i, j = text.find(start), text.rfind(end)
    return text[i + len(start) : j] if i >= 0 and j > i else None


def extract(item: JudgmentLine) -> tuple[str | None, str | None]:
    """(the answer judged, the turn's user question) as found in the judge prompt; None where not found. FastChat's
    templates wrap them as "[Question]\n{q}\n\n[The Start of Assistant's Answer]\n{a}\n[The End of ...]" (turn 1)
    and "### User:\n{q}\n\n### Assistant A:\n{a}\n\n<|The End of ...|>" (turn 2): those newlines are removed."""
    prompt = item.user_prompt
    if item.turn == 1:
        answer = _between(prompt, _T1_START, _T1_END)
        question = _between(prompt, "[Question]", _T1_START)
        if question is not None:  # a reference answer may follow the question
            question = question.removeprefix("\n").split("\n\n[The Start of", 1)[0].removesuffix("\n\n")
        return (None if answer is None else answer.removeprefix("\n").removesuffix("\n"), question)
    conversation = _between(prompt, _T2_START, _T2_END)
    if conversation is None or _T2_ANSWER not in conversation:
        return None, None
    before, _, answer = conversation.rpartition(_T2_ANSWER)
    question = None
    if _T2_USER in before:
        question = before.rpartition(_T2_USER)[2].removeprefix("\n").removesuffix("\n\n")
    return answer.removeprefix("\n").removesuffix("\n\n"), question


def read_mt_bench(path: Path) -> tuple[list[Graded], str]:
    """Read and validate the whole file; return its graded lines and the sha256 of its content."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.strerror})", file=path) from None
    out: list[Graded] = []
    seen: dict[tuple[str, str, int, str], int] = {}
    for number, item in jsonl_models(path, JudgmentLine, "one MT-Bench judgment", content.splitlines()):
        key = (item.model, str(item.question_id), item.turn, item.judge[0])
        if key in seen:
            raise UserError(
                f"a second judgment by '{item.judge[0]}' of '{item.model}' on question {item.question_id} turn "
                f"{item.turn} (first at line {seen[key]})",
                file=path,
                line=number,
                field="turn",
            )
        seen[key] = number
        answer, question = extract(item)
        if answer is None:
            expected = f"'{_T1_START}'" if item.turn == 1 else f"an '{_T2_ANSWER}' block in '{_T2_START}'"
            raise UserError(
                f"cannot find the answer judged: expected {expected} (a FastChat single-answer judge prompt)",
                file=path,
                line=number,
                field="user_prompt",
            )
        out.append(Graded(number, item, answer, question))
    if not out:
        raise UserError("the file holds no MT-Bench judgments", file=path)
    return out, hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class ModelFigures:
    """A model's MT-Bench figures as imported: mean score over scored judgments, overall and per turn."""

    model: str
    n: int
    unscored: int
    mean: float | None
    turns: dict[int, float | None]


@dataclass(frozen=True)
class ImportedMtBench:
    run_id: str
    judgments: int
    cases: int
    models: list[ModelFigures]
    judges: list[str]


def figures(graded: list[Graded]) -> list[ModelFigures]:
    """Per model (in the order first met): mean score, overall and per turn, leaving out unscored (-1) lines."""
    scores: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    unscored: dict[str, int] = defaultdict(int)
    for g in graded:
        if g.item.score == NO_SCORE:
            unscored[g.item.model] += 1
            scores[g.item.model].setdefault(g.item.turn, [])
        else:
            scores[g.item.model][g.item.turn].append(g.item.score)
    out = []
    for model, turns in scores.items():
        every = [s for t in turns.values() for s in t]
        out.append(
            ModelFigures(
                model,
                len(every),
                unscored[model],
                statistics.fmean(every) if every else None,
                {t: statistics.fmean(s) if s else None for t, s in sorted(turns.items())},
            )
        )
    return out


def _case(g: Graded, threshold: int) -> dict[str, Any]:
    item = g.item
    return {
        "id": item.case_id,
        "messages": [{"role": "user", "content": g.question}] if g.question is not None else [],
        "references": [],
        "checks": [],
        "criteria": [CRITERION],
        "threshold": threshold,
        "params": {},
        "tags": [f"turn-{item.turn}"],
        "scale": list(SCALE),
        "question_id": item.question_id,
        "turn": item.turn,
    }


def _judge_call(g: Graded) -> dict[str, Any]:
    item = g.item
    scored = item.score != NO_SCORE
    return {
        "judge": item.judge[0],
        "template": f"mt-bench/{item.judge[1]}",
        "template_sha256": "",
        "prompt": [{"role": "user", "content": item.user_prompt}],
        "raw": item.judgment,
        "status": "scored" if scored else "unscored",
        "reason": None if scored else "the judge gave no score (-1)",
        "judgments": [
            {
                "criterion": CRITERION,
                "score": item.score if scored else None,
                "score_kind": ("int" if item.score.is_integer() else "float") if scored else None,
                "rationale": item.judgment if scored else None,
                "status": "scored" if scored else "unscored",
                "reason": None if scored else "the judge gave no score (-1)",
            }
        ],
    }


def write_mt_bench_run(
    store: Store,
    path: Path,
    graded: list[Graded],
    sha256: str,
    name: str | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> ImportedMtBench:
    """Create a complete judged run from validated lines (from `read_mt_bench`), in one transaction."""
    if not SCALE[0] <= threshold <= SCALE[1]:
        raise UserError(f"the threshold must be between {SCALE[0]} and {SCALE[1]}", field="--threshold")
    cases: dict[str, dict[str, Any]] = {}
    responses: dict[tuple[str, str], dict[str, Any]] = {}
    for g in graded:
        item = g.item
        case = cases.setdefault(item.case_id, {"suite": SUITE, "case_id": item.case_id, "data": _case(g, threshold)})
        if not case["data"]["messages"] and g.question is not None:
            case["data"] = _case(g, threshold)
        response = responses.setdefault(
            (item.model, item.case_id),
            {
                "suite": SUITE,
                "case_id": item.case_id,
                "target": target_name(item.model),
                "sample": 0,
                "text": g.answer,
                "cache_key": f"imported:{FORMAT}:{sha256}:{item.model}:{item.case_id}",
                "judge_calls": [],
            },
        )
        response["judge_calls"].append(_judge_call(g))
    models = list(dict.fromkeys(g.item.model for g in graded))
    judges = list(dict.fromkeys(g.item.judge[0] for g in graded))
    prompts = list(dict.fromkeys(g.item.judge[1] for g in graded))
    config: dict[str, Any] = {
        "imported": {"format": FORMAT, "file": str(path.resolve()), "sha256": sha256, "threshold": threshold},
        "suites": [
            {"suite": SUITE, "version": "imported", "hash": sha256, "cases": len(cases), "path": str(path.resolve())}
        ],
        "targets": [imported_spec(m) for m in models],
        "judge": imported_spec(judges[0], {"prompts": prompts}),
        "judges": [imported_spec(j, {"prompts": prompts}) for j in judges],
        "judge_method": imported_method(", ".join(f"mt-bench/{p}" for p in prompts)),
        "samples": 1,
    }
    run_id = store.create_imported_run(
        name, sha256, __version__, config, cases=list(cases.values()), responses=list(responses.values())
    )
    return ImportedMtBench(run_id, len(graded), len(cases), figures(graded), judges)


def import_mt_bench(
    store: Store, path: str | Path, name: str | None = None, threshold: int = DEFAULT_THRESHOLD
) -> ImportedMtBench:
    """Validate the file, then create one judged run holding its judgments."""
    path = Path(path)
    graded, sha256 = read_mt_bench(path)
    return write_mt_bench_run(store, path, graded, sha256, name, threshold)
