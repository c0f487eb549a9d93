"""Target names and specs for models known only by name in an imported file."""

from __future__ import annotations

import re
from typing import Any

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
