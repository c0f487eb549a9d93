"""What every `harness` command module shares: the store and config options, JSON and table output, the event
loop. Kept apart from harness.cli so the command modules (cli_judges, cli_serve) import it without importing
harness.cli, which registers them."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from harness.config import Config
from harness.store import DEFAULT_DB, Store

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
FORMATS = click.Choice(["table", "json"])  # --format of commands that print results


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it is installed (a cheaper event loop per call), else on asyncio's own.

    The objects alive now (modules, suites) are moved out of the collector's sight and full collections are
    made rarer: a run allocates many short-lived objects per call and few cycles, and the default thresholds
    spend measurable CPU re-scanning the same long-lived heap."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - e.g. Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def db_option(f: F) -> F:
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"SQLite results store (default: harness.yaml `db`, else {DEFAULT_DB}).",
    )(f)


def config_option(f: F) -> F:
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="harness.yaml with named targets (default: ./harness.yaml when present).",
    )(f)


def open_store(db: Path | None, config: Config | None = None) -> Store:
    if db is None and config is not None and config.data.db:
        db = Path(config.data.db)
    return Store(db or DEFAULT_DB)


def echo_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[["–" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def write_output(text: str, output: Path | None) -> None:
    """A command's rendering: to standard output, or to the file given with -o (its folder made), said on stderr."""
    if output is None:
        click.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)
