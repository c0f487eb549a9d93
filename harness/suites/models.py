"""Pydantic models of the suite format v1, and the resolved case the runner uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from judges.criteria import DEFAULT_CRITERIA, KNOWN_CRITERIA

SLUG = r"^[a-z0-9][a-z0-9_.-]*$"
SEMVER = r"^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$"
CheckKind = Literal[
    "contains",
    "not_contains",
    "regex",
    "exact_match",
    "json",
    "max_words",
    "squad_exact",
    "f1",
    "json_schema",
    "ifeval",
]
CHECK_KINDS: tuple[str, ...] = get_args(CheckKind)
REFERENCE_CHECKS: tuple[str, ...] = ("squad_exact", "f1")  # these compare the response with the case's references
DEFAULT_THRESHOLD = 4


class Check(BaseModel):
    """One deterministic check, written in a suite as a single-key mapping such as `{contains: Paris}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: CheckKind
    arg: str | int | float | bool | dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _from_mapping(cls, value: Any) -> Any:
        if isinstance(value, dict) and "kind" not in value:
            if len(value) != 1:
                raise ValueError(
                    f"a check is one mapping with a single key, one of {', '.join(CHECK_KINDS)}; got {sorted(value)}"
                )
            ((kind, arg),) = value.items()
            if kind not in CHECK_KINDS:
                raise ValueError(f"unknown check '{kind}'; expected one of {', '.join(CHECK_KINDS)}")
            return {"kind": kind, "arg": arg}
        if not isinstance(value, dict):
            raise ValueError(f"a check is a mapping such as {{contains: text}}; got {type(value).__name__}")
        return value

    @model_validator(mode="after")
    def _check_arg(self) -> Check:
        if self.kind in ("contains", "not_contains", "regex", "exact_match"):
            if not isinstance(self.arg, str) or isinstance(self.arg, bool):
                raise ValueError(f"check '{self.kind}' expects a string")
            if self.kind == "regex":
                try:
                    re.compile(self.arg)
                except re.error as exc:
                    raise ValueError(f"check 'regex' has an invalid pattern: {exc}") from None
        elif self.kind == "json":
            if self.arg is not True:
                raise ValueError("check 'json' expects `true`")
        elif self.kind == "max_words" and (isinstance(self.arg, bool) or not isinstance(self.arg, int) or self.arg < 1):
            raise ValueError("check 'max_words' expects a positive integer")
        elif self.kind == "squad_exact" and self.arg is not True:
            raise ValueError("check 'squad_exact' expects `true`")
        elif self.kind == "f1":
            _check_f1_threshold(self.arg)
        elif self.kind == "json_schema":
            _check_json_schema(self.arg)
        elif self.kind == "ifeval":
            _check_ifeval(self.arg)
        return self

    @property
    def label(self) -> str:
        if self.kind in ("json", "squad_exact", "json_schema"):
            return self.kind
        if self.kind == "ifeval":
            assert isinstance(self.arg, dict)
            return f"ifeval: {self.arg['id']}"
        return f"{self.kind}: {self.arg}"


def _check_f1_threshold(arg: object) -> None:
    if isinstance(arg, bool) or not isinstance(arg, int | float) or not 0 < arg <= 1:
        raise ValueError("check 'f1' expects a threshold above 0 and at most 1, such as 0.8")


def _check_json_schema(arg: object) -> None:
    from harness.json_schema import schema_problem

    if not isinstance(arg, dict):
        raise ValueError("check 'json_schema' expects a JSON Schema mapping, such as {type: object}")
    problem = schema_problem(arg)
    if problem is not None:
        raise ValueError(f"check 'json_schema' has an invalid schema {problem}")


def _check_ifeval(arg: object) -> None:
    from harness.ifeval import InstructionError, parse_args

    if not isinstance(arg, dict) or not isinstance(arg.get("id"), str):
        raise ValueError("check 'ifeval' expects {id: INSTRUCTION_ID, kwargs: {...}} (kwargs optional)")
    extra = sorted(set(arg) - {"id", "kwargs"})
    if extra:
        raise ValueError(f"check 'ifeval': {extra[0]!r} is not a known field; expected 'id' and 'kwargs'")
    kwargs = arg.get("kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ValueError("check 'ifeval': 'kwargs' must be a mapping of the instruction's arguments")
    try:
        parse_args(arg["id"], kwargs)
    except InstructionError as exc:
        raise ValueError(f"check 'ifeval': {exc}") from None


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


def _known_criteria(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    unknown = [n for n in names if n not in KNOWN_CRITERIA]
    if unknown:
        raise ValueError(f"unknown criterion {unknown[0]!r}; expected one of {', '.join(sorted(KNOWN_CRITERIA))}")
    if len(set(names)) != len(names):
        raise ValueError("criteria are listed twice")
    return names


class Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    system: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    criteria: list[str] | None = None
    threshold: int | None = Field(default=None, ge=1, le=5)
    tags: list[str] = Field(default_factory=list)

    _criteria = field_validator("criteria")(_known_criteria)


class Case(BaseModel):
    """One case as written in a suite (YAML list item or JSONL line)."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=SLUG)
    prompt: str | None = None
    messages: list[Message] | None = None
    system: str | None = None
    references: list[str] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    criteria: list[str] | None = None
    threshold: int | None = Field(default=None, ge=1, le=5)
    params: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)

    _criteria = field_validator("criteria")(_known_criteria)

    @field_validator("checks")
    @classmethod
    def _references_for_checks(cls, checks: list[Check], info: ValidationInfo) -> list[Check]:
        needing = sorted({c.kind for c in checks if c.kind in REFERENCE_CHECKS})
        references = info.data.get("references")
        if needing and references is not None and not any(r.strip() for r in references):
            named = " and ".join(repr(k) for k in needing)
            what = "checks {} compare" if len(needing) > 1 else "check {} compares"
            raise ValueError(
                f"{what.format(named)} the response with the case's 'references', and this case has none: "
                "add `references: [...]`"
            )
        return checks

    @model_validator(mode="after")
    def _one_input(self) -> Case:
        check_one_input(self.prompt, self.messages, "a case")
        return self


def check_one_input(prompt: str | None, messages: list[Message] | None, what: str) -> None:
    """Exactly one of `prompt` or `messages`, and messages with a user turn (suite cases and judge canaries)."""
    if (prompt is None) == (messages is None):
        raise ValueError(f"{what} needs exactly one of 'prompt' or 'messages'")
    if messages is not None and not any(m.role == "user" for m in messages):
        raise ValueError("'messages' needs at least one message with role 'user'")


class SuiteFile(BaseModel):
    """The top level of a suite YAML file."""

    model_config = ConfigDict(extra="forbid")
    suite: str = Field(pattern=SLUG)
    version: str = Field(pattern=SEMVER)
    description: str = ""
    defaults: Defaults = Field(default_factory=Defaults)
    cases: list[Case] = Field(default_factory=list)
    cases_file: str | None = None

    @model_validator(mode="after")
    def _has_cases(self) -> SuiteFile:
        if not self.cases and self.cases_file is None:
            raise ValueError("a suite needs 'cases' or 'cases_file'")
        return self


@dataclass(frozen=True)
class ResolvedCase:
    """A case with the suite defaults applied: exactly what is sent and judged."""

    suite: str
    id: str
    messages: list[dict[str, str]]
    references: list[str]
    checks: list[Check]
    criteria: list[str]
    threshold: int
    params: dict[str, Any]
    tags: list[str]

    def normalised(self) -> dict[str, Any]:
        """The canonical form hashed into the suite's content hash."""
        return {
            "id": self.id,
            "messages": self.messages,
            "references": self.references,
            "checks": [[c.kind, c.arg] for c in self.checks],
            "criteria": self.criteria,
            "threshold": self.threshold,
            "params": self.params,
            "tags": self.tags,
        }

    @classmethod
    def from_normalised(cls, suite: str, data: dict[str, Any]) -> ResolvedCase:
        """Rebuild a case from the form recorded with a run (for re-judging stored responses)."""
        return cls(
            suite=suite,
            id=data["id"],
            messages=data["messages"],
            references=data["references"],
            checks=[Check(kind=kind, arg=arg) for kind, arg in data["checks"]],
            criteria=data["criteria"],
            threshold=data["threshold"],
            params=data["params"],
            tags=data["tags"],
        )


def resolve(case: Case, suite: str, defaults: Defaults) -> ResolvedCase:
    system = case.system if case.system is not None else defaults.system
    if case.prompt is not None:
        messages = [{"role": "user", "content": case.prompt}]
    else:
        messages = [m.model_dump() for m in case.messages or []]
    if system and (not messages or messages[0]["role"] != "system"):
        messages.insert(0, {"role": "system", "content": system})
    criteria = case.criteria if case.criteria is not None else defaults.criteria
    threshold = case.threshold if case.threshold is not None else defaults.threshold
    tags = list(dict.fromkeys([*defaults.tags, *case.tags]))
    return ResolvedCase(
        suite=suite,
        id=case.id,
        messages=messages,
        references=list(case.references),
        checks=list(case.checks),
        criteria=list(criteria if criteria is not None else DEFAULT_CRITERIA),
        threshold=threshold if threshold is not None else DEFAULT_THRESHOLD,
        params={**defaults.params, **case.params},
        tags=tags,
    )


@dataclass
class Suite:
    """A loaded, fully validated suite. Cases from a `cases_file` are streamed on each iteration."""

    path: Path
    name: str
    version: str
    description: str
    defaults: Defaults
    inline_cases: list[Case]
    cases_file: Path | None
    content_hash: str = ""
    case_count: int = 0
    tags: list[str] = field(default_factory=list)

    def identity(self) -> dict[str, Any]:
        return {
            "suite": self.name,
            "version": self.version,
            "hash": self.content_hash,
            "cases": self.case_count,
            "path": str(self.path),
        }
