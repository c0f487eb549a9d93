"""Import pairwise judgments made elsewhere (JSONL, one verdict a line) as a run of the results store.

Each line is one JSON object:

  case_id      the item judged (string)
  model_a      the model (or system) that wrote response a
  model_b      the model that wrote response b
  judge        the judge that gave the verdict
  first        "a" or "b": the response shown to the judge first
  winner       "a", "b" or "tie", in the a/b frame whatever the order shown; null when the judge gave no verdict
  gold         optional: the correct answer, "a", "b" or "tie"
  instruction, response_a, response_b   optional texts
  suite        optional, default "imported"
  sample       optional, default 0: which sample of the pair (repeated judging of the same pair)

The whole file is read and validated before anything is written; the first bad line is one UserError naming
the file, the line and the field. Then the run and all its verdicts are written in one transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness import __version__
from harness.errors import UserError
from harness.store import Store
from harness.suites.loader import jsonl_models

FORMAT = "pairwise-jsonl"
Name = Annotated[str, Field(min_length=1)]


class PairwiseLine(BaseModel):
    """One imported pairwise verdict."""

    model_config = ConfigDict(extra="forbid")

    case_id: Name
    model_a: Name
    model_b: Name
    judge: Name
    first: Literal["a", "b"]
    winner: Literal["a", "b", "tie"] | None
    gold: Literal["a", "b", "tie"] | None = None
    instruction: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    suite: Name = "imported"
    sample: Annotated[int, Field(ge=0)] = 0

    def row(self) -> dict[str, Any]:
        """The store's pairwise row for this verdict."""
        return {
            **self.model_dump(),
            "status": "scored" if self.winner is not None else "unscored",
            "reason": None if self.winner is not None else "no verdict in the imported file",
        }


@dataclass(frozen=True)
class ImportedRun:
    run_id: str
    verdicts: int
    pairs: int
    judges: list[str]


def read_pairwise_jsonl(path: Path) -> tuple[list[PairwiseLine], str]:
    """Read and validate the whole file; return its verdicts and the sha256 of its content."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.strerror})", file=path) from None
    verdicts: list[PairwiseLine] = []
    seen: dict[tuple[str, str, int, str, str, str, str], int] = {}
    for number, line in jsonl_models(path, PairwiseLine, "one pairwise verdict", content.splitlines()):
        key = (line.suite, line.case_id, line.sample, line.model_a, line.model_b, line.judge, line.first)
        if key in seen:
            raise UserError(
                f"a second verdict of judge '{line.judge}' on case '{line.case_id}' (sample {line.sample}) with "
                f"'{line.first}' shown first (first at line {seen[key]}); give repeated judgments distinct samples",
                file=path,
                line=number,
                field="first",
            )
        seen[key] = number
        verdicts.append(line)
    if not verdicts:
        raise UserError("the file holds no pairwise verdicts", file=path)
    return verdicts, hashlib.sha256(content).hexdigest()


def import_pairwise_jsonl(store: Store, path: str | Path, name: str | None = None) -> ImportedRun:
    """Validate the file, then create a complete run holding its verdicts (one transaction)."""
    path = Path(path)
    verdicts, sha256 = read_pairwise_jsonl(path)
    return write_pairwise_run(store, path, verdicts, sha256, name)


def write_pairwise_run(
    store: Store, path: Path, verdicts: list[PairwiseLine], sha256: str, name: str | None = None
) -> ImportedRun:
    """Create a complete run holding validated verdicts (from `read_pairwise_jsonl`), in one transaction."""
    config: dict[str, Any] = {
        "imported": {"format": FORMAT, "file": str(path.resolve()), "sha256": sha256},
        "suites": [],
        "targets": [],
        "judge": None,
        "samples": 1,
    }
    run_id = store.create_imported_run(name, sha256, __version__, config, pairwise=[v.row() for v in verdicts])
    pairs = {(v.suite, v.case_id, v.sample, v.model_a, v.model_b) for v in verdicts}
    return ImportedRun(run_id, len(verdicts), len(pairs), sorted({v.judge for v in verdicts}))
