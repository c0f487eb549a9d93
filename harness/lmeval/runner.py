"""Run lm-evaluation-harness for `harness bench`: offline, with its request cache in the harness's data folder, and
turn its results into metric rows (value and stderr per task, metric and filter) for the store.

Offline: HF_DATASETS_OFFLINE, HF_HUB_OFFLINE, HF_EVALUATE_OFFLINE and TRANSFORMERS_OFFLINE are set before lm_eval
(and with it `datasets`) is imported, so a task reads local files or what the Hugging Face cache already holds and
never downloads. Cache: lm-eval's own request cache (sqlite, keyed by request) in
`<data folder>/lm-eval-cache/<target>-<model type>-<endpoint hash>_rank0.db`, the data folder being the results
store's folder: a rerun of the same tasks on the same endpoint sends no request. The endpoint hash keeps two
endpoints that share a target name from serving each other's replies (lm-eval's key is the request alone).

Tasks are looked up in the --include-path folder alone when they are all there (reading lm-eval's ~15,000
built-in task files takes seconds), else in the built-in tasks too."""

from __future__ import annotations

import difflib
import importlib
import json
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.errors import UserError
from harness.lmeval.endpoint import Endpoint, scores_loglikelihood
from harness.lmeval.include import Rewrite, mirror_include_path
from harness.targets.spec import fingerprint

OFFLINE_ENV = {
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
LM_EVAL_MODULES = ("lm_eval.api.model", "lm_eval.api.registry", "lm_eval.evaluator", "lm_eval.tasks", "lm_eval.loggers")
LOGLIKELIHOOD_TYPES = frozenset({"loglikelihood", "loglikelihood_rolling", "multiple_choice"})
REQUEST_METHODS = ("generate_until", "loglikelihood", "loglikelihood_rolling")
CACHE_DIR = "lm-eval-cache"


@dataclass(frozen=True)
class BenchOptions:
    """What `harness bench` asks of lm-eval, the same for every target."""

    tasks: list[str]
    include_path: Path | None = None
    limit: int | float | None = None
    num_fewshot: int | None = None
    gen_kwargs: str | None = None
    bootstrap_iters: int = 100_000
    output_path: Path | None = None  # lm-eval's results JSON (and samples JSONL) per target under this folder
    log_samples: bool = False
    seed: int = 0


@dataclass
class TaskSet:
    """The requested tasks as lm-eval built them: the task manager, the top-level items (tasks or groups, as
    simple_evaluate takes them) and every leaf task's output type."""

    manager: Any
    items: list[Any]
    output_types: dict[str, str]
    rewrites: list[Rewrite] = field(default_factory=list)


@dataclass
class TargetResult:
    """One target's lm-eval run: the metric rows, lm-eval's results dict, the requests per task (all of them, and
    those sent to the endpoint rather than served from lm-eval's cache)."""

    rows: list[dict[str, Any]]
    results: dict[str, Any]
    requests: dict[str, int]
    sent: dict[str, int]
    output_files: list[str] = field(default_factory=list)


def go_offline() -> None:
    """Set the Hugging Face libraries' offline switches (before they are imported: they read them at import)."""
    os.environ.update(OFFLINE_ENV)


def import_lm_eval() -> ModuleType:
    """lm_eval, offline; a UserError naming the extra to install when it is missing."""
    go_offline()
    try:
        lm_eval = importlib.import_module("lm_eval")  # by name: lm_eval ships no type information
        for module in LM_EVAL_MODULES:
            importlib.import_module(module)
    except ImportError as exc:
        raise UserError(
            f"`harness bench` needs lm-evaluation-harness: pip install 'judge-harness[lmeval]' ({exc})"
        ) from None
    return lm_eval


def lm_eval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm_eval")
    except PackageNotFoundError:
        return "unknown"


@contextmanager
def prepared_include_path(include_path: Path | None) -> Iterator[tuple[Path | None, list[Rewrite]]]:
    """The include folder mirrored with absolute data paths (see harness.lmeval.include), removed afterwards."""
    if include_path is None:
        yield None, []
        return
    with tempfile.TemporaryDirectory(prefix="harness-lm-eval-tasks-") as scratch:
        dest = Path(scratch) / "tasks"
        dest.mkdir()
        rewrites = mirror_include_path(include_path, dest)
        yield dest, rewrites


def _manager(lm_eval: ModuleType, include: Path | None, names: list[str]) -> Any:
    if include is not None:
        local = lm_eval.tasks.TaskManager(include_path=str(include), include_defaults=False)
        if all(n in local.all_tasks for n in names):
            return local
        return lm_eval.tasks.TaskManager(include_path=str(include))
    return lm_eval.tasks.TaskManager()


def _leaves(item: Any) -> list[Any]:
    return list(item.get_all_tasks()) if hasattr(item, "get_all_tasks") else [item]


def load_tasks(lm_eval: ModuleType, names: list[str], include: Path | None, manager: Any = None) -> TaskSet:
    """Build the named tasks (reading their data); a UserError names an unknown task or one whose data fails.
    Give the `manager` of an earlier TaskSet to build them afresh for another target without indexing again."""
    for name in names:
        if name.endswith((".yaml", ".yml")) or os.sep in name:
            raise UserError(
                f"'{name}' looks like a file: give the task's folder with --include-path and the task's name",
                field="--tasks",
            )
    manager = manager or _manager(lm_eval, include, names)
    known = manager.all_tasks
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            where = " (built-in tasks and --include-path)" if include is not None else ""
            raise UserError(f"unknown lm-eval task '{name}'{where}{hint}", field="--tasks")
    items: list[Any] = []
    for name in names:
        try:
            loaded = manager.load([name])
        except Exception as exc:  # any failure to build a user's task is a problem with the task
            reason = f"{type(exc).__name__}: {exc}"
            raise UserError(f"task '{name}' could not be loaded: {reason}", field="--tasks") from None
        groups = loaded.get("groups") or {}
        items.extend([groups[name]] if name in groups else list(loaded["tasks"].values()))
    output_types = {t.task_name: str(t.OUTPUT_TYPE) for item in items for t in _leaves(item)}
    return TaskSet(manager, items, output_types)


def check_output_types(tasks: TaskSet, endpoint: Endpoint) -> None:
    """Loglikelihood tasks need an endpoint that returns prompt logprobs with a tokenizer: say so before running."""
    if scores_loglikelihood(endpoint):
        return
    needing = sorted(n for n, t in tasks.output_types.items() if t in LOGLIKELIHOOD_TYPES)
    if needing:
        listed = ", ".join(f"{n} ({tasks.output_types[n]})" for n in needing)
        fix = (
            "chat completions give no prompt logprobs: use --model-type completions --tokenizer PATH|remote"
            if endpoint.model_type == "chat"
            else "--model-type completions needs --tokenizer PATH (a local tokenizer folder) or --tokenizer remote "
            "(a vLLM server started with --enable-tokenizer-info-endpoint) for them"
        )
        raise UserError(f"task(s) {listed} score loglikelihoods; {fix}", field="--tasks")


def cache_base(data_folder: Path, endpoint: Endpoint) -> Path:
    """lm-eval's `use_cache` for this endpoint (lm-eval appends `_rank0.db`)."""
    key = fingerprint(
        {**endpoint.target.endpoint_identity(), "url": endpoint.url, "model_type": endpoint.model_type}
        | {"tokenizer": endpoint.args.get("tokenizer") or endpoint.args.get("tokenizer_backend")}
    )
    return data_folder / CACHE_DIR / f"{endpoint.target.name}-{endpoint.model_type}-{key[:12]}"


class _Counter:
    """Counts the requests that reach the endpoint (lm-eval's cache calls the model only for the rest), per task."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()

    def wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(requests: list[Any], *args: Any, **kwargs: Any) -> Any:
            self.sent.update(str(getattr(r, "task_name", "?")) for r in requests)
            return method(requests, *args, **kwargs)

        return counted


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None  # lm-eval's "N/A" (one sample: no stderr), or a non-scalar metric
    return out if math.isfinite(out) else None


def _plain(value: Any) -> Any:
    """JSON-able: lm-eval's configs may hold numpy numbers or functions."""
    return json.loads(json.dumps(value, default=str))


def metric_rows(
    results: dict[str, Any], target: str, requests: dict[str, int], sent: dict[str, int]
) -> list[dict[str, Any]]:
    """One row per task (or group) x metric x filter of lm-eval's results: value, stderr (None where lm-eval gave
    "N/A"), the samples evaluated, the task version, whether higher is better."""
    groups = set(results.get("groups") or {}) | {g for g, subs in (results.get("group_subtasks") or {}).items() if subs}
    entries = {**(results.get("groups") or {}), **results.get("results", {})}
    n_samples = results.get("n-samples") or {}

    def samples(task: str) -> int | None:
        if task in n_samples:
            return int(n_samples[task]["effective"])
        subs = (results.get("group_subtasks") or {}).get(task) or []
        counts = [samples(s) for s in subs]
        return sum(c for c in counts if c is not None) if counts else None

    rows = []
    for task, entry in entries.items():
        for key, value in entry.items():
            if not isinstance(key, str) or "," not in key or "_stderr," in key:
                continue
            metric, _, filt = key.partition(",")
            number = _number(value)
            if number is None and value is not None and not isinstance(value, str):
                continue  # a list-valued metric: nothing to tabulate
            hib = (results.get("higher_is_better") or {}).get(task, {}).get(metric)
            version = (results.get("versions") or {}).get(task)
            rows.append(
                {
                    "target": target,
                    "task": task,
                    "metric": metric,
                    "filter": filt,
                    "value": number,
                    "stderr": _number(entry.get(f"{metric}_stderr,{filt}")),
                    "n_samples": samples(task),
                    "task_version": None if version is None else str(version),
                    "higher_is_better": None if hib is None else bool(hib),
                    "is_group": task in groups,
                    "config": {
                        "alias": str(entry.get("alias", task)).strip(),
                        "n_original": (n_samples.get(task) or {}).get("original"),
                        "requests": requests.get(task),
                        "requests_sent": sent.get(task, 0) if task in requests else None,
                        "lm_eval_config": _plain((results.get("configs") or {}).get(task)),
                    },
                }
            )
    return rows


def _save_outputs(lm_eval: ModuleType, results: dict[str, Any], folder: Path, log_samples: bool) -> list[str]:
    """lm-eval's own files (results_<date>.json, samples_<task>_<date>.jsonl) in `folder`, as its CLI writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    before = set(folder.iterdir())
    tracker = lm_eval.loggers.EvaluationTracker(output_path=str(folder / "results.json"))
    samples: dict[str, Any] = results.pop("samples", None) or {}
    tracker.save_results_aggregated(results=results, samples=samples or None)
    for task in results.get("configs", {}) if log_samples and samples else []:
        tracker.save_results_samples(task_name=task, samples=samples[task])
    return sorted(str(p) for p in set(folder.iterdir()) - before)


def run_target(
    lm_eval: ModuleType, endpoint: Endpoint, tasks: TaskSet, options: BenchOptions, data_folder: Path
) -> TargetResult:
    """simple_evaluate on one endpoint; lm-eval's exceptions (an endpoint down after retries) propagate."""
    check_output_types(tasks, endpoint)
    model_cls = lm_eval.api.registry.get_model(endpoint.lm_eval_model)
    lm = model_cls.create_from_arg_obj(endpoint.args)
    counter = _Counter()
    for method in REQUEST_METHODS:
        setattr(lm, method, counter.wrap(getattr(lm, method)))
    results = lm_eval.evaluator.simple_evaluate(
        model=lm,
        tasks=tasks.items,
        task_manager=tasks.manager,
        num_fewshot=options.num_fewshot,
        limit=options.limit,
        gen_kwargs=options.gen_kwargs,
        use_cache=str(cache_base(data_folder, endpoint)),
        bootstrap_iters=options.bootstrap_iters,
        log_samples=options.log_samples,
        apply_chat_template=endpoint.model_type == "chat",
        fewshot_as_multiturn=endpoint.model_type == "chat",
        random_seed=options.seed,
        numpy_random_seed=options.seed,
        torch_random_seed=options.seed,
        fewshot_random_seed=options.seed,
    )
    if results is None:  # only a non-zero rank gets None; an API model runs on rank 0
        raise RuntimeError("lm-eval returned no results")
    requests = {t.task_name: len(t.instances) for item in tasks.items for t in _leaves(item)}
    sent = dict(counter.sent)
    rows = metric_rows(results, endpoint.target.name, requests, sent)
    files: list[str] = []
    if options.output_path is not None:
        files = _save_outputs(lm_eval, results, options.output_path / endpoint.target.name, options.log_samples)
    return TargetResult(rows, results, requests, sent, files)
