"""`harness gate` (pass/fail for CI, exit codes 0/1/2/3) and `harness baseline export` (a committable snapshot)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from harness.cli_common import config_option, db_option, echo_json, open_store, table
from harness.config import GateSettings, load_config
from harness.errors import UserError


def _pairs(values: tuple[str, ...], flag: str, default_key: str | None = None) -> dict[str, float]:
    """KEY=NUMBER flags (or a bare NUMBER, meaning `default_key`) as a mapping; one error naming the flag."""
    out: dict[str, float] = {}
    for value in values:
        key, sep, number = value.rpartition("=")
        if not sep:
            if default_key is None:
                raise UserError(f"{flag} takes NAME=NUMBER, got {value!r}", field=flag)
            key = default_key
        try:
            out[key] = float(number)
        except ValueError:
            raise UserError(f"{flag}: {number!r} is not a number (in {value!r})", field=flag) from None
        if not key:
            raise UserError(f"{flag}: empty name in {value!r}", field=flag)
    return out


def _settings(config_gate: GateSettings, flags: dict[str, Any]) -> GateSettings:
    """harness.yaml's gate section with the given flags laid over it, validated as one (shares in [0, 1])."""
    from pydantic import ValidationError

    merged = config_gate.model_dump()
    for key, value in flags.items():
        if value is None or value == {} or value == []:
            continue
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    try:
        return GateSettings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UserError(f"--{where.split('.')[0].replace('_', '-')}: {err['msg']}", field=where) from None


@click.command("gate")
@click.argument("run_id")
@click.option("--baseline", default=None, help="A run id or name, or a file from `harness baseline export`.")
@click.option("--target", "targets", multiple=True, help="Gate these targets only (default: every target).")
@click.option("--min-pass-rate", type=float, default=None, help="Minimum pass rate (0-1) per target.")
@click.option("--min-pass-rate-suite", multiple=True, metavar="SUITE=RATE", help="Minimum pass rate in one suite.")
@click.option("--min-pass-rate-tag", multiple=True, metavar="TAG=RATE", help="Minimum pass rate over a tag's cases.")
@click.option("--min-mean", multiple=True, metavar="CRITERION=SCORE", help="Minimum mean score of a criterion.")
@click.option(
    "--max-regression",
    multiple=True,
    metavar="[CRITERION=]TOLERANCE",
    help="Fail on a significant drop of the mean (vs --baseline) larger than TOLERANCE score points.",
)
@click.option(
    "--max-pass-rate-drop", type=float, default=None, help="Fail on a significant pass-rate drop beyond this."
)
@click.option(
    "--min-check-pass-rate",
    type=float,
    default=None,
    help="Minimum share of responses whose deterministic checks all pass (no judge involved) per target.",
)
@click.option("--min-check-pass-rate-suite", multiple=True, metavar="SUITE=RATE", help="The same, within one suite.")
@click.option(
    "--min-canary-accuracy",
    type=float,
    default=None,
    help="A judge under this canary accuracy is untrusted (besides not above chance): judge-based conditions "
    "then exit 3.",
)
@click.option("--alpha", type=float, default=None, help="Significance level of the regression tests (0.05).")
@click.option("--max-unscored", type=float, default=None, help="Maximum unscored share (0.1), else exit 3.")
@click.option("--max-errors", type=float, default=None, help="Maximum error share (0.1), else exit 3.")
@click.option("--min-availability", type=float, default=None, help="Minimum availability (0.95), else exit 3.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write JUnit XML here.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table", show_default=True)
@db_option
@config_option
def gate_cmd(**options: Any) -> None:
    """Check RUN_ID against quality conditions (flags, or `gate:` in harness.yaml).

    Exit codes: 0 every condition holds; 1 a quality condition failed (the model got worse); 2 usage or config
    error; 3 the run is not trustworthy (a target down, too many errors or unscored judgments, or a judge that
    failed its canaries while a judge-based condition is gated; check-based conditions still gate normally)."""
    try:
        _gate(**options)
    except (UserError, click.exceptions.ClickException, click.exceptions.Exit):
        raise
    except Exception as exc:  # a crash must not read as "quality failed" (exit 1) in CI
        import traceback

        traceback.print_exc()
        click.echo(f"error: the gate could not be computed ({type(exc).__name__}: {exc}); not trustworthy", err=True)
        sys.exit(3)


def _gate(
    run_id: str,
    baseline: str | None,
    targets: tuple[str, ...],
    min_pass_rate: float | None,
    min_pass_rate_suite: tuple[str, ...],
    min_pass_rate_tag: tuple[str, ...],
    min_mean: tuple[str, ...],
    max_regression: tuple[str, ...],
    max_pass_rate_drop: float | None,
    min_check_pass_rate: float | None,
    min_check_pass_rate_suite: tuple[str, ...],
    min_canary_accuracy: float | None,
    alpha: float | None,
    max_unscored: float | None,
    max_errors: float | None,
    min_availability: float | None,
    junit: Path | None,
    fmt: str,
    db: Path | None,
    config_path: Path | None,
) -> None:
    from reports.gate import GateRules, gate_document, gate_markdown
    from reports.summary import summarise

    config = load_config(config_path)
    settings = _settings(
        config.data.gate,
        {
            "baseline": baseline,
            "targets": list(targets),
            "min_pass_rate": min_pass_rate,
            "min_pass_rate_suite": _pairs(min_pass_rate_suite, "--min-pass-rate-suite"),
            "min_pass_rate_tag": _pairs(min_pass_rate_tag, "--min-pass-rate-tag"),
            "min_mean": _pairs(min_mean, "--min-mean"),
            "max_regression": _pairs(max_regression, "--max-regression", default_key="*"),
            "max_pass_rate_drop": max_pass_rate_drop,
            "min_check_pass_rate": min_check_pass_rate,
            "min_check_pass_rate_suite": _pairs(min_check_pass_rate_suite, "--min-check-pass-rate-suite"),
            "min_canary_accuracy": min_canary_accuracy,
            "alpha": alpha,
            "max_unscored": max_unscored,
            "max_errors": max_errors,
            "min_availability": min_availability,
        },
    )
    if (settings.max_regression or settings.max_pass_rate_drop is not None) and settings.baseline is None:
        raise UserError("--max-regression and --max-pass-rate-drop need --baseline (a run or a baseline file)")
    store = open_store(db, config)
    doc = summarise(store, run_id, include_cases=False)
    if settings.min_canary_accuracy is not None:
        _apply_canary_floor(store, doc, settings.min_canary_accuracy)
    names = settings.targets or list(doc["targets"])
    unknown = [n for n in names if n not in doc["targets"]]
    if unknown:
        raise UserError(
            f"target {unknown[0]!r} is not in run {doc['run']['run_id']} (it has: {', '.join(doc['targets'])})",
            field="--target",
        )
    compare = None
    if settings.baseline is not None:
        from reports.baseline import resolve_baseline
        from reports.compare import compare_runs

        source, base_id = resolve_baseline(store, settings.baseline)
        compare = compare_runs(source, base_id, doc["run"]["run_id"])
    rules = GateRules(**settings.model_dump(exclude={"baseline", "targets"}))
    gate = gate_document(doc, rules, names, compare)
    if junit is not None:
        from reports.junit import junit_xml

        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(junit_xml(store, doc["run"]["run_id"]), encoding="utf-8")
        click.echo(f"wrote {junit}", err=True)
    markdown = gate_markdown(gate)
    from reports.ci_summary import append_step_summary
    from reports.render import render_markdown

    append_step_summary(markdown + "\n" + render_markdown(doc))
    if fmt == "json":
        echo_json(gate)
    elif fmt == "md":
        click.echo(markdown, nl=False)
    else:
        click.echo(f"gate {gate['outcome']}  (run {gate['run_id']}, exit code {gate['exit_code']})")
        click.echo(
            table(
                ["", "kind", "condition", "target", "scope", "detail"],
                [
                    ["ok" if c["ok"] else "FAIL", c["kind"], c["name"], c["target"], c["scope"], c["message"]]
                    for c in gate["conditions"]
                ],
            )
        )
    sys.exit(gate["exit_code"])


def _apply_canary_floor(store: Any, doc: dict[str, Any], floor: float) -> None:
    """Judge trust again with the gate's canary floor (the higher of it and the run's own). A floor on a judged run
    that scored no canaries cannot be checked: the judge is then untrusted (never a silent pass)."""
    from reports.canaries import canary_summary

    judging = doc["judging"]
    if not judging.get("judges"):
        return
    if "canaries" not in judging:
        judging["canaries"] = {
            "set": None,
            "floor": floor,
            "judges": {
                j: {
                    "criteria": {},
                    "by_kind": {},
                    "trusted": False,
                    "reasons": [f"--min-canary-accuracy {floor:g} asked, but the run scored no canaries"],
                }
                for j in judging["judges"]
            },
            "trusted": False,
        }
        judging["trusted"] = False
        return
    own = (judging["canaries"].get("set") or {}).get("floor")
    floor = max(floor, own) if own is not None else floor
    canaries = {**judging["canaries"], **canary_summary(store.canary_judgments(doc["run"]["run_id"]), floor)}
    judging |= {"canaries": canaries, "trusted": canaries["trusted"]}


@click.group("baseline")
def baseline_group() -> None:
    """Baselines: compact, committable snapshots of a run for `harness gate --baseline FILE`."""


@baseline_group.command("export")
@click.argument("run_id")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@db_option
@config_option
def export_cmd(run_id: str, output: Path, fmt: str, db: Path | None, config_path: Path | None) -> None:
    """Write RUN_ID's per-case outcomes and scores, suite versions and hashes, and target and judge specs to a
    JSON file (no response text, no secret) that a later `harness gate --baseline FILE` compares against."""
    from reports.baseline import write_baseline

    doc = write_baseline(open_store(db, load_config(config_path)), run_id, output)
    info = {
        "run_id": doc["exported_from"]["run_id"],
        "file": str(output),
        "results": len(doc["results"]),
        "cases": len(doc["cases"]),
        "bytes": output.stat().st_size,
    }
    if fmt == "json":
        echo_json(info)
    else:
        click.echo(f"wrote {output}: {info['results']} results of {info['cases']} cases from run {info['run_id']}")
