"""`harness bench`: lm-evaluation-harness tasks run against harness targets, their metrics (value and stderr per
task, metric and filter) stored as a run, to be read beside judge scores (reports/bench.py).

One run per command; lm-eval runs once per --target, each target's metrics recorded as soon as it finishes. The run
is `complete` at the end, `failed` (the reason in its config) when lm-eval fails on a target, `interrupted` on
Ctrl-C. lm_eval is imported inside the command only (see harness/lmeval/runner.py)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from harness import __version__
from harness.cli_common import FORMATS, config_option, db_option, echo_json, open_store, table
from harness.config import load_config
from harness.errors import UserError
from harness.lmeval.endpoint import MODEL_TYPES, ModelType, make_endpoint
from harness.store import Store
from harness.targets.spec import fingerprint


def _tasks(values: tuple[str, ...]) -> list[str]:
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        raise UserError("give at least one lm-eval task: --tasks T1,T2", field="--tasks")
    return list(dict.fromkeys(names))


def _limit(value: float | None) -> int | float | None:
    """lm-eval's --limit: a count of documents per task, or a share of them when below 1."""
    if value is None or value < 1:
        return value
    if value != int(value):
        raise UserError(f"{value:g}: a limit of 1 or more is a count of documents (a whole number)", field="--limit")
    return int(value)


def _gen_kwargs(value: str | None) -> str | None:
    if value is None:
        return None
    parts = [p for p in value.split(",") if p.strip()]
    bad = [p for p in parts if "=" not in p or not p.split("=", 1)[0].strip()]
    if bad or not parts:
        raise UserError(f"{value!r}: expected KEY=VALUE[,KEY=VALUE...] (e.g. max_gen_toks=16)", field="--gen-kwargs")
    return value


def _cells(row: dict[str, Any]) -> list[str | None]:
    """value and stderr, to four decimals as lm-eval prints them."""
    return [None if row[k] is None else f"{row[k]:.4f}" for k in ("value", "stderr")]


@click.command("bench")
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    required=True,
    help="NAME=openai:MODEL@BASE_URL or a target named in harness.yaml (an OpenAI-compatible endpoint). "
    "Repeatable: lm-eval runs once per target.",
)
@click.option("--tasks", "task_args", multiple=True, required=True, help="lm-eval task, group or tag names: T1,T2.")
@click.option(
    "--include-path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="A folder of custom task YAML files; their relative data_files are read against each YAML's folder, "
    "whatever the working directory.",
)
@click.option(
    "--limit",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Documents per task (below 1: a share of them). For quick checks; the figures are not comparable.",
)
@click.option(
    "--model-type",
    type=click.Choice(MODEL_TYPES),
    default="chat",
    show_default=True,
    help="chat: local-chat-completions (/chat/completions, chat template applied by the server); completions: "
    "local-completions (/completions, raw prompts).",
)
@click.option(
    "--tokenizer",
    default=None,
    help="completions only, for loglikelihood tasks: a local Hugging Face tokenizer folder, or `remote` (the "
    "vLLM server's own tokenizer endpoints).",
)
@click.option(
    "--num-fewshot", type=click.IntRange(min=0), default=None, help="Few-shot examples (default: the task's)."
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Prompts per completions request (chat sends one).",
)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 4096),
    default=None,
    help="Concurrent requests per target (default: the target's own limit).",
)
@click.option("--timeout", type=click.FloatRange(min=1), default=None, help="Per-request timeout in seconds.")
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 20),
    default=None,
    help="Attempts per request, retries included (default: the target's own).",
)
@click.option(
    "--gen-kwargs",
    default=None,
    help="Generation settings over the tasks' own, lm-eval style: max_gen_toks=16,temperature=0.",
)
@click.option(
    "--bootstrap-iters",
    type=click.IntRange(min=0),
    default=100_000,
    show_default=True,
    help="Bootstrap resamples for the stderr of metrics without a closed form (0: no stderr at all, lm-eval's rule).",
)
@click.option(
    "--output-path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write lm-eval's own results JSON per target into OUTPUT_PATH/TARGET/.",
)
@click.option(
    "--log-samples",
    is_flag=True,
    help="With --output-path: also write lm-eval's per-document samples_<task>_<date>.jsonl.",
)
@click.option("--name", default=None, help="A name for the run (usable in place of its id).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@db_option
@config_option
def bench_cmd(
    targets: tuple[str, ...],
    task_args: tuple[str, ...],
    include_path: Path | None,
    limit: float | None,
    model_type: ModelType,
    tokenizer: str | None,
    num_fewshot: int | None,
    batch_size: int,
    concurrency: int | None,
    timeout: float | None,
    max_attempts: int | None,
    gen_kwargs: str | None,
    bootstrap_iters: int,
    output_path: Path | None,
    log_samples: bool,
    name: str | None,
    fmt: str,
    db: Path | None,
    config_path: Path | None,
) -> None:
    """Run lm-evaluation-harness TASKS against every --target (offline: local task files and the Hugging Face
    cache only) and store the metrics, with their stderr, as a run."""
    from harness.lmeval.runner import (
        BenchOptions,
        check_output_types,
        import_lm_eval,
        lm_eval_version,
        load_tasks,
        prepared_include_path,
        run_target,
    )
    from harness.targets import parse_target_spec

    config = load_config(config_path)
    overrides = {"concurrency": concurrency, "timeout": timeout, "max_attempts": max_attempts}
    specs = [parse_target_spec(t, config.targets).with_overrides(**overrides) for t in targets]
    if len({s.name for s in specs}) != len(specs):
        raise UserError("two targets share a name; name them: NAME=openai:MODEL@BASE_URL", field="--target")
    endpoints = [make_endpoint(s, model_type, tokenizer=tokenizer, batch_size=batch_size) for s in specs]
    if log_samples and output_path is None:
        raise UserError("--log-samples writes lm-eval's sample files: give --output-path DIR", field="--log-samples")
    names = _tasks(task_args)
    options = BenchOptions(
        tasks=names,
        include_path=include_path.resolve() if include_path else None,
        limit=_limit(limit),
        num_fewshot=num_fewshot,
        gen_kwargs=_gen_kwargs(gen_kwargs),
        bootstrap_iters=bootstrap_iters,
        output_path=output_path.resolve() if output_path else None,
        log_samples=log_samples,
    )
    store = open_store(db, config)
    data_folder = store.path.resolve().parent
    lm_eval = import_lm_eval()
    bench: dict[str, Any] = {
        "tasks": names,
        "include_path": str(options.include_path) if options.include_path else None,
        "limit": options.limit,
        "num_fewshot": num_fewshot,
        "gen_kwargs": options.gen_kwargs,
        "model_type": model_type,
        "tokenizer": tokenizer,
        "bootstrap_iters": bootstrap_iters,
        "seed": options.seed,
        "lm_eval_version": lm_eval_version(),
        "endpoints": {e.target.name: {"lm_eval_model": e.lm_eval_model, **e.public()} for e in endpoints},
    }
    summary: dict[str, Any] = {}
    with prepared_include_path(options.include_path) as (include, rewrites):
        tasks = load_tasks(lm_eval, names, include)
        bench["data_paths_rewritten"] = [asdict(r) for r in rewrites]
        bench["output_types"] = tasks.output_types
        for endpoint in endpoints:
            check_output_types(tasks, endpoint)
        run_config = {"kind": "bench", "bench": bench, "targets": [s.public() for s in specs]}
        identity = {
            "bench": {k: v for k, v in bench.items() if k != "endpoints"},
            "targets": [s.identity() for s in specs],
        }
        run_id = store.create_run(name, fingerprint(identity), __version__, run_config)
        click.echo(f"run {run_id}  store {store.path}", err=True)
        try:
            for n, endpoint in enumerate(endpoints):
                if n:
                    tasks = load_tasks(lm_eval, names, include, tasks.manager)
                try:
                    outcome = run_target(lm_eval, endpoint, tasks, options, data_folder)
                except (UserError, KeyboardInterrupt):
                    raise
                except Exception as exc:  # lm-eval's failure (an endpoint down after its retries)
                    reason = f"lm-eval failed on target '{endpoint.target.name}': {type(exc).__name__}: {exc}"
                    store.fail_run(run_id, reason)
                    raise click.ClickException(f"{reason} (run {run_id} marked failed)") from None
                store.add_bench_results(run_id, outcome.rows)
                summary[endpoint.target.name] = {
                    "requests": sum(outcome.requests.values()),
                    "requests_sent": sum(outcome.sent.values()),
                    "files": outcome.output_files,
                }
        except KeyboardInterrupt:
            store.set_run_status(run_id, "interrupted")
            click.echo(f"\ninterrupted; run {run_id} keeps the targets finished", err=True)
            sys.exit(130)
        except UserError as exc:
            store.fail_run(run_id, exc.render())
            raise
    store.set_run_status(run_id, "complete")
    _print(store, run_id, summary, fmt)


def _print(store: Store, run_id: str, summary: dict[str, Any], fmt: str) -> None:
    from reports.bench import bench_rows

    rows = bench_rows(store, run_id)
    if fmt == "json":
        echo_json({"run_id": run_id, "db": str(store.path), "targets": summary, "metrics": rows})
        return
    click.echo(f"run {run_id}  store {store.path}")
    click.echo(
        table(
            ["target", "task", "metric", "filter", "value", "± stderr", "n"],
            [[r["target"], r["task"], r["metric"], r["filter"], *_cells(r), r["n_samples"]] for r in rows],
        )
    )
    for target, s in summary.items():
        click.echo(f"{target}: {s['requests']} requests, {s['requests_sent']} sent (the rest from lm-eval's cache)")
        for path in s["files"]:
            click.echo(f"  wrote {path}")
    click.echo(f"report: harness report {run_id} --format md")
