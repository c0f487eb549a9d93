"""Import AlpacaEval annotations (`annotations.json`) as one pairwise run of the results store.

An AlpacaEval annotations file is a JSON array; each element is one judgment of `output_2` (by `generator_2`,
the model evaluated) against `output_1` (by `generator_1`, the baseline) for one `instruction`:

  instruction               the prompt both outputs answer
  output_1, output_2        the two outputs
  generator_1, generator_2  the baseline and the model evaluated
  annotator                 the judge (e.g. weighted_alpaca_eval_gpt4_turbo): the run's judge name
  preference                in [1, 2]: 1 = output_1 (the baseline) wins, 2 = output_2 wins, 1.5 = a draw, between =
                            a graded verdict (the judge's probability that output_2 wins, plus one); null = no verdict
  dataset                   optional: the subset the instruction comes from (helpful_base, koala, ...)
  raw_completion            optional: the judge's reply (kept as JSON text in the pairwise row's `raw`)
Other fields (price_per_example, time_per_example, ...) are ignored.

Several files make one run: every generator_2 against its baseline. Each element becomes one pairwise row:
model_a = generator_1, model_b = generator_2, judge = annotator, suite "alpaca_eval", sample 0, the preference
stored as given, winner "b" / "a" / "tie" for preference above / below / at 1.5 (null: unscored, no winner),
and case_id = the first 16 hex digits of the sha256 of the instruction (UTF-8), so the same instruction is the
same case in every file. The order the judge saw the outputs in is not in the file: `first` is recorded as "a".
reports.pairwise then gives AlpacaEval's figures: win_rate = mean(preference - 1), standard error (ddof=1),
wins / losses / draws = preference above / below / at 1.5.

Every file is read and validated before anything is written; the first problem is one UserError naming the file,
the line (of the element, or of the offending field's key) and the field. Two judgments of the same instruction
by the same annotator for the same baseline and model are an error naming both places.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from harness import __version__
from harness.errors import UserError
from harness.importers.names import imported_method, read_utf8
from harness.store import Store
from harness.suites.loader import validation_error
from harness.targets.spec import TargetSpec

FORMAT = "alpaca-eval"
SUITE = "alpaca_eval"
Name = Annotated[str, Field(min_length=1)]
# AlpacaEval's own pairwise_to_winrate reads a preference of 0 as a draw (older files): kept as 1.5
Preference = Annotated[float, BeforeValidator(lambda v: 1.5 if v == 0 else v), Field(ge=1, le=2, allow_inf_nan=False)]


class Annotation(BaseModel):
    """One AlpacaEval annotation (the fields this importer reads)."""

    model_config = ConfigDict(extra="ignore")

    instruction: str
    output_1: str
    output_2: str
    generator_1: Name
    generator_2: Name
    annotator: Name
    preference: Preference | None
    dataset: str | None = None
    raw_completion: Any = None

    @property
    def case_id(self) -> str:
        return case_id(self.instruction)

    def winner(self) -> str | None:
        if self.preference is None:
            return None
        return "b" if self.preference > 1.5 else "a" if self.preference < 1.5 else "tie"

    def row(self) -> dict[str, Any]:
        """The store's pairwise row for this annotation."""
        raw = self.raw_completion
        return {
            "suite": SUITE,
            "case_id": self.case_id,
            "sample": 0,
            "model_a": self.generator_1,
            "model_b": self.generator_2,
            "judge": self.annotator,
            "first": "a",
            "winner": self.winner(),
            "instruction": self.instruction,
            "response_a": self.output_1,
            "response_b": self.output_2,
            "status": "scored" if self.preference is not None else "unscored",
            "reason": None if self.preference is not None else "no preference in the annotation",
            "raw": raw if raw is None or isinstance(raw, str) else json.dumps(raw, ensure_ascii=False),
            "preference": self.preference,
        }


def case_id(instruction: str) -> str:
    """The case id of an instruction: the first 16 hex digits of its sha256 (UTF-8)."""
    return hashlib.sha256(instruction.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class AnnotationsFile:
    """One validated annotations file: its path, content sha256 and annotations with their line numbers."""

    path: Path
    sha256: str
    annotations: list[tuple[int, Annotation]]


@dataclass(frozen=True)
class ImportedAlpacaEval:
    run_id: str
    annotations: int
    models: list[str]  # generator_2 values, in the order first met
    baselines: list[str]  # generator_1 values
    judges: list[str]  # annotator values


class _Lines:
    """Character offset -> 1-based line number of a text."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def __call__(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)


_WS = re.compile(r"[ \t\n\r]*")


def _skip(text: str, pos: int) -> int:
    """The offset of the first non-whitespace character at or after `pos`."""
    found = _WS.match(text, pos)
    return found.end() if found else pos


def _elements(path: Path, text: str, lines: _Lines) -> list[tuple[int, int, Any]]:
    """The elements of a top-level JSON array: (start offset, end offset, value), with JSON errors located."""
    decoder = json.JSONDecoder()

    def fail(message: str, offset: int) -> UserError:
        return UserError(message, file=path, line=lines(offset))

    pos = _skip(text, 0)
    if not text.startswith("[", pos):
        raise fail("an AlpacaEval annotations file must be a JSON array of annotations", pos)
    pos = _skip(text, pos + 1)
    out: list[tuple[int, int, Any]] = []
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            try:
                value, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise UserError(f"invalid JSON at column {exc.colno}: {exc.msg}", file=path, line=exc.lineno) from None
            out.append((pos, end, value))
            pos = _skip(text, end)
            if text.startswith(",", pos):
                pos = _skip(text, pos + 1)
            elif text.startswith("]", pos):
                pos += 1
                break
            else:
                raise fail("invalid JSON: expected ',' or ']' after an annotation", pos)
    if _skip(text, pos) != len(text):
        raise fail("invalid JSON: extra data after the array", pos)
    return out


def _field_line(text: str, start: int, end: int, field: str, lines: _Lines) -> int:
    """The line of `"field":` within an element (its first line when the key is absent)."""
    found = re.compile(rf'"{re.escape(field)}"\s*:').search(text, start, end)
    return lines(found.start() if found else start)


def read_annotations(path: Path) -> AnnotationsFile:
    """Read and validate one annotations file."""
    content, text = read_utf8(path)
    lines = _Lines(text)
    annotations: list[tuple[int, Annotation]] = []
    for start, end, value in _elements(path, text, lines):
        line = lines(start)
        if not isinstance(value, dict):
            raise UserError("each element of the array must be a JSON object (one annotation)", file=path, line=line)
        try:
            annotations.append((line, Annotation.model_validate(value)))
        except ValidationError as exc:
            loc = exc.errors()[0]["loc"]
            if loc and isinstance(loc[0], str) and loc[0] in value:
                line = _field_line(text, start, end, loc[0], lines)
            raise validation_error(exc, path, base_line=line) from None
    if not annotations:
        raise UserError("the file holds no annotations", file=path)
    return AnnotationsFile(path, hashlib.sha256(content).hexdigest(), annotations)


def read_alpaca_eval(paths: list[Path]) -> list[AnnotationsFile]:
    """Read and validate every file, and check that no judgment is given twice (across files too)."""
    if not paths:
        raise UserError("give at least one annotations file", field="FILE")
    files = [read_annotations(Path(p)) for p in paths]
    seen: dict[tuple[str, str, str, str], tuple[Path, int]] = {}
    for f in files:
        for line, a in f.annotations:
            key = (a.case_id, a.generator_1, a.generator_2, a.annotator)
            if key in seen:
                where, at = seen[key]
                raise UserError(
                    f"a second judgment by '{a.annotator}' of '{a.generator_2}' against '{a.generator_1}' on the "
                    f"same instruction (first at {where}:{at})",
                    file=f.path,
                    line=line,
                    field="instruction",
                )
            seen[key] = (f.path, line)
    return files


def _spec(name: str) -> dict[str, Any]:
    """A target spec (as runs record them) for a model known only by its name (not validated: AlpacaEval names
    may hold characters a harness target name may not)."""
    return TargetSpec.model_construct(name=name, provider="imported", model=name).public()


def write_alpaca_eval_run(store: Store, files: list[AnnotationsFile], name: str | None = None) -> ImportedAlpacaEval:
    """Create a complete pairwise run holding every annotation of the validated files, in one transaction."""
    annotations = [a for f in files for _, a in f.annotations]
    models = list(dict.fromkeys(a.generator_2 for a in annotations))
    baselines = list(dict.fromkeys(a.generator_1 for a in annotations))
    judges = list(dict.fromkeys(a.annotator for a in annotations))
    fingerprint = hashlib.sha256("\n".join(f.sha256 for f in files).encode()).hexdigest()
    names = list(dict.fromkeys([*models, *baselines]))
    config: dict[str, Any] = {
        "imported": {
            "format": FORMAT,
            "files": [{"file": str(f.path.resolve()), "sha256": f.sha256} for f in files],
        },
        "suites": [
            {
                "suite": SUITE,
                "version": "imported",
                "hash": fingerprint,
                "cases": len({a.case_id for a in annotations}),
                "path": str(files[0].path.resolve()),
            }
        ],
        "targets": [_spec(n) for n in names],
        "judge": _spec(judges[0]),
        "judges": [_spec(j) for j in judges],
        "judge_method": imported_method(", ".join(f"alpaca_eval/{j}" for j in judges), mode="pairwise"),
        "samples": 1,
    }
    run_id = store.create_imported_run(name, fingerprint, __version__, config, pairwise=[a.row() for a in annotations])
    return ImportedAlpacaEval(run_id, len(annotations), models, baselines, judges)


def import_alpaca_eval(store: Store, paths: list[Path], name: str | None = None) -> ImportedAlpacaEval:
    """Validate the files, then create one pairwise run holding all their annotations."""
    return write_alpaca_eval_run(store, read_alpaca_eval(paths), name)
