"""Judge canaries: prompts with a known-good and a known-bad response, to check that a judge tells them apart.

A canary set is a YAML file (`*.canaries.yaml`; the shipped one is `prompt_suites/canaries/judge.canaries.yaml`,
`DEFAULT_CANARIES`)::

    canaries: judge-canaries          # slug
    version: 1.0.0                    # semver; bump it with every content change (`harness suites lock`)
    description: ...
    defaults: {system: ..., criteria: [...]}    # optional, as a suite's defaults
    items:
      - id: capital-canada-wrong-fact # slug, unique in the file
        kind: wrong_fact              # one of CANARY_KINDS: how `bad` fails
        criteria: [preciseness]       # where `good` must score above `bad` (item's, else defaults.criteria)
        system: ...                   # optional, overrides defaults.system
        prompt: ...                   # or messages: [{role, content}, ...], exactly as a suite case
        references: [...]             # optional human references
        good: ...                     # a correct, instruction-following response
        bad: ...                      # clearly worse on `criteria`, otherwise plausible

The kinds (`CANARY_KINDS`) say how `bad` fails: `wrong_fact` (a confidently wrong answer), `hallucinated_detail`
(the right answer plus invented false specifics), `ignored_format` (right content, wrong form), `ignored_length`
(far over the length allowed), `ignored_constraint` (an explicit rule broken), `wrong_language`, `refusal` (of a
harmless request), `off_topic` (an answer to something else), `truncated` (cut off mid-answer).

An item's `system`/`prompt`/`messages` become its messages exactly as a suite case's do
(`harness.suites.models.resolve`), so a judge sees a canary as it sees any case. The set's content hash is the
sha256 of its resolved items, one canonical JSON line each, like a suite's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from harness.errors import UserError
from harness.suites.loader import Loc, is_canary_file, load_yaml_model
from harness.suites.models import SEMVER, SLUG, Case, Defaults, Message, check_one_input, resolve
from judges.criteria import KNOWN_CRITERIA
from judges.rubric import JudgeRequest

CanaryKind = Literal[
    "wrong_fact",
    "hallucinated_detail",
    "ignored_format",
    "ignored_length",
    "ignored_constraint",
    "wrong_language",
    "refusal",
    "off_topic",
    "truncated",
]
CANARY_KINDS: tuple[str, ...] = get_args(CanaryKind)
Side = Literal["good", "bad"]
SIDES: tuple[Side, Side] = ("good", "bad")
DEFAULT_CANARIES: Path = Path(__file__).resolve().parents[1] / "prompt_suites/canaries/judge.canaries.yaml"


def _known_criteria(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    if not names:
        raise ValueError("name at least one criterion")
    unknown = [n for n in names if n not in KNOWN_CRITERIA]
    if unknown:
        raise ValueError(f"unknown criterion {unknown[0]!r}; expected one of {', '.join(sorted(KNOWN_CRITERIA))}")
    if len(set(names)) != len(names):
        raise ValueError("criteria are listed twice")
    return names


class CanaryDefaults(BaseModel):
    """What every item inherits unless it sets its own."""

    model_config = ConfigDict(extra="forbid")
    system: str | None = None
    criteria: list[str] | None = None

    _criteria = field_validator("criteria")(_known_criteria)


class CanaryEntry(BaseModel):
    """One item as written in the file, before the defaults are applied."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=SLUG)
    kind: CanaryKind
    criteria: list[str] | None = None
    system: str | None = None
    prompt: str | None = None
    messages: list[Message] | None = None
    references: list[str] = Field(default_factory=list)
    good: str
    bad: str

    _criteria = field_validator("criteria")(_known_criteria)

    @field_validator("good", "bad")
    @classmethod
    def _not_blank(cls, text: str, info: ValidationInfo) -> str:
        if not text.strip():
            raise ValueError(f"the {info.field_name} response is empty")
        if info.field_name == "bad":
            good = info.data.get("good")
            if isinstance(good, str) and good.strip() == text.strip():
                raise ValueError("'bad' is the same text as 'good'; a canary needs two different responses")
        return text

    @model_validator(mode="after")
    def _one_input(self) -> CanaryEntry:
        check_one_input(self.prompt, self.messages, "an item")
        return self


class CanaryFile(BaseModel):
    """The top level of a canary YAML file."""

    model_config = ConfigDict(extra="forbid")
    canaries: str = Field(pattern=SLUG)
    version: str = Field(pattern=SEMVER)
    description: str = ""
    defaults: CanaryDefaults = Field(default_factory=CanaryDefaults)
    items: list[CanaryEntry] = Field(min_length=1)


class CanaryItem(BaseModel):
    """One canary with the defaults applied: the messages the judge sees, and the two responses it scores."""

    model_config = ConfigDict(frozen=True)
    id: str
    kind: CanaryKind
    criteria: list[str]
    messages: list[dict[str, str]]  # {role, content}; the system message first when there is one
    references: list[str]
    good: str
    bad: str

    def response(self, side: Side) -> str:
        return self.good if side == "good" else self.bad

    def request(self, side: Side) -> JudgeRequest:
        """What the judge is asked for one side of this canary, on all of its criteria."""
        return JudgeRequest(
            messages=self.messages, references=self.references, response=self.response(side), criteria=self.criteria
        )

    def normalised(self) -> dict[str, Any]:
        """The canonical form hashed into the set's content hash."""
        return {
            "id": self.id,
            "kind": self.kind,
            "criteria": self.criteria,
            "messages": self.messages,
            "references": self.references,
            "good": self.good,
            "bad": self.bad,
        }


class CanarySet(BaseModel):
    """A loaded, validated canary set."""

    model_config = ConfigDict(frozen=True)
    path: Path
    name: str
    version: str
    description: str
    items: list[CanaryItem]
    content_hash: str

    def identity(self) -> dict[str, Any]:
        """What a run records about the set (as `Suite.identity` does for a suite)."""
        return {
            "canaries": self.name,
            "version": self.version,
            "hash": self.content_hash,
            "items": len(self.items),
            "path": str(self.path),
        }

    def item(self, canary_id: str) -> CanaryItem:
        for it in self.items:
            if it.id == canary_id:
                return it
        raise KeyError(canary_id)


def _resolve(entry: CanaryEntry, name: str, defaults: CanaryDefaults) -> CanaryItem:
    criteria = entry.criteria if entry.criteria is not None else defaults.criteria
    assert criteria is not None  # checked by the loader
    case = Case(
        id=entry.id, prompt=entry.prompt, messages=entry.messages, system=entry.system, references=entry.references
    )
    resolved = resolve(case, name, Defaults(system=defaults.system))
    return CanaryItem(
        id=entry.id,
        kind=entry.kind,
        criteria=list(criteria),
        messages=resolved.messages,
        references=resolved.references,
        good=entry.good,
        bad=entry.bad,
    )


def load_canaries(path: Path) -> CanarySet:
    """Load and validate a canary file; any problem is one UserError naming the file, the line and the field."""
    path = Path(path)
    parsed, lines = load_yaml_model(
        path, CanaryFile, "a canary file must be a YAML mapping with 'canaries', 'version' and 'items'"
    )

    def line(*loc: str | int) -> int | None:
        key: Loc = tuple(loc)
        while key and key not in lines:
            key = key[:-1]
        return lines.get(key)

    seen: dict[str, int | None] = {}
    items: list[CanaryItem] = []
    digest = hashlib.sha256()
    for i, entry in enumerate(parsed.items):
        if entry.id in seen:
            raise UserError(
                f"duplicate canary id '{entry.id}' (first at line {seen[entry.id]})",
                file=path,
                line=line("items", i, "id"),
                field=f"items[{i}].id",
            )
        seen[entry.id] = line("items", i, "id")
        if entry.criteria is None and parsed.defaults.criteria is None:
            raise UserError(
                "is required (on the item or in defaults.criteria): name the criteria on which 'good' must "
                f"score above 'bad', from {', '.join(sorted(KNOWN_CRITERIA))}",
                file=path,
                line=line("items", i),
                field=f"items[{i}].criteria",
            )
        item = _resolve(entry, parsed.canaries, parsed.defaults)
        items.append(item)
        digest.update(orjson.dumps(item.normalised(), option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
    return CanarySet(
        path=path,
        name=parsed.canaries,
        version=parsed.version,
        description=parsed.description,
        items=items,
        content_hash=digest.hexdigest(),
    )


def discover_canary_files(paths: list[str | Path] | tuple[str | Path, ...]) -> list[Path]:
    """The canary files (`*.canaries.yaml`) among `paths`: folders expanded (sorted), files taken when their name
    says they are canary sets; other paths are left to the suite discovery."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.is_file() and is_canary_file(f)))
        elif is_canary_file(p):
            if not p.is_file():
                raise UserError("no such file or directory", file=p)
            found.append(p)
    return found
