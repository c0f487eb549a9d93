"""Import a promptfoo eval's results (`promptfoo eval -o results.json`) as one run of the results store, so a team
moving from promptfoo keeps its history and gets this harness's statistics (and judges) on it.

The file is {evalId, results: {version, prompts, results: [...], stats}, config, metadata}; results.version 2 and
later are read. Each element of results.results is one (prompt, test, provider) outcome:

  provider         {id, label}: the provider, e.g. "openai:chat:gpt-4o-mini" labelled "mini"
  prompt           {raw, label}: the prompt as rendered with the test's vars, and its label; promptId names the
                   prompt template (the same for every provider)
  testIdx, vars    the test's index and variables; testCase.description its description
  response         {output, tokenUsage {prompt, completion}, latencyMs, finishReason, cost, error}
  success, score   promptfoo's verdict and its weighted assertion score (0-1)
  namedScores      {metric: score}: the assertions' `metric:` names with their scores
  gradingResult    {pass, score, reason, componentResults: [{pass, score, reason, assertion {type, value}}]}
  failureReason    0 none, 1 an assertion failed, 2 an error (version 2 files have none: there an error is a result
                   with `error` and no gradingResult)
  latencyMs, cost  the call's latency and promptfoo's cost estimate (USD)

The run (one suite "promptfoo") holds:
  * a target per provider, named by its label (else its id) with every character outside [A-Za-z0-9_.-] replaced
    by "-"; the spec keeps the provider id as its model and the label in params;
  * a case per (prompt, test): case_id "t<testIdx>-<prompt label>", messages the rendered prompt (a chat prompt's
    messages, else one user message; the first provider's rendering where they differ), tags
    ["prompt:<prompt label>"], the default rubric criteria and threshold (so `harness judge` judges them), and
    "promptfoo": {prompt_id, prompt_label, test_index, description, vars};
  * a response per (provider, case): the output as text (a non-text output as JSON), latency_ms, tokens in and out,
    finish_reason; an error result is a response with status "error" and promptfoo's error message (no checks);
    the same (provider, prompt, test) again (--repeat) is the next sample;
  * checks whose verdict is promptfoo's `success`: one check per assertion, {"check": "promptfoo:<type>: <value>",
    "passed", "detail": its reason}, when the assertions agree with `success` (every one passes exactly when the
    test passes: promptfoo's default); otherwise (a test `threshold`, weights, assert-sets, a test without
    assertions) one check "promptfoo:test" with passed = success and a detail listing each assertion's outcome;
  * promptfoo's scores as judgments of the judge "promptfoo", on promptfoo's own scale (usually 0-1): criterion
    "promptfoo:score" for `score`, and a criterion per named score (namedScores) with its value. They are scores
    beside the verdict, not part of it: the run's `judge` is null, so the report's pass, fail and error counts per
    target are promptfoo's passes, failures and errors;
  * in config.imported: the file, its sha256, promptfoo's version, evalId, promptfoo's stats (successes, failures,
    errors), and per target promptfoo's cost total (USD; the report's cost comes from token prices, which an
    import does not set).

The whole file is validated before anything is written; the first problem is one UserError naming the file, the
line (of the offending field) and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from harness import __version__
from harness.errors import UserError
from harness.importers.messages import prompt_messages
from harness.importers.names import imported_method, imported_spec, read_utf8, target_name
from harness.store import Store
from harness.suites.models import DEFAULT_THRESHOLD
from harness.targets.spec import TargetSpec
from judges.criteria import DEFAULT_CRITERIA

FORMAT = "promptfoo"
SUITE = "promptfoo"
JUDGE = "promptfoo"
SCORE = "promptfoo:score"
ERROR = 2  # promptfoo's ResultFailureReason.ERROR
Number = Annotated[float, Field(allow_inf_nan=False)]


def _provider(value: Any) -> Any:
    return {"id": value} if isinstance(value, str) else value


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Provider(_Model):
    id: str = Field(min_length=1)
    label: str | None = None

    @property
    def key(self) -> str:
        return self.label or self.id


class Prompt(_Model):
    raw: str
    label: str | None = None


class Assertion(_Model):
    type: str = "assertion"
    value: Any = None


class Component(_Model):
    passed: bool = Field(alias="pass")
    score: Number | None = None
    reason: str | None = None
    assertion: Assertion | None = None


class Grading(_Model):
    passed: bool = Field(alias="pass")
    score: Number | None = None
    reason: str | None = None
    componentResults: list[Component] | None = None


class Tokens(_Model):
    prompt: int | None = None
    completion: int | None = None


class Response(_Model):
    output: Any = None
    error: str | None = None
    tokenUsage: Tokens | None = None
    latencyMs: Number | None = None
    finishReason: str | None = None


class TestCase(_Model):
    description: str | None = None


class Result(_Model):
    """One element of results.results (the fields this importer reads)."""

    provider: Annotated[Provider, BeforeValidator(_provider)]
    prompt: Prompt
    promptId: str | None = None
    testIdx: int | None = Field(default=None, ge=0)
    vars: dict[str, Any] | None = None
    response: Response | None = None
    success: bool
    score: Number | None = None
    namedScores: dict[str, Number | None] = Field(default_factory=dict)
    latencyMs: Number | None = None
    cost: Number | None = None
    error: str | None = None
    failureReason: int | None = None
    gradingResult: Grading | None = None
    testCase: TestCase | None = None

    @property
    def is_error(self) -> bool:
        if self.failureReason is not None:
            return self.failureReason == ERROR
        return (
            self.gradingResult is None and not self.success and bool(self.error or (self.response or Response()).error)
        )

    @property
    def prompt_key(self) -> str:
        return self.promptId or self.prompt.label or self.prompt.raw

    @property
    def test_key(self) -> str:
        return str(self.testIdx) if self.testIdx is not None else json.dumps(self.vars or {}, sort_keys=True)


@dataclass(frozen=True)
class ParsedPromptfoo:
    """A validated results file: its results in file order, and what describes the eval as a whole."""

    path: Path
    sha256: str
    version: int
    results: list[tuple[int, Result]]  # (line of the element, result)
    prompt_order: list[str]  # prompt ids in results.prompts order
    stats: dict[str, Any]
    eval_id: str | None
    promptfoo_version: str | None


@dataclass(frozen=True)
class ImportedPromptfoo:
    run_id: str
    results: int
    cases: int
    targets: list[dict[str, Any]]  # per target: provider, label, passed, failed, errors, cost_usd
    stats: dict[str, Any]  # promptfoo's own totals


_WS = re.compile(r"[ \t\n\r]*")


def _skip(text: str, pos: int) -> int:
    found = _WS.match(text, pos)
    return found.end() if found else pos


def locate(text: str, path: tuple[str | int, ...]) -> int:
    """The offset in valid JSON `text` of the value at `path` (keys and indexes), or of the deepest part of it that
    exists: for naming the line of a field that fails validation."""
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)
    for step in path:
        p = _skip(text, pos + 1)
        if isinstance(step, str) and text.startswith("{", pos):
            while text.startswith('"', p):
                key, p = decoder.raw_decode(text, p)
                p = _skip(text, _skip(text, p) + 1)  # past ':'
                if key == step:
                    break
                p = _skip(text, decoder.raw_decode(text, p)[1])
                p = _skip(text, p + 1) if text.startswith(",", p) else p
            else:
                return pos
        elif isinstance(step, int) and text.startswith("[", pos):
            for _ in range(step):
                if text.startswith("]", p):
                    return pos
                p = _skip(text, decoder.raw_decode(text, p)[1])
                p = _skip(text, p + 1) if text.startswith(",", p) else p
        else:
            return pos
        pos = p
    return pos


def _line(text: str, path: tuple[str | int, ...]) -> int:
    return text.count("\n", 0, locate(text, path)) + 1


def _field(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_promptfoo(path: Path) -> ParsedPromptfoo:
    """Read and validate a `promptfoo eval -o results.json` file."""
    content, text = read_utf8(path)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"invalid JSON at column {exc.colno}: {exc.msg}", file=path, line=exc.lineno) from None
    block = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(block, dict) or not isinstance(block.get("results"), list):
        raise UserError(
            "not promptfoo eval output: expected an object whose `results` holds a `results` list "
            "(promptfoo eval -o results.json)",
            file=path,
            line=_line(text, ("results",)) if isinstance(doc, dict) else 1,
            field="results.results",
        )
    version = block.get("version")
    if not isinstance(version, int) or version < 2:
        raise UserError(
            f"unsupported promptfoo results version {version!r}: expected 2 or later (promptfoo 0.30 and later)",
            file=path,
            line=_line(text, ("results", "version")),
            field="results.version",
        )
    results: list[tuple[int, Result]] = []
    for i, item in enumerate(block["results"]):
        where: tuple[str | int, ...] = ("results", "results", i)
        try:
            result = Result.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            msg = "is required but missing" if err["type"] == "missing" else str(err["msg"])
            located = where + (loc if err["type"] != "missing" else loc[:-1])
            raise UserError(msg, file=path, line=_line(text, located), field=_field(where + loc)) from None
        if SCORE in result.namedScores:
            raise UserError(
                f"a named score may not be called '{SCORE}': the importer records promptfoo's score under that name",
                file=path,
                line=_line(text, (*where, "namedScores", SCORE)),
                field=_field((*where, "namedScores")),
            )
        results.append((_line(text, where), result))
    if not results:
        raise UserError("the file holds no results", file=path, line=_line(text, ("results", "results")))
    prompts, meta, stats = block.get("prompts"), doc.get("metadata"), block.get("stats")
    prompts = prompts if isinstance(prompts, list) else []
    meta = meta if isinstance(meta, dict) else {}
    stats = stats if isinstance(stats, dict) else {}
    order = [p["id"] for p in prompts if isinstance(p, dict) and isinstance(p.get("id"), str)]
    return ParsedPromptfoo(
        path,
        hashlib.sha256(content).hexdigest(),
        version,
        results,
        list(dict.fromkeys(order)),
        {k: stats[k] for k in ("successes", "failures", "errors") if k in stats},
        doc.get("evalId") if isinstance(doc.get("evalId"), str) else None,
        meta.get("promptfooVersion") if isinstance(meta.get("promptfooVersion"), str) else None,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40].rstrip("-.") or "prompt"


def _prompt_slugs(results: list[Result]) -> dict[str, str]:
    """A short, unique name per prompt: its label as a slug (with a hash of its key where two labels collide)."""
    first = {r.prompt_key: r.prompt.label or r.prompt.raw for r in reversed(results)}
    slugs = {key: _slug(label) for key, label in first.items()}
    counts = Counter(slugs.values())
    return {
        key: slug if counts[slug] == 1 else f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"
        for key, slug in slugs.items()
    }


def _text(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _checks(result: Result) -> list[dict[str, Any]]:
    """Checks whose verdict (all passed) is promptfoo's `success`; see the module docstring."""
    grading = result.gradingResult
    components = (grading.componentResults if grading else None) or []

    def label(c: Component) -> str:
        a = c.assertion or Assertion()
        return f"promptfoo:{a.type}" + ("" if a.value is None else f": {_text(a.value)}")

    if components and all(c.passed for c in components) == result.success:
        return [{"check": label(c), "passed": c.passed, "detail": c.reason or ""} for c in components]
    outcomes = "; ".join(f"{label(c)} {'passed' if c.passed else 'failed'}" for c in components)
    reason = (grading.reason if grading else None) or ("passed" if result.success else "failed")
    detail = f"{reason} (score {result.score})" + (f"; {outcomes}" if outcomes else "; no assertions")
    return [{"check": "promptfoo:test", "passed": result.success, "detail": detail}]


def _judge_calls(result: Result) -> list[dict[str, Any]]:
    scores = ([(SCORE, result.score)] if result.score is not None else []) + [
        (name, value) for name, value in result.namedScores.items() if value is not None
    ]
    if not scores:
        return []
    reason = result.gradingResult.reason if result.gradingResult else None
    judgments = [
        {
            "criterion": name,
            "score": float(value),
            "score_kind": "int" if float(value).is_integer() else "float",
            "rationale": reason,
            "status": "scored",
            "reason": None,
        }
        for name, value in scores
    ]
    call: dict[str, Any] = {
        "judge": JUDGE,
        "template": "promptfoo/assertions",
        "template_sha256": "",
        "prompt": [],
        "raw": reason,
    }
    return [{**call, "status": "scored", "reason": None, "judgments": judgments}]


def _response(result: Result, case_id: str, target: str, sample: int, sha256: str) -> dict[str, Any]:
    response = result.response or Response()
    output = response.output
    tokens = response.tokenUsage or Tokens()
    error = result.is_error
    return {
        "suite": SUITE,
        "case_id": case_id,
        "target": target,
        "sample": sample,
        "status": "error" if error else "ok",
        "text": None if output is None and error else (output if isinstance(output, str) else json.dumps(output)),
        "error": (result.error or response.error or "error") if error else None,
        "latency_ms": result.latencyMs if result.latencyMs is not None else response.latencyMs,
        "tokens_in": tokens.prompt,
        "tokens_out": tokens.completion,
        "finish_reason": response.finishReason,
        "cache_key": f"imported:{FORMAT}:{sha256}:{target}:{case_id}:{sample}",
        "checks": [] if error else _checks(result),
        "judge_calls": [] if error else _judge_calls(result),
    }


def _case(result: Result, case_id: str, slug: str) -> dict[str, Any]:
    return {
        "id": case_id,
        "messages": prompt_messages(result.prompt.raw),
        "references": [],
        "checks": [],
        "criteria": list(DEFAULT_CRITERIA),
        "threshold": DEFAULT_THRESHOLD,
        "params": {},
        "tags": [f"prompt:{slug}"],
        "promptfoo": {
            "prompt_id": result.promptId,
            "prompt_label": result.prompt.label,
            "test_index": result.testIdx,
            "description": result.testCase.description if result.testCase else None,
            "vars": result.vars or {},
        },
    }


def _targets(parsed: ParsedPromptfoo) -> dict[str, tuple[str, Provider]]:
    """Provider key (label, else id) -> (target name, provider); two keys making one name are an error."""
    out: dict[str, tuple[str, Provider]] = {}
    names: dict[str, str] = {}
    for line, r in parsed.results:
        key = r.provider.key
        if key in out:
            continue
        name = target_name(key)
        if name in names:
            raise UserError(
                f"providers '{names[name]}' and '{key}' make the same target name '{name}': label them apart",
                file=parsed.path,
                line=line,
                field="provider.label",
            )
        names[name] = key
        out[key] = (name, r.provider)
    return out


def write_promptfoo_run(store: Store, parsed: ParsedPromptfoo, name: str | None = None) -> ImportedPromptfoo:
    """Create a complete run from a validated results file (from `read_promptfoo`), in one transaction."""
    results = [r for _, r in parsed.results]
    targets = _targets(parsed)
    slugs = _prompt_slugs(results)
    order = {key: i for i, key in enumerate(parsed.prompt_order)}

    def sort_key(item: tuple[int, Result]) -> tuple[int, int, str, int]:
        i, r = item
        return (r.testIdx if r.testIdx is not None else 1 << 30, order.get(r.prompt_key, len(order)), r.test_key, i)

    cases: dict[tuple[str, str], dict[str, Any]] = {}
    responses: list[dict[str, Any]] = []
    samples: Counter[tuple[str, str, str]] = Counter()
    tally: dict[str, Counter[str]] = defaultdict(Counter)
    cost: dict[str, float] = defaultdict(float)
    for _, r in sorted(enumerate(results), key=sort_key):
        slug = slugs[r.prompt_key]
        test = f"t{r.testIdx}" if r.testIdx is not None else f"v{hashlib.sha256(r.test_key.encode()).hexdigest()[:8]}"
        case_id = f"{test}-{slug}"
        cases.setdefault(
            (r.prompt_key, r.test_key), {"suite": SUITE, "case_id": case_id, "data": _case(r, case_id, slug)}
        )
        target = targets[r.provider.key][0]
        sample = samples[(target, r.prompt_key, r.test_key)]
        samples[(target, r.prompt_key, r.test_key)] += 1
        responses.append(_response(r, case_id, target, sample, parsed.sha256))
        tally[target]["errors" if r.is_error else "passed" if r.success else "failed"] += 1
        cost[target] += r.cost or 0.0
    figures = [
        {
            "target": target,
            "provider": provider.id,
            "label": provider.label,
            "passed": tally[target]["passed"],
            "failed": tally[target]["failed"],
            "errors": tally[target]["errors"],
            "cost_usd": round(cost[target], 10),
        }
        for target, provider in targets.values()
    ]
    config: dict[str, Any] = {
        "imported": {
            "format": FORMAT,
            "file": str(parsed.path.resolve()),
            "sha256": parsed.sha256,
            "version": parsed.version,
            "eval_id": parsed.eval_id,
            "promptfoo_version": parsed.promptfoo_version,
            "stats": parsed.stats,
            "providers": figures,
        },
        "suites": [
            {
                "suite": SUITE,
                "version": "imported",
                "hash": parsed.sha256,
                "cases": len(cases),
                "path": str(parsed.path.resolve()),
            }
        ],
        "targets": [
            TargetSpec(
                name=target, provider="imported", model=p.id, params={"label": p.label} if p.label else {}
            ).public()
            for target, p in targets.values()
        ],
        "judge": None,  # the verdicts are promptfoo's (checks); its scores are judgments of the judge "promptfoo"
        "judges": [imported_spec(JUDGE)],
        "judge_method": imported_method("promptfoo/assertions"),
        "samples": max(samples.values()),
        "name": name,
    }
    run_id = store.create_imported_run(
        name, parsed.sha256, __version__, config, cases=list(cases.values()), responses=responses
    )
    return ImportedPromptfoo(run_id, len(responses), len(cases), figures, parsed.stats)


def import_promptfoo(store: Store, path: str | Path, name: str | None = None) -> ImportedPromptfoo:
    """Validate the file, then create one run holding its results."""
    return write_promptfoo_run(store, read_promptfoo(Path(path)), name)
