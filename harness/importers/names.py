"""What every importer records alike: target names and specs for models known only by name, the judge method
of verdicts made elsewhere, and the file read as UTF-8 text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.targets.spec import TargetSpec


def target_name(model: str) -> str:
    """A harness target name for a model name: characters outside [A-Za-z0-9_.-] become "-" (e.g. "org-Model-7B"
    for "org/Model-7B"); the spec keeps the model name as given."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", model).lstrip("-_.")
    return name or "model"


def imported_spec(model: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec a run records for a model that answered elsewhere: provider `imported`, a valid target name, the
    model name as given (so `harness judge` can rebuild it when it re-judges the run)."""
    return TargetSpec(name=target_name(model), provider="imported", model=model, params=params or {}).public()


def imported_method(template: str, mode: str = "rubric") -> dict[str, Any]:
    """The judge method (as runs record it) of verdicts made elsewhere: format "imported", template text unknown."""
    return {
        "mode": mode,
        "format": "imported",
        "samples": 1,
        "per_criterion": False,
        "logprobs": False,
        "aggregate": "mean",
        "template": template,
        "template_sha256": "",
    }


def read_utf8(path: Path) -> tuple[bytes, str]:
    """A file's bytes and its text (UTF-8, a byte-order mark dropped); one UserError naming the file otherwise."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.strerror})", file=path) from None
    try:
        return content, content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"not UTF-8 text (byte {exc.start})", file=path) from None
