"""`harness failover RUN_ID... --primary NAME`: rank the other targets as fallbacks for the primary, with anomaly
flags, a cost table, and the chain as a LiteLLM Router `fallbacks` config and as plain JSON.

harness.cli registers the command; this module imports only harness.cli_common (never harness.cli)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from harness.cli_common import config_option, db_option, open_store, write_output
from harness.errors import UserError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def _prices(values: tuple[str, ...], gpu_hours: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """--price NAME=IN:OUT (USD per 1M tokens) and --gpu-hour NAME=USD, as price records."""
    out: dict[str, dict[str, Any]] = {}
    for value in values:
        name, _, rest = value.partition("=")
        parts = rest.split(":")
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            numbers = []
        if not name or len(numbers) != 2 or min(numbers) < 0:
            raise UserError(f"{value!r}: expected NAME=IN:OUT (USD per 1M input and output tokens)", field="--price")
        out[name] = {"input": numbers[0], "output": numbers[1], "source": "--price"}
    for value in gpu_hours:
        name, _, usd = value.partition("=")
        try:
            price = float(usd)
        except ValueError:
            price = -1.0
        if not name or price < 0:
            raise UserError(f"{value!r}: expected NAME=USD (price per GPU-hour)", field="--gpu-hour")
        out[name] = {"gpu_hour": price, "source": "--gpu-hour"}
    return out


@click.command("failover")
@click.argument("run_ids", nargs=-1, required=True, metavar="RUN_ID...")
@click.option("--primary", required=True, help="The target the others would stand in for.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "md", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file (default: standard output).",
)
@click.option(
    "--emit-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the fallback chain as a LiteLLM config (.yaml/.yml) or as plain JSON (.json).",
)
@click.option("--exclude-flagged", is_flag=True, help="Leave flagged candidates out of the fallback chain.")
@click.option(
    "--price",
    "prices",
    multiple=True,
    metavar="NAME=IN:OUT",
    help="A target's token price (USD per 1M input and output tokens), over the one recorded. Repeatable.",
)
@click.option(
    "--gpu-hour",
    "gpu_hours",
    multiple=True,
    metavar="NAME=USD",
    help="A self-hosted target's GPU-hour price, over the one recorded. Repeatable.",
)
@db_option
@config_option
def failover_cmd(
    run_ids: tuple[str, ...],
    primary: str,
    fmt: str,
    output: Path | None,
    emit_config: Path | None,
    exclude_flagged: bool,
    prices: tuple[str, ...],
    gpu_hours: tuple[str, ...],
    db: Path | None,
    config_path: Path | None,
) -> None:
    """Rank the targets of RUN_ID... (ids or names; responses pooled by target name, paired on suite, case and
    sample) as fallbacks for --primary: paired score delta with its CI, quality retained, pass agreement,
    distribution distance, availability, errors, latency and cost; anomaly flags; the chain as a config."""
    from harness.config import load_config
    from reports.failover import failover
    from reports.failover_render import render_failover
    from reports.render import render_json

    if emit_config is not None and emit_config.suffix.lower() not in CONFIG_SUFFIXES:
        raise UserError("the config file must end in .yaml, .yml or .json", field="--emit-config", file=emit_config)
    overrides = _prices(prices, gpu_hours)
    doc = failover(open_store(db, load_config(config_path)), run_ids, primary, overrides, exclude_flagged)
    text = render_failover(doc, fmt)
    if emit_config is not None:
        config = doc["fallback_config"]
        is_json = emit_config.suffix.lower() == ".json"
        write_output(render_json(config["json"]) if is_json else config["litellm_yaml"], emit_config)
    write_output(text, output)
