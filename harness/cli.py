"""The `harness` command line. Every command that reads or writes the store takes --db PATH."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from harness import __version__
from harness.cli_common import F, config_option, db_option, echo_json, open_store, run_async, table, write_output
from harness.config import Config, load_config
from harness.errors import UserError
from harness.store import Store

if TYPE_CHECKING:
    from harness.runner import Runner
from harness.runner.judging import AGGREGATES, JUDGE_MODES, JudgeSettings
from harness.targets.spec import TargetSpec
from judges.rubric import JUDGE_FORMATS, JudgeFormat
from reports.render import ifeval_lines, judging_lines


def _usd(value: float | None) -> str | None:
    return None if value is None else f"${value:.4g}"


def _mean(stats: dict[str, Any] | None) -> str | None:
    return None if not stats or stats["mean"] is None else f"{stats['mean']:.2f}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Run versioned prompt suites against LLM targets, judge the responses, store and report the results."""


def judge_options(f: F) -> F:
    """Options shared by `run` and `judge`: who judges, and how."""
    options = [
        click.option(
            "--judge",
            "-j",
            "judges",
            multiple=True,
            help="Judge target (spec or name; a name of this run's targets works). Repeat for a panel. "
            "Default: harness.yaml `judge`.",
        ),
        click.option(
            "--judge-mode",
            type=click.Choice(JUDGE_MODES),
            default="rubric",
            show_default=True,
            help="rubric: criteria scored 1-5; reference: graded against the case's human references; "
            "pairwise: two targets' responses compared, in both orders.",
        ),
        click.option(
            "--judge-template",
            "--template",
            "judge_template",
            default=None,
            help="Judge template name under judges/templates/ (default by mode: rubric_v1, reference_v1, pairwise_v1).",
        ),
        click.option(
            "--judge-format",
            type=click.Choice(JUDGE_FORMATS),
            default=None,
            help="How the judge is asked for JSON: response_format json_schema (default), a vLLM "
            "structured-outputs regex passed via extra_body, json_object, or none.",
        ),
        click.option(
            "--per-criterion",
            is_flag=True,
            help="One judge call per criterion (default: one call scores all criteria of a case).",
        ),
        click.option(
            "--judge-samples",
            type=click.IntRange(1, 100),
            default=1,
            show_default=True,
            help="Verdicts per response and judge (sampled at temperature 0.7 when > 1); the report "
            "gives judge variance and a noise floor per criterion.",
        ),
        click.option(
            "--judge-logprobs/--no-judge-logprobs",
            default=True,
            show_default=True,
            help="Ask the judge for top logprobs and store the probability-weighted score (G-Eval).",
        ),
        click.option(
            "--aggregate",
            type=click.Choice(AGGREGATES),
            default="mean",
            show_default=True,
            help="How a panel's and repeated verdicts make one score per response.",
        ),
        click.option(
            "--canaries",
            "canaries_path",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Judge canaries every judge also scores (known-good vs known-bad responses); default: the shipped "
            "prompt_suites/canaries/judge.canaries.yaml.",
        ),
        click.option(
            "--no-canaries",
            is_flag=True,
            help="Do not score the judge canaries (the judges' reliability is then not measured).",
        ),
        click.option(
            "--canary-floor",
            type=click.FloatRange(0, 1),
            default=None,
            help="A judge whose canary accuracy is under this floor is untrusted (it must always be above chance).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _gpu_hours(values: tuple[str, ...], names: set[str]) -> dict[str, float]:
    out = {}
    for value in values:
        name, _, usd = value.partition("=")
        try:
            price = float(usd)
        except ValueError:
            price = -1.0
        if name not in names or price < 0:
            raise UserError(f"{value!r}: expected NAME=USD for one of the targets {sorted(names)}", field="--gpu-hour")
        out[name] = price
    return out


LIMIT_FLAGS = ("rpm", "tpm", "breaker_failures", "breaker_window", "breaker_cooldown")


def limit_options(f: F) -> F:
    options = [
        click.option(
            "--concurrency",
            "-c",
            type=click.IntRange(1, 4096),
            default=None,
            help="Concurrent calls per target (overrides each target's own limit).",
        ),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=None, help="Per-call timeout in seconds."),
        click.option(
            "--max-attempts",
            type=click.IntRange(1, 20),
            default=None,
            help="Attempts per call, retries included (429, 5xx, timeouts, dropped connections).",
        ),
        click.option(
            "--rpm",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Requests per minute per target (default: no client-side cap; 429s shrink concurrency).",
        ),
        click.option(
            "--tpm",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Tokens per minute per target, estimated before each call (default: no cap).",
        ),
        click.option(
            "--breaker-failures",
            type=click.IntRange(min=1),
            default=None,
            help="Consecutive connection failures or 5xx (within 30 s) that declare a target down; its "
            "remaining calls are then recorded as unavailable at once (default 5).",
        ),
        click.option(
            "--breaker-window",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Seconds within which --breaker-failures must happen (default 30).",
        ),
        click.option(
            "--breaker-cooldown",
            type=click.FloatRange(min=0, min_open=True),
            default=None,
            help="Seconds before a down target is probed again (default 30).",
        ),
        click.option(
            "--no-cache", is_flag=True, help="Call the endpoints even where the store holds an identical request."
        ),
        click.option("--name", default=None, help="A name for the run (usable in place of its id)."),
        click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _judging(
    config: Config, judges: tuple[str, ...], named: dict[str, TargetSpec], overrides: dict[str, Any], kw: dict[str, Any]
) -> tuple[list[TargetSpec], JudgeSettings]:
    from harness.targets import parse_target_spec

    names = list(judges) or ([config.data.judge] if config.data.judge else [])
    specs = [parse_target_spec(j, named, "--judge").with_overrides(**overrides) for j in names]
    if len({s.name for s in specs}) != len(specs):
        raise UserError("two judges share a name; name them: NAME=PROVIDER:MODEL[@BASE_URL]", field="--judge")
    settings = JudgeSettings(
        mode=kw["judge_mode"],
        template=kw["judge_template"],
        judge_format=cast(JudgeFormat, kw["judge_format"] or config.data.judge_format or "json_schema"),
        per_criterion=kw["per_criterion"],
        samples=kw["judge_samples"],
        logprobs=kw["judge_logprobs"],
        aggregate=kw["aggregate"],
    )
    if settings.template is not None:
        from judges.prompt_templates import load_template

        load_template(settings.template)  # an unknown name is a usage error now, not a failure mid-run
    return specs, settings


def _canaries(kw: dict[str, Any]) -> tuple[Any, float | None]:
    """The canary set to score (None with --no-canaries) and the accuracy floor, popped from the options."""
    path, off, floor = kw.pop("canaries_path"), kw.pop("no_canaries"), kw.pop("canary_floor")
    if off:
        if path is not None:
            raise UserError("give --canaries FILE or --no-canaries, not both", field="--no-canaries")
        return None, floor
    from judges.canaries import DEFAULT_CANARIES, load_canaries

    if path is None and not DEFAULT_CANARIES.is_file():  # an install without the repository's prompt_suites/
        click.echo(
            f"warning: the shipped judge canaries are not at {DEFAULT_CANARIES}: the judges' reliability is not "
            "measured in this run (give --canaries FILE, or install from a checkout with pip install -e .)",
            err=True,
        )
        return None, floor
    return load_canaries(path or DEFAULT_CANARIES), floor


def _execute(runner: Runner, store: Store, fmt: str) -> None:
    """Run with a progress bar on stderr, then print the summary (table or JSON) on stdout."""
    from reports.summary import summarise

    total = runner.total_items
    with click.progressbar(
        length=total, label="running", file=sys.stderr, show_pos=True, update_min_steps=max(1, total // 200)
    ) as bar:
        runner.progress = bar.update
        try:
            run_id = run_async(runner.run())
        except KeyboardInterrupt:
            click.echo(
                f"\ninterrupted; run the same command again to continue run {getattr(runner, 'run_id', '?')}", err=True
            )
            sys.exit(130)
    doc = summarise(store, run_id, include_cases=False)
    if fmt == "json":
        echo_json(
            {
                "run_id": run_id,
                "resumed": runner.resumed,
                "db": str(store.path),
                "summary": doc["targets"],
                "coverage": doc["coverage"],
                "judging": doc["judging"],
            }
        )
        return
    click.echo(f"run {run_id}{' (resumed)' if runner.resumed else ''}  store {store.path}")
    crits = sorted({c for t in doc["targets"].values() for c in t["criteria"]})
    rows = [
        [
            t["target"],
            t["cases"],
            "–" if t["pass_rate"] is None else f"{100 * t['pass_rate']:.1f}%",
            *[_mean(t["criteria"].get(c)) for c in crits],
            t["errors"],
            t["unscored"],
            f"{t['tokens_in']}/{t['tokens_out']}",
            None if t["latency_ms_p50"] is None else f"{t['latency_ms_p50']:.0f} ms",
            _usd(t["cost"]["usd_per_1000_cases"]),
        ]
        for t in doc["targets"].values()
    ]
    click.echo(
        table(
            [
                "target",
                "cases",
                "pass rate",
                *[f"mean {c}" for c in crits],
                "errors",
                "unscored",
                "tokens in/out",
                "p50 latency",
                "$/1k cases",
            ],
            rows,
        )
    )
    for line in judging_lines(doc["judging"]) + ifeval_lines(doc["ifeval"]):
        click.echo(line)
    click.echo(f"report: harness report {run_id} --format html -o report.html")


@cli.command()
@click.argument("suites", nargs=-1, required=True)
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    required=True,
    help="NAME=PROVIDER:MODEL[@BASE_URL] or a target named in harness.yaml. Repeatable.",
)
@click.option(
    "--samples", "-n", type=click.IntRange(1, 1000), default=1, show_default=True, help="Responses per case and target."
)
@click.option(
    "--gpu-hour",
    "gpu_hours",
    multiple=True,
    metavar="NAME=USD",
    help="A self-hosted target's price per GPU-hour; the report turns it into cost per 1,000 cases from "
    "the measured throughput. Repeatable.",
)
@judge_options
@limit_options
@db_option
@config_option
def run(
    suites: tuple[str, ...],
    targets: tuple[str, ...],
    samples: int,
    gpu_hours: tuple[str, ...],
    judges: tuple[str, ...],
    concurrency: int | None,
    timeout: float | None,
    max_attempts: int | None,
    no_cache: bool,
    name: str | None,
    fmt: str,
    db: Path | None,
    config_path: Path | None,
    **judge_kw: Any,
) -> None:
    """Run SUITES (files or folders) against every --target; judge each response; print a summary."""
    from harness.runner import Runner, RunOptions
    from harness.suites import discover_suite_files, load_suite
    from harness.targets import parse_target_spec

    config = load_config(config_path)
    loaded = [load_suite(p) for p in discover_suite_files(suites)]
    names = [s.name for s in loaded]
    if len(set(names)) != len(names):
        raise UserError(f"two suite files share a suite name: {sorted({n for n in names if names.count(n) > 1})}")
    overrides = {
        "concurrency": concurrency,
        "timeout": timeout,
        "max_attempts": max_attempts,
        **{k: judge_kw.pop(k) for k in LIMIT_FLAGS},
    }
    specs = [parse_target_spec(t, config.targets).with_overrides(**overrides) for t in targets]
    hourly = _gpu_hours(gpu_hours, {s.name for s in specs})
    specs = [s.with_overrides(gpu_hour=hourly.get(s.name)) for s in specs]
    if len({s.name for s in specs}) != len(specs):
        raise UserError("two targets share a name; name them: NAME=PROVIDER:MODEL[@BASE_URL]", field="--target")
    canaries, floor = _canaries(judge_kw)
    judge_specs, settings = _judging(
        config, judges, {**config.targets, **{s.name: s for s in specs}}, overrides, judge_kw
    )
    if settings.mode == "pairwise" and judge_specs and len(specs) < 2:
        raise UserError("pairwise judging compares targets: give at least two --target", field="--judge-mode")
    store = open_store(db, config)
    prices = {model: p.model_dump() for model, p in config.data.prices.items()}
    options = RunOptions(
        samples=samples,
        no_cache=no_cache,
        name=name,
        judging=settings,
        prices=prices,
        canaries=canaries,
        canary_floor=floor,
    )
    _execute(Runner(store, loaded, specs, judge_specs, options), store, fmt)


@cli.command("judge")
@click.argument("run_id")
@click.option(
    "--criteria",
    default=None,
    help="Judge on these criteria (C1,C2) instead of each case's own, e.g. for an imported run scored elsewhere.",
)
@judge_options
@limit_options
@db_option
@config_option
def judge_cmd(
    run_id: str,
    criteria: str | None,
    judges: tuple[str, ...],
    concurrency: int | None,
    timeout: float | None,
    max_attempts: int | None,
    no_cache: bool,
    name: str | None,
    fmt: str,
    db: Path | None,
    config_path: Path | None,
    **judge_kw: Any,
) -> None:
    """Judge the stored responses of RUN_ID again (another judge, template or mode) as a new run, without
    calling the targets. Judges named like the run's targets resolve to them."""
    from harness.runner import Runner, RunOptions

    config = load_config(config_path)
    store = open_store(db, config)
    source = store.run(run_id)
    targets = [TargetSpec(**t) for t in source["config"].get("targets", [])]
    if not targets:
        raise UserError(f"run {source['run_id']} has no target responses to judge", field="RUN_ID")
    overrides = {
        "concurrency": concurrency,
        "timeout": timeout,
        "max_attempts": max_attempts,
        **{k: judge_kw.pop(k) for k in LIMIT_FLAGS},
    }
    canaries, floor = _canaries(judge_kw)
    judge_specs, settings = _judging(
        config, judges, {**config.targets, **{t.name: t for t in targets}}, overrides, judge_kw
    )
    if not judge_specs:
        raise UserError("give a judge: --judge SPEC (or `judge` in harness.yaml)", field="--judge")
    if settings.mode == "pairwise" and len(targets) < 2:
        raise UserError("pairwise judging compares targets: the run has only one", field="--judge-mode")
    chosen = _rejudge_criteria(store, source["run_id"], criteria)
    options = RunOptions(
        samples=int(source["config"].get("samples") or 1),
        no_cache=no_cache,
        name=name,
        judging=settings,
        rejudge_of=source["run_id"],
        criteria=chosen,
        prices={model: p.model_dump() for model, p in config.data.prices.items()},
        canaries=canaries,
        canary_floor=floor,
    )
    _execute(Runner(store, [], targets, judge_specs, options), store, fmt)


def _rejudge_criteria(store: Store, run_id: str, criteria: str | None) -> list[str] | None:
    """The --criteria list (checked), or None to keep the cases' own, which must then all be known to the judges."""
    from judges.criteria import KNOWN_CRITERIA

    known = ", ".join(sorted(KNOWN_CRITERIA))
    if criteria is not None:
        names = [c.strip() for c in criteria.split(",") if c.strip()]
        unknown = [c for c in names if c not in KNOWN_CRITERIA]
        if not names or unknown:
            raise UserError(f"unknown criterion {(unknown or [''])[0]!r}; expected some of {known}", field="--criteria")
        return names
    for case in store.cases(run_id):
        unknown = [c for c in case.get("criteria", []) if c not in KNOWN_CRITERIA]
        if unknown:
            raise UserError(
                f"case {case['case_id']} of run {run_id} is scored on {unknown[0]!r}, which no judge here knows "
                f"(an imported score?): give --criteria from {known}",
                field="--criteria",
            )
    return None


@cli.command()
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@db_option
@config_option
def runs(limit: int, fmt: str, db: Path | None, config_path: Path | None) -> None:
    """List the runs in the store, newest first."""
    import datetime as dt

    items = open_store(db, load_config(config_path)).runs(limit)
    if fmt == "json":
        echo_json(items)
        return
    rows = [
        [
            r["run_id"],
            r["name"],
            r["status"],
            dt.datetime.fromtimestamp(r["created_at"]).strftime("%Y-%m-%d %H:%M"),
            ",".join(r["suites"]),
            ",".join(r["targets"]),
            r["responses"],
            r["judgments"],
        ]
        for r in items
    ]
    click.echo(table(["run", "name", "status", "started", "suites", "targets", "responses", "judgments"], rows))


@cli.command()
@click.argument("run_id")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md", "json", "csv", "parquet", "junit"]),
    default="html",
    show_default=True,
    help="csv and parquet write tidy tables (responses, scores, verdicts, checks) into the folder given by -o.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write to this file (csv, parquet: this folder); default: standard output.",
)
@click.option(
    "--baseline",
    default=None,
    help="Add a regression section: RUN_ID compared with this run (id or name) or baseline file.",
)
@click.option(
    "--primary", default=None, help="Add a failover section: the run's other targets ranked as fallbacks for this one."
)
@click.option(
    "--bench", "bench_run", default=None, help="Show this `harness bench` run's lm-eval metrics for the same targets."
)
@click.option(
    "--training-log",
    "training_logs",
    multiple=True,
    metavar="TARGET=PATH",
    help="Show a fine-tune's training and validation loss per step (a training_log.json, or the adapter folder "
    "holding one) beside its target. Repeatable.",
)
@db_option
@config_option
def report(
    run_id: str,
    fmt: str,
    output: Path | None,
    baseline: str | None,
    primary: str | None,
    bench_run: str | None,
    training_logs: tuple[str, ...],
    db: Path | None,
    config_path: Path | None,
) -> None:
    """Render the report of RUN_ID (an id or a run name) from the store alone."""
    store = open_store(db, load_config(config_path))
    if fmt in ("csv", "parquet"):
        from reports.tables import write_tables

        if output is None:
            raise UserError(f"--format {fmt} writes one file per table: give a folder with -o", field="--output")
        for path in write_tables(store, store.run(run_id)["run_id"], output, fmt):
            click.echo(f"wrote {path}", err=True)
        return
    if fmt == "junit":
        from reports.junit import junit_xml

        text = junit_xml(store, store.run(run_id)["run_id"])
    else:
        from reports.render import render
        from reports.summary import summarise

        doc = summarise(store, run_id)
        if baseline is not None:
            from reports.baseline import resolve_baseline
            from reports.compare import compare_runs

            source, base_id = resolve_baseline(store, baseline)
            doc["regression"] = compare_runs(source, base_id, doc["run"]["run_id"])
        if primary is not None:
            from reports.failover import failover

            doc["failover"] = failover(store, [doc["run"]["run_id"]], primary)
        if bench_run is not None:
            from reports.bench import bench_rows

            doc["bench"] = [*doc.get("bench", []), *bench_rows(store, bench_run, targets=set(doc["targets"]))]
        if training_logs:
            doc["training"] = _training_logs(training_logs, set(doc["targets"]))
        text = render(doc, fmt)
    write_output(text, output)


def _training_logs(values: tuple[str, ...], targets: set[str]) -> dict[str, dict[str, Any]]:
    from reports.training import read_training_log

    logs: dict[str, dict[str, Any]] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UserError(f"--training-log takes TARGET=PATH, got {value!r}", field="--training-log")
        if name not in targets:
            raise UserError(
                f"--training-log: the run has no target {name!r} (its targets: {', '.join(sorted(targets))})",
                field="--training-log",
            )
        logs[name] = read_training_log(Path(path))
    return logs


@cli.group()
def suites() -> None:
    """Work with suite files."""


@suites.command("validate")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def validate(paths: tuple[str, ...], fmt: str) -> None:
    """Validate suite files (or the folders holding them); print name, version, case count and content hash."""
    from harness.suites import discover_suite_files, load_suite

    loaded = [load_suite(p).identity() for p in discover_suite_files(paths)]
    if fmt == "json":
        echo_json(loaded)
        return
    click.echo(
        table(
            ["suite", "version", "cases", "sha256", "file"],
            [[s["suite"], s["version"], s["cases"], s["hash"][:16], s["path"]] for s in loaded],
        )
    )


from harness.cli_bench import bench_cmd  # noqa: E402
from harness.cli_compare import compare  # noqa: E402
from harness.cli_failover import failover_cmd  # noqa: E402
from harness.cli_gate import baseline_group, gate_cmd  # noqa: E402
from harness.cli_judges import import_group, judges_group  # noqa: E402
from harness.cli_serve import serve_group  # noqa: E402
from harness.cli_suites import suites_check, suites_lock, suites_overlap  # noqa: E402

suites.add_command(suites_lock)
suites.add_command(suites_check)
suites.add_command(suites_overlap)
cli.add_command(import_group)
cli.add_command(judges_group)
cli.add_command(serve_group)
cli.add_command(compare)
cli.add_command(failover_cmd)
cli.add_command(gate_cmd)
cli.add_command(baseline_group)
cli.add_command(bench_cmd)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="harness", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc.render()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
