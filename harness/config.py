"""harness.yaml: named targets and defaults, read top to bottom.

targets:
  gpt4o:
    provider: openai
    model: gpt-4o-2024-11-20
    api_key_env: OPENAI_API_KEY
    params: {temperature: 0}
    concurrency: 16
  local:
    provider: openai
    model: tiny
    base_url: http://127.0.0.1:8000/v1
judge: gpt4o                # default --judge
judge_format: json_schema   # json_schema | regex (vLLM structured outputs) | json_object | none
db: .harness/results.db
gate:                       # conditions of `harness gate` (flags override; see reports/gate.py)
  baseline: baselines/nightly.json
  min_pass_rate: 0.8
  min_mean: {preciseness: 3.5}
  max_regression: {"*": 0.2}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import UserError
from harness.suites.loader import Loc, load_yaml_model, validation_error
from harness.targets import PROVIDERS
from harness.targets.spec import TargetSpec
from judges.rubric import JudgeFormat

CONFIG_NAME = "harness.yaml"


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)  # USD per 1M input tokens
    output: float = Field(ge=0)  # USD per 1M output tokens


class TargetEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    provider: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    concurrency: int | None = Field(default=None, ge=1, le=4096)
    timeout: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    breaker_failures: int | None = Field(default=None, ge=1)
    breaker_window: float | None = Field(default=None, gt=0)
    breaker_cooldown: float | None = Field(default=None, gt=0)
    price: Price | None = None
    gpu_hour: float | None = Field(default=None, ge=0)


Share = Annotated[float, Field(ge=0, le=1)]


class GateSettings(BaseModel):
    """`gate:` in harness.yaml: the conditions of `harness gate` (flags override them; see reports/gate.py)."""

    model_config = ConfigDict(extra="forbid")
    baseline: str | None = None  # a run id or name, or a baseline file written by `harness baseline export`
    targets: list[str] | None = None
    min_pass_rate: Share | None = None
    min_pass_rate_suite: dict[str, Share] = Field(default_factory=dict)
    min_pass_rate_tag: dict[str, Share] = Field(default_factory=dict)
    min_mean: dict[str, float] = Field(default_factory=dict)
    max_regression: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    max_pass_rate_drop: Share | None = None
    min_check_pass_rate: Share | None = None
    min_check_pass_rate_suite: dict[str, Share] = Field(default_factory=dict)
    min_canary_accuracy: Share | None = None
    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    max_unscored: Share | None = 0.1
    max_errors: Share | None = 0.1
    min_availability: Share | None = 0.95


class ConfigFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targets: dict[str, TargetEntry] = Field(default_factory=dict)
    gate: GateSettings = Field(default_factory=GateSettings)
    judge: str | None = None
    judge_format: JudgeFormat | None = None
    db: str | None = None
    prices: dict[str, Price] = Field(default_factory=dict)  # per model id, over the shipped default table


class Config:
    def __init__(
        self, path: Path | None = None, data: ConfigFile | None = None, lines: dict[Loc, int] | None = None
    ) -> None:
        self.path = path
        self.data = data or ConfigFile()
        self.targets: dict[str, TargetSpec] = {}
        for name, entry in self.data.targets.items():
            if entry.provider not in PROVIDERS:
                raise UserError(
                    f"unknown provider '{entry.provider}'; expected one of {', '.join(PROVIDERS)}",
                    file=path,
                    line=(lines or {}).get(("targets", name, "provider")),
                    field=f"targets.{name}.provider",
                )
            fields = {k: v for k, v in entry.model_dump().items() if v is not None}
            try:
                self.targets[name] = TargetSpec(name=name, **fields)
            except ValidationError as exc:
                raise validation_error(exc, path or Path(CONFIG_NAME), lines, prefix=("targets", name)) from None


def load_config(path: str | Path | None) -> Config:
    """Read harness.yaml (the given path, or ./harness.yaml when present); no file means no named targets."""
    if path is None:
        candidate = Path(CONFIG_NAME)
        if not candidate.is_file():
            return Config()
        path = candidate
    path = Path(path)
    if not path.is_file():
        raise UserError("config file not found", file=path)
    parsed, lines = load_yaml_model(
        path, ConfigFile, "harness.yaml must be a mapping (targets, judge, judge_format, db)", empty_ok=True
    )
    return Config(path, parsed, lines)
