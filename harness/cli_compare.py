"""`harness compare BASELINE_RUN CANDIDATE_RUN`: a regression check between two stored runs (reports.compare holds
the rules). harness.cli registers the command; this module imports harness.cli_common only, never harness.cli."""

from __future__ import annotations

from pathlib import Path

import click

from harness.cli_common import config_option, db_option, open_store, write_output


@click.command("compare")
@click.argument("baseline")
@click.argument("candidate")
@click.option("--target", "-t", default=None, help="Compare this target only (a name both runs have).")
@click.option(
    "--baseline-target",
    default=None,
    help="The baseline run's target to compare (with --candidate-target: two differently named targets, "
    "e.g. a base model and its adapter in one run).",
)
@click.option("--candidate-target", default=None, help="The candidate run's target to compare.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "md", "html"]),
    default="table",
    show_default=True,
    help="table: for the terminal; json: schema judge-harness/compare@1; md: for a PR comment; html: one page.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (default: standard output).",
)
@db_option
@config_option
def compare(
    baseline: str,
    candidate: str,
    target: str | None,
    baseline_target: str | None,
    candidate_target: str | None,
    fmt: str,
    output: Path | None,
    db: Path | None,
    config_path: Path | None,
) -> None:
    """Compare CANDIDATE (a run id or name) against BASELINE: responses paired on suite, case id and sample;
    per criterion the mean score delta with a paired bootstrap CI and a Wilcoxon p-value, judge noise marked;
    McNemar's exact test on pass/fail; the flipped cases side by side; what changed in the suites.

    By default every target name the runs share is compared."""
    from harness.config import load_config
    from reports.compare import compare_runs
    from reports.compare_render import render_compare

    store = open_store(db, load_config(config_path))
    doc = compare_runs(
        store,
        baseline,
        candidate,
        target=target,
        baseline_target=baseline_target,
        candidate_target=candidate_target,
    )
    text = render_compare(doc, fmt)
    write_output(text, output)
