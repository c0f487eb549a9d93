"""`harness import ...` and `harness judges ...`: bring outside judgments into the store, and measure judges
(pairwise reliability, calibration against human labels).

harness.cli registers these groups; the shared options and output helpers come from harness.cli_common (this
module must not import harness.cli: under `python -m harness.cli` that would load a second copy mid-import).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.cli_common import FORMATS, config_option, db_option, echo_json, open_store, table


def _pct(value: float | None) -> str | None:
    return None if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 3) -> str | None:
    return None if value is None else f"{value:.{digits}f}"


@click.group("import")
def import_group() -> None:
    """Import judgments made elsewhere into the store, as a run."""


@import_group.command("pairwise-jsonl")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="A name for the new run (usable in place of its id).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@db_option
@config_option
def import_pairwise(file: Path, name: str | None, fmt: str, db: Path | None, config_path: Path | None) -> None:
    """Import FILE, pairwise verdicts one JSON object a line (case_id, model_a, model_b, judge, first, winner,
    optional gold, suite, sample, instruction, response_a, response_b), as a new run; print its id.

    The whole file is validated first: a bad line is reported with its line number and nothing is written."""
    from harness.config import load_config
    from harness.importers import read_pairwise_jsonl, write_pairwise_run

    verdicts, sha256 = read_pairwise_jsonl(file)  # all of it, before the store is even opened
    result = write_pairwise_run(open_store(db, load_config(config_path)), file, verdicts, sha256, name)
    if fmt == "json":
        echo_json(
            {"run_id": result.run_id, "pairs": result.pairs, "verdicts": result.verdicts, "judges": result.judges}
        )
        return
    click.echo(
        f"imported {result.verdicts} verdicts on {result.pairs} pairs by {', '.join(result.judges)} from {file}",
        err=True,
    )
    click.echo(result.run_id)


@import_group.command("alpaca-eval")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="A name for the new run (usable in place of its id).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@db_option
@config_option
def import_alpaca_eval_cmd(
    files: tuple[Path, ...], name: str | None, fmt: str, db: Path | None, config_path: Path | None
) -> None:
    """Import AlpacaEval annotations.json FILES (each a JSON array of judgments of generator_2 against the
    baseline generator_1, preference in [1, 2]) as ONE pairwise run; print its id and, per annotator and model,
    the win rate against the baseline, its standard error, wins, losses and draws (as AlpacaEval's leaderboard:
    the table in percent; JSON as reports give them, win_rate and standard_error in 0-1).

    Every file is validated first: a bad element is reported with its file, line and field, and nothing is
    written."""
    from harness.config import load_config
    from harness.importers.alpaca_eval import read_alpaca_eval, write_alpaca_eval_run
    from reports.pairwise import pairwise_table

    parsed = read_alpaca_eval(list(files))  # all of them, before the store is even opened
    store = open_store(db, load_config(config_path))
    result = write_alpaca_eval_run(store, parsed, name)
    entries = [
        e
        for e in pairwise_table(store.pairwise(result.run_id))
        if e["model"] in result.models and e["opponent"] in result.baselines
    ]
    if fmt == "json":
        echo_json(
            {
                "run_id": result.run_id,
                "annotations": result.annotations,
                "models": result.models,
                "baselines": result.baselines,
                "judges": result.judges,
                "win_rates": entries,
            }
        )
        return
    click.echo(
        f"imported {result.annotations} annotations of {len(result.models)} models against "
        f"{', '.join(result.baselines)} by {', '.join(result.judges)}",
        err=True,
    )
    click.echo(
        table(
            ["judge", "model", "baseline", "win rate", "std err", "wins", "losses", "draws", "n", "unscored"],
            [
                [
                    e["judge"],
                    e["model"],
                    e["opponent"],
                    _num(None if e["win_rate"] is None else 100 * e["win_rate"], 2),
                    _num(None if e["standard_error"] is None else 100 * e["standard_error"], 2),
                    e["wins"],
                    e["losses"],
                    e["ties"],
                    e["n"],
                    e["unscored"],
                ]
                for e in entries
            ],
        ),
        err=True,
    )
    click.echo(result.run_id)


@import_group.command("mt-bench")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="A name for the new run (usable in place of its id).")
@click.option(
    "--threshold",
    type=click.IntRange(1, 10),
    default=8,
    show_default=True,
    help="The pass threshold on MT-Bench's 1-10 scale: a response passes with a score of at least this.",
)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@db_option
@config_option
def import_mt_bench_cmd(
    file: Path, name: str | None, threshold: int, fmt: str, db: Path | None, config_path: Path | None
) -> None:
    """Import FILE, FastChat MT-Bench single-answer judgments (JSONL: question_id, model, judge, user_prompt,
    judgment, score 1-10 or -1, turn), as one judged run: a case per question and turn (tagged turn-1 / turn-2),
    a response per model and case, criterion "mt_bench". Print its id and the mean score per model and turn
    (-1 scores are left out, counted as unscored).

    The whole file is validated first: a bad line is reported with its line number and field, and nothing is
    written."""
    from harness.config import load_config
    from harness.importers.mt_bench import read_mt_bench, write_mt_bench_run

    graded, sha256 = read_mt_bench(file)  # all of it, before the store is even opened
    result = write_mt_bench_run(open_store(db, load_config(config_path)), file, graded, sha256, name, threshold)
    if fmt == "json":
        echo_json(
            {
                "run_id": result.run_id,
                "judgments": result.judgments,
                "cases": result.cases,
                "judges": result.judges,
                "threshold": threshold,
                "models": {
                    m.model: {"n": m.n, "unscored": m.unscored, "mean": m.mean, "turns": m.turns} for m in result.models
                },
            }
        )
        return
    turns = sorted({t for m in result.models for t in m.turns})
    click.echo(
        f"imported {result.judgments} judgments on {result.cases} cases by {', '.join(result.judges)} from {file}",
        err=True,
    )
    click.echo(
        table(
            ["model", "n", "unscored", "mean", *[f"turn {t}" for t in turns]],
            [
                [m.model, m.n, m.unscored, _num(m.mean, 3), *[_num(m.turns.get(t), 3) for t in turns]]
                for m in result.models
            ],
        ),
        err=True,
    )
    click.echo(result.run_id)


@import_group.command("lm-eval-samples")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model-name",
    default=None,
    help="The model that wrote the samples (default: as named by the results_<timestamp>.json beside each file).",
)
@click.option("--name", default=None, help="A name for the new run (usable in place of its id).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@db_option
@config_option
def import_lm_eval_samples_cmd(
    files: tuple[Path, ...],
    model_name: str | None,
    name: str | None,
    fmt: str,
    db: Path | None,
    config_path: Path | None,
) -> None:
    """Import lm-evaluation-harness samples FILES (samples_<task>_<timestamp>.jsonl, from --log_samples or
    --predict_only; generate_until tasks) as one run: a case per task and document, a response per model,
    document and generation, lm-eval's 0/1 metrics as checks and other numeric metrics as scores. Print its id and,
    per target and task, each metric's mean (lm-eval's figure); `harness judge RUN --judge SPEC` then judges it.

    Every file is validated first: a bad line is reported with its file, line and field, and nothing is written."""
    from harness.config import load_config
    from harness.importers.lm_eval_samples import read_lm_eval_samples, write_lm_eval_run

    parsed = read_lm_eval_samples(list(files), model_name)  # all of them, before the store is even opened
    result = write_lm_eval_run(open_store(db, load_config(config_path)), parsed, name)
    if fmt == "json":
        echo_json(
            {
                "run_id": result.run_id,
                "cases": result.cases,
                "responses": result.responses,
                "targets": result.targets,
                "tasks": result.figures,
                "skipped_metrics": result.skipped_metrics,
            }
        )
        return
    click.echo(f"imported {result.responses} responses on {result.cases} cases from {len(files)} files", err=True)
    click.echo(
        table(
            ["target", "task", "docs", "responses", "metric", "mean"],
            [
                [f["target"], f["task"], f["docs"], f["responses"], metric, _num(mean, 4)]
                for f in result.figures
                for metric, mean in (f["metrics"] or {"–": None}).items()
            ],
        ),
        err=True,
    )
    if result.skipped_metrics:
        click.echo(f"not imported (not a number per document): {', '.join(result.skipped_metrics)}", err=True)
    click.echo(result.run_id)


@import_group.command("promptfoo")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="A name for the new run (usable in place of its id).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@db_option
@config_option
def import_promptfoo_cmd(file: Path, name: str | None, fmt: str, db: Path | None, config_path: Path | None) -> None:
    """Import FILE, the output of `promptfoo eval -o results.json`, as one run: a target per provider, a case per
    prompt and test, a response per result with its latency and tokens; promptfoo's assertions as checks (so the
    pass, fail and error counts are promptfoo's), its score and named scores as scores. Print its id and, per
    target, promptfoo's passes, failures, errors and cost.

    The whole file is validated first: a bad field is reported with its line, and nothing is written."""
    from harness.config import load_config
    from harness.importers.promptfoo import read_promptfoo, write_promptfoo_run

    parsed = read_promptfoo(file)  # all of it, before the store is even opened
    result = write_promptfoo_run(open_store(db, load_config(config_path)), parsed, name)
    if fmt == "json":
        echo_json(
            {
                "run_id": result.run_id,
                "results": result.results,
                "cases": result.cases,
                "targets": result.targets,
                "promptfoo_stats": result.stats,
            }
        )
        return
    click.echo(f"imported {result.results} results on {result.cases} cases from {file}", err=True)
    click.echo(
        table(
            ["target", "provider", "passed", "failed", "errors", "cost (USD)"],
            [
                [t["target"], t["provider"], t["passed"], t["failed"], t["errors"], f"{t['cost_usd']:.6g}"]
                for t in result.targets
            ],
        ),
        err=True,
    )
    click.echo(result.run_id)


@click.group("judges")
def judges_group() -> None:
    """Measure the judges of a run: position bias and agreement, calibration against human labels."""


@judges_group.command("reliability")
@click.argument("run_id")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@db_option
@config_option
def reliability_cmd(run_id: str, fmt: str, db: Path | None, config_path: Path | None) -> None:
    """Per judge of RUN_ID's pairwise verdicts: accuracy against gold in each order and in both, position
    consistency, Cohen's kappa between the two orders, and how often the response shown first wins."""
    from harness.config import load_config
    from judges.reliability import reliability

    doc = reliability(open_store(db, load_config(config_path)), run_id)
    if fmt == "json":
        echo_json(doc)
        return
    judges: dict[str, dict[str, Any]] = doc["judges"]
    click.echo(f"run {doc['run_id']}: pairs judged in both orders")
    click.echo(
        table(
            [
                "judge",
                "pairs",
                "with gold",
                "acc a first",
                "acc b first",
                "acc both",
                "consistent",
                "kappa orders",
                "first shown wins",
                "ties",
                "unscored",
            ],
            [
                [
                    judge,
                    r["pairs"],
                    r["pairs_with_gold"],
                    _pct(r["accuracy_a_first"]),
                    _pct(r["accuracy_b_first"]),
                    _pct(r["accuracy_both"]),
                    _pct(r["position_consistency"]),
                    _num(r["kappa_orders"]),
                    _pct(r["first_shown_win_rate"]),
                    r["ties"],
                    r["unscored"],
                ]
                for judge, r in judges.items()
            ],
        )
    )
    click.echo("\nwin rates (a win only when both orders agree, otherwise a tie)")
    click.echo(
        table(
            ["judge", "model", "pairs", "wins", "losses", "ties", "win rate", "score"],
            [
                [judge, model, w["pairs"], w["wins"], w["losses"], w["ties"], _pct(w["win_rate"]), _pct(w["score"])]
                for judge, r in judges.items()
                for model, w in r["win_rates"].items()
            ],
        )
    )


@judges_group.command("calibrate")
@click.argument("run_id")
@click.option(
    "--labels",
    "labels",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Human labels: JSONL (or .csv) of score labels {suite, case_id, target, sample, criterion, score} "
    "and/or preference labels {case_id, model_a, model_b, winner}.",
)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@db_option
@config_option
def calibrate_cmd(run_id: str, labels: Path, fmt: str, db: Path | None, config_path: Path | None) -> None:
    """Compare RUN_ID's judges with human labels: per criterion and judge, exact and within-one agreement,
    quadratic-weighted kappa and Spearman's rho; per judge, agreement with human pairwise preferences."""
    from harness.config import load_config
    from judges.calibration import calibrate

    doc = calibrate(open_store(db, load_config(config_path)), run_id, labels)
    if fmt == "json":
        echo_json(doc)
        return
    click.echo(f"run {doc['run_id']} against {doc['labels']}")
    if doc["scores"]:
        click.echo(
            table(
                ["criterion", "judge", "n", "labels", "exact", "within one", "kappa (quadratic)", "spearman", "p"],
                [
                    [
                        criterion,
                        judge,
                        r["n"],
                        r["labels"],
                        _pct(r["exact_agreement"]),
                        _pct(r["within_one"]),
                        _num(r["weighted_kappa"]),
                        _num(r["spearman_rho"]),
                        _num(r["spearman_p"], 4),
                    ]
                    for criterion, block in doc["scores"].items()
                    for judge, r in block.items()
                ],
            )
        )
    if doc["preferences"]:
        click.echo(
            table(
                ["judge", "n", "labels", "agreement", "verdict agreement", "kappa"],
                [
                    [
                        judge,
                        r["n"],
                        r["labels"],
                        _pct(r["agreement"]),
                        _pct(r["verdict_agreement"]),
                        _num(r["kappa"]),
                    ]
                    for judge, r in doc["preferences"].items()
                ],
            )
        )
    if doc["unmatched_labels"]:
        click.echo(f"{doc['unmatched_labels']} labels matched nothing in the run")
