"""`harness suites lock` and `harness suites check`: keep `prompt_suites/suites.lock` (each suite's version and
content hash, and every version -> hash ever locked) in step with the suite files; meant for pre-commit and CI.

harness.cli adds these commands to its `suites` group; this module must not import harness.cli (under
`python -m harness.cli` that would load a second copy mid-import).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

DEFAULT_PATHS = ("prompt_suites",)
_paths = click.argument("paths", nargs=-1)
_lock_option = click.option(
    "--lock",
    "lock_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The lock file (default: suites.lock in the first PATH, or beside it when it is a file).",
)


def _resolve(paths: tuple[str, ...], lock_path: Path | None) -> tuple[tuple[str, ...], Path]:
    from harness.suites.lock import default_lock_path

    paths = paths or DEFAULT_PATHS
    return paths, lock_path or default_lock_path(paths)


@click.command("lock")
@_paths
@_lock_option
@click.option(
    "--force",
    is_flag=True,
    help="Record the suites as they are even where a version's content changed, a version was reused or a "
    "version went backwards (e.g. for a suite not released yet).",
)
def suites_lock(paths: tuple[str, ...], lock_path: Path | None, force: bool) -> None:
    """Record name, version and content hash of every suite under PATHS (default prompt_suites/) in the lock.

    Refuses (exit 1) where `harness suites check` would find a suite whose content changed without a version
    bump, a reused version or a version gone backwards, unless --force."""
    from harness.suites.lock import FORCEABLE, problems, read_lock, scan, updated, write_lock

    paths, lock_path = _resolve(paths, lock_path)
    found = scan(paths, lock_path)
    entries = read_lock(lock_path, missing_ok=True)
    found_problems = problems(found, entries, lock_path.parent)
    blocking = [p for p in found_problems if p.kind == "duplicate" or (p.kind in FORCEABLE and not force)]
    if blocking:
        for p in blocking:
            click.echo(f"error: {p.message}", err=True)
        if any(p.kind in FORCEABLE for p in blocking):
            click.echo("nothing written; fix the versions, or overwrite with `harness suites lock --force`", err=True)
        sys.exit(1)
    new = updated(found, entries, lock_path.parent)
    for p in found_problems:
        old, now = entries.get(p.suite), new[p.suite]
        was = f"{old.version} {old.sha256[:16]}" if old is not None else "not locked"
        what = "removed" if now.removed else f"{now.version} {now.sha256[:16]}"
        click.echo(f"{'overwrote' if p.kind in FORCEABLE else 'locked'} {p.suite}: {was} -> {what}", err=True)
    written = write_lock(lock_path, new)
    suites = sorted({f.name for f in found})
    click.echo(f"{'wrote' if written else 'up to date:'} {lock_path} ({len(suites)} suites: {', '.join(suites)})")


@click.command("check")
@_paths
@_lock_option
def suites_check(paths: tuple[str, ...], lock_path: Path | None) -> None:
    """Check the suites under PATHS (default prompt_suites/) against the lock: exit 1 when a suite's content
    changed without a version bump, a version was reused with new content or went backwards, two files share a
    suite name, or a suite or version is not locked yet; exit 0 when all agree."""
    from harness.suites.lock import problems, read_lock, scan

    paths, lock_path = _resolve(paths, lock_path)
    entries = read_lock(lock_path)
    found = scan(paths, lock_path)
    found_problems = problems(found, entries, lock_path.parent)
    if found_problems:
        for p in found_problems:
            click.echo(f"error: {p.message}", err=True)
        click.echo(f"{len(found_problems)} problem(s) with {lock_path}", err=True)
        sys.exit(1)
    click.echo(f"ok: {len(found)} suites agree with {lock_path}")
