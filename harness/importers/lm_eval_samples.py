"""Import lm-evaluation-harness samples files as one run of the results store: lm-eval's generations, this
harness's judges (`harness judge RUN --judge SPEC` scores them like any run's responses).

`lm_eval --log_samples` (or `--predict_only`) writes, per model and task, `samples_<task>_<timestamp>.jsonl`
beside `results_<timestamp>.json`. Each line is one document of the task under one filter of it:

  doc_id          the document's index in the task's split
  doc             the document itself (not stored: its doc_hash is)
  target          the gold answer as the task renders it (doc_to_target)
  arguments       the request: gen_args_0.arg_0 is the prompt (for a chat-templated request the JSON text of its
                  messages, for any other the prompt text), arg_1 the generation kwargs
  resps           [[generation, ...]]: the model's text (several with the task's `repeats`)
  filtered_resps  [answer]: what the filter kept (e.g. the number taken from a chain of thought)
  filter          the filter's name ("none" when the task defines no filter_list)
  metrics         the metric names; each is also a key of the line holding its value (--predict_only:
                  "bypass", null)
  doc_hash, prompt_hash, target_hash
A task with several filters has one line per document and filter; they make one response.

The run holds:
  * a suite per task (the <task> of the file name), a case per (task, doc_id): case_id the doc_id, tags [task],
    messages: the chat messages for a chat-templated request, else the prompt text as one user message (a
    template rendered to text by lm-eval itself, e.g. an `hf` model's, stays text: it is not parsed back),
    references [target] (a list target: each item), criteria the default rubric ones with the default threshold
    (so `harness judge` judges them), and "lm_eval": {task, doc_id, doc_hash, prompt_hash, target_hash}. Two
    models' lines for the same document make one case (its messages from the first file); documents of the same
    task and doc_id with different doc_hash are an error;
  * a response per (model, case, generation): text = the generation as lm-eval received it (`resps`, before any
    filter), sample = its index among the task's repeats. Not `filtered_resps`: a filter keeps the extracted answer
    (e.g. "42", or "[invalid]"), while a judge must read what the model wrote; the filtered answer is shown in
    each check's detail;
  * lm-eval's per-document metrics, decided per (task, metric, filter) over all lines: a metric whose every value
    is 0, 1 or a boolean is binary and becomes a check per response, {"check": "lm-eval:<metric>,<filter>",
    "passed": value == 1, "detail": ...} (named as lm-eval's results keys), so the report's pass rate is
    lm-eval's accuracy; any other number becomes a judgment of the judge "lm-eval", criterion
    "lm-eval:<metric>,<filter>", on the metric's own scale. Values that are not numbers (e.g. the pairs a corpus
    metric such as bleu aggregates) are not imported: their names are listed in the run's config. Null and NaN
    values (--predict_only's "bypass") are left out. With `repeats`, a document's metric is of its filtered
    answer, so each of its responses carries the same checks.
The imported run has no judge (`judge` null), so its verdicts are lm-eval's checks; a response with neither
check nor judgment (--predict_only) is unscored until `harness judge` scores it.

The model is `--model-name`, else the results_<timestamp>.json beside the samples file (its `model_name`, else
config.model_args' model or pretrained). Its target name is the model name with every character outside
[A-Za-z0-9_.-] replaced by "-" (e.g. "org-Model-7B" for "org/Model-7B"); the spec keeps the model name as given.

Every file is read and validated before anything is written; the first problem is one UserError naming the file,
the line and the field. The same document, filter and model twice is an error naming both places.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness import __version__
from harness.errors import UserError
from harness.importers.messages import prompt_messages
from harness.importers.names import imported_method, imported_spec, target_name
from harness.store import Store
from harness.suites.loader import validation_error
from harness.suites.models import DEFAULT_THRESHOLD
from judges.criteria import DEFAULT_CRITERIA

FORMAT = "lm-eval-samples"
JUDGE = "lm-eval"
SAMPLES_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<stamp>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d+)?)\.jsonl$")
MetricKind = Literal["check", "score", "skipped"]


class SampleLine(BaseModel):
    """One line of a samples file (the fields this importer reads; metric values are read from the raw line)."""

    model_config = ConfigDict(extra="allow")

    doc_id: int = Field(ge=0)
    target: Any = None
    arguments: dict[str, Any] | list[Any]
    resps: list[Any]
    filtered_resps: list[Any] = Field(default_factory=list)
    filter: str = "none"
    metrics: list[str] = Field(default_factory=list)
    doc_hash: str | None = None
    prompt_hash: str | None = None
    target_hash: str | None = None


@dataclass
class Doc:
    """One document of one task answered by one model, its filters' lines merged."""

    file: Path
    line: int
    task: str
    model: str
    doc_id: int
    generations: list[str]
    prompt: str
    target: Any
    hashes: dict[str, str | None]
    metrics: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict)  # (metric, filter) -> (value, answer)


@dataclass(frozen=True)
class SamplesFile:
    path: Path
    task: str
    model: str
    sha256: str
    results: Path | None


@dataclass(frozen=True)
class ParsedSamples:
    """Every file validated: its documents, and how each (task, metric, filter) is imported."""

    files: list[SamplesFile]
    docs: list[Doc]
    kinds: dict[tuple[str, str, str], MetricKind]


@dataclass(frozen=True)
class ImportedLmEval:
    run_id: str
    cases: int
    responses: int
    targets: dict[str, str]  # target name -> model name
    figures: list[dict[str, Any]]  # per target and task: docs, and the mean of each imported metric
    skipped_metrics: list[str]


def _model_from_results(path: Path) -> str | None:
    """The model a results_<timestamp>.json names: `model_name`, else model_args' model or pretrained."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read lm-eval's results file ({exc.strerror})", file=path) from None
    except ValueError as exc:
        raise UserError(f"lm-eval's results file is not JSON ({exc})", file=path) from None
    if not isinstance(doc, dict):
        raise UserError("lm-eval's results file is not a JSON object", file=path)
    if isinstance(doc.get("model_name"), str) and doc["model_name"].strip():
        return str(doc["model_name"]).strip()
    args = (doc.get("config") or {}).get("model_args") if isinstance(doc.get("config"), dict) else None
    if isinstance(args, str):  # "pretrained=org/model,dtype=float16"
        args = dict(p.split("=", 1) for p in args.split(",") if "=" in p)
    if isinstance(args, dict):
        for key in ("model", "pretrained", "model_name"):
            if isinstance(args.get(key), str) and args[key].strip():
                return str(args[key]).strip()
    return None


def _generations(item: SampleLine, path: Path, line: int) -> list[str]:
    resps = item.resps
    if len(resps) != 1 or not isinstance(resps[0], list) or not all(isinstance(g, str) for g in resps[0]):
        raise UserError(
            "expected [[generated text, ...]]: only generate_until tasks can be imported (this looks like a "
            "loglikelihood or multiple-choice task, which generates no text to judge)",
            file=path,
            line=line,
            field="resps",
        )
    if not resps[0]:
        raise UserError("holds no generation", file=path, line=line, field="resps")
    return list(resps[0])


def _prompt(item: SampleLine, path: Path, line: int) -> str:
    """The request's prompt: arguments.gen_args_0.arg_0 (older lm-eval: arguments[0][0]); a chat request's is
    recorded as a one-item list holding the messages' JSON text."""
    args = item.arguments
    first: Any = None
    if isinstance(args, dict):
        request = args.get("gen_args_0")
        first = request.get("arg_0") if isinstance(request, dict) else None
    elif args and isinstance(args[0], list) and args[0]:
        first = args[0][0]
    if isinstance(first, list) and len(first) == 1:
        first = first[0]
    if not isinstance(first, str):
        raise UserError(
            "expected the request's prompt text at arguments.gen_args_0.arg_0", file=path, line=line, field="arguments"
        )
    return first


def _value(raw: dict[str, Any], metric: str) -> Any:
    value = raw.get(metric)
    return None if isinstance(value, float) and math.isnan(value) else value


def _kind(values: list[Any]) -> MetricKind:
    present = [v for v in values if v is not None]
    if not all(isinstance(v, bool | int | float) and math.isfinite(v) for v in present):
        return "skipped"
    return "check" if all(isinstance(v, bool) or v in (0, 1) for v in present) else "score"


def _read_file(path: Path, model_name: str | None) -> tuple[SamplesFile, list[tuple[int, SampleLine, dict[str, Any]]]]:
    found = SAMPLES_NAME.match(path.name)
    if found is None:
        raise UserError(
            "expected a samples file as lm-eval names it, samples_<task>_<timestamp>.jsonl (the task is read from "
            "the name)",
            file=path,
        )
    results = path.parent / f"results_{found['stamp']}.json"
    results_path = results if results.is_file() else None
    model = model_name or (_model_from_results(results) if results_path else None)
    if not model:
        raise UserError(
            f"cannot tell which model wrote these samples: no {results.name} beside it naming one; give --model-name",
            file=path,
            field="--model-name",
        )
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.strerror})", file=path) from None
    lines = []
    for number, text in enumerate(content.splitlines(), start=1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)  # not orjson: lm-eval writes NaN for some metrics
        except ValueError as exc:
            raise UserError(f"invalid JSON: {exc}", file=path, line=number) from None
        if not isinstance(raw, dict):
            raise UserError("each line must be a JSON object (one lm-eval sample)", file=path, line=number)
        try:
            lines.append((number, SampleLine.model_validate(raw), raw))
        except ValidationError as exc:
            raise validation_error(exc, path, base_line=number) from None
    if not lines:
        raise UserError("the file holds no samples", file=path)
    sha256 = hashlib.sha256(content).hexdigest()
    return SamplesFile(path, found["task"], model, sha256, results_path), lines


def read_lm_eval_samples(paths: list[Path], model_name: str | None = None) -> ParsedSamples:
    """Read and validate every file; merge each document's filters; decide how each metric is imported."""
    if not paths:
        raise UserError("give at least one samples file", field="FILE")
    files: list[SamplesFile] = []
    docs: dict[tuple[str, str, int], Doc] = {}
    seen: dict[tuple[str, str, int, str], tuple[Path, int]] = {}
    cases: dict[tuple[str, int], Doc] = {}
    values: dict[tuple[str, str, str], list[Any]] = defaultdict(list)
    names: dict[str, str] = {}
    for path in map(Path, paths):
        samples, lines = _read_file(path, model_name)
        other = names.setdefault(target_name(samples.model), samples.model)
        if other != samples.model:
            raise UserError(
                f"models '{other}' and '{samples.model}' make the same target name '{target_name(other)}'",
                file=path,
                field="--model-name",
            )
        files.append(samples)
        task, model = samples.task, samples.model
        for number, item, raw in lines:
            key = (model, task, item.doc_id, item.filter)
            if key in seen:
                where, at = seen[key]
                raise UserError(
                    f"a second sample of document {item.doc_id} of task '{task}' by '{model}' under filter "
                    f"'{item.filter}' (first at {where}:{at})",
                    file=path,
                    line=number,
                    field="doc_id",
                )
            seen[key] = (path, number)
            generations = _generations(item, path, number)
            prompt = _prompt(item, path, number)
            hashes = {"doc_hash": item.doc_hash, "prompt_hash": item.prompt_hash, "target_hash": item.target_hash}
            new = Doc(path, number, task, model, item.doc_id, generations, prompt, item.target, hashes)
            doc = docs.setdefault((model, task, item.doc_id), new)
            if doc.generations != generations:
                raise UserError(
                    f"document {item.doc_id}'s generations differ from those under another filter (at "
                    f"{doc.file}:{doc.line})",
                    file=path,
                    line=number,
                    field="resps",
                )
            first = cases.setdefault((task, item.doc_id), doc)
            if first.hashes["doc_hash"] and item.doc_hash and first.hashes["doc_hash"] != item.doc_hash:
                raise UserError(
                    f"document {item.doc_id} of task '{task}' is not the document at {first.file}:{first.line} "
                    "(another doc_hash): samples of different task data cannot share cases",
                    file=path,
                    line=number,
                    field="doc_hash",
                )
            answer = item.filtered_resps[0] if item.filtered_resps else None
            for metric in item.metrics:
                value = _value(raw, metric)
                doc.metrics[(metric, item.filter)] = (value, answer)
                values[(task, metric, item.filter)].append(value)
    kinds = {key: _kind(v) for key, v in values.items()}
    return ParsedSamples(files, list(docs.values()), kinds)


def _references(target: Any) -> list[str]:
    if target is None or target == "":
        return []
    if isinstance(target, list):
        return [t if isinstance(t, str) else json.dumps(t) for t in target]
    return [target if isinstance(target, str) else json.dumps(target)]


def _case(doc: Doc) -> dict[str, Any]:
    return {
        "id": str(doc.doc_id),
        "messages": prompt_messages(doc.prompt),
        "references": _references(doc.target),
        "checks": [],
        "criteria": list(DEFAULT_CRITERIA),
        "threshold": DEFAULT_THRESHOLD,
        "params": {},
        "tags": [doc.task],
        "lm_eval": {"task": doc.task, "doc_id": doc.doc_id, **doc.hashes},
    }


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _checks(doc: Doc, kinds: dict[tuple[str, str, str], MetricKind]) -> list[dict[str, Any]]:
    return [
        {
            "check": f"lm-eval:{metric},{filt}",
            "passed": bool(value == 1),
            "detail": f"lm-eval {metric} = {value:g} on the answer kept by filter '{filt}', {_short(answer)} "
            f"(target {_short(doc.target)})",
        }
        for (metric, filt), (value, answer) in doc.metrics.items()
        if value is not None and kinds[(doc.task, metric, filt)] == "check"
    ]


def _judge_calls(doc: Doc, kinds: dict[tuple[str, str, str], MetricKind]) -> list[dict[str, Any]]:
    judgments = [
        {
            "criterion": f"lm-eval:{metric},{filt}",
            "score": float(value),
            "score_kind": "float",
            "rationale": f"lm-eval {metric} on the answer kept by filter '{filt}', {_short(answer)}",
            "status": "scored",
            "reason": None,
        }
        for (metric, filt), (value, answer) in doc.metrics.items()
        if value is not None and kinds[(doc.task, metric, filt)] == "score"
    ]
    if not judgments:
        return []
    call: dict[str, Any] = {
        "judge": JUDGE,
        "template": f"lm-eval/{doc.task}",
        "template_sha256": "",
        "prompt": [],
        "raw": None,
    }
    return [{**call, "status": "scored", "reason": None, "judgments": judgments}]


def figures(parsed: ParsedSamples) -> list[dict[str, Any]]:
    """Per target and task: documents, generations, and each imported metric's mean over the documents (for a
    `mean` metric, the value lm-eval's results table shows)."""
    groups: dict[tuple[str, str], list[Doc]] = defaultdict(list)
    for doc in parsed.docs:
        groups[(doc.model, doc.task)].append(doc)
    out = []
    for (model, task), docs in groups.items():
        metrics: dict[str, list[float]] = defaultdict(list)
        for doc in docs:
            for (metric, filt), (value, _) in doc.metrics.items():
                if value is not None and parsed.kinds[(task, metric, filt)] != "skipped":
                    metrics[f"{metric},{filt}"].append(float(value))
        out.append(
            {
                "target": target_name(model),
                "model": model,
                "task": task,
                "docs": len(docs),
                "responses": sum(len(d.generations) for d in docs),
                "metrics": {k: statistics.fmean(v) for k, v in metrics.items()},
            }
        )
    return out


def write_lm_eval_run(store: Store, parsed: ParsedSamples, name: str | None = None) -> ImportedLmEval:
    """Create a complete run from validated samples (from `read_lm_eval_samples`), in one transaction."""
    cases: dict[tuple[str, int], dict[str, Any]] = {}
    responses: list[dict[str, Any]] = []
    sha = {f.path: f.sha256 for f in parsed.files}
    for doc in parsed.docs:
        cases.setdefault((doc.task, doc.doc_id), {"suite": doc.task, "case_id": str(doc.doc_id), "data": _case(doc)})
        checks, calls = _checks(doc, parsed.kinds), _judge_calls(doc, parsed.kinds)
        for sample, text in enumerate(doc.generations):
            responses.append(
                {
                    "suite": doc.task,
                    "case_id": str(doc.doc_id),
                    "target": target_name(doc.model),
                    "sample": sample,
                    "text": text,
                    "cache_key": f"imported:{FORMAT}:{sha[doc.file]}:{target_name(doc.model)}:{doc.doc_id}:{sample}",
                    "checks": checks,
                    "judge_calls": calls,
                }
            )
    models = list(dict.fromkeys(f.model for f in parsed.files))
    tasks = list(dict.fromkeys(f.task for f in parsed.files))
    fingerprint = hashlib.sha256("\n".join(f"{f.sha256} {f.model}" for f in parsed.files).encode()).hexdigest()
    scored = sorted(f"{m},{f}" for (_, m, f), kind in parsed.kinds.items() if kind == "score")
    skipped = sorted({f"{t}: {m},{f}" for (t, m, f), kind in parsed.kinds.items() if kind == "skipped"})
    judge = imported_spec(JUDGE)
    config: dict[str, Any] = {
        "imported": {
            "format": FORMAT,
            "files": [
                {
                    "file": str(f.path.resolve()),
                    "sha256": f.sha256,
                    "task": f.task,
                    "model": f.model,
                    "results": str(f.results.resolve()) if f.results else None,
                }
                for f in parsed.files
            ],
            "checks": sorted({f"{m},{f}" for (_, m, f), kind in parsed.kinds.items() if kind == "check"}),
            "scores": sorted(set(scored)),
            "skipped_metrics": skipped,
        },
        "suites": [
            {
                "suite": task,
                "version": "imported",
                "hash": hashlib.sha256(
                    "\n".join(f.sha256 for f in parsed.files if f.task == task).encode()
                ).hexdigest(),
                "cases": sum(1 for t, _ in cases if t == task),
                "path": str(next(f.path for f in parsed.files if f.task == task).resolve()),
            }
            for task in tasks
        ],
        "targets": [imported_spec(m) for m in models],
        "judge": None,  # the verdicts are lm-eval's checks; `harness judge` adds a judge's
        "judges": [judge] if scored else [],
        "judge_method": imported_method(", ".join(f"lm-eval/{t}" for t in tasks)) if scored else None,
        "samples": max(len(d.generations) for d in parsed.docs),
        "name": name,
    }
    run_id = store.create_imported_run(
        name, fingerprint, __version__, config, cases=list(cases.values()), responses=responses
    )
    return ImportedLmEval(
        run_id,
        len(cases),
        len(responses),
        {target_name(m): m for m in models},
        figures(parsed),
        skipped,
    )


def import_lm_eval_samples(
    store: Store, paths: list[Path], name: str | None = None, model_name: str | None = None
) -> ImportedLmEval:
    """Validate the files, then create one run holding their generations and metrics."""
    return write_lm_eval_run(store, read_lm_eval_samples(paths, model_name), name)
