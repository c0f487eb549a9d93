"""`harness suites lock` and `harness suites check`: keep `prompt_suites/suites.lock` (each suite's version and
content hash, and every version -> hash ever locked) in step with the suite files; meant for pre-commit and CI.
`harness suites overlap`: no fine-tuning prompt (prompt_suites/training/sft.jsonl) is an evaluation case.

harness.cli adds these commands to its `suites` group; this module must not import harness.cli (under
`python -m harness.cli` that would load a second copy mid-import).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

DEFAULT_PATHS = ("prompt_suites",)
DEFAULT_TRAIN = Path("prompt_suites/training/sft.jsonl")
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


@click.command("overlap")
@_paths
@click.option(
    "--train",
    "train_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_TRAIN,
    show_default=True,
    help="The fine-tuning set: JSONL of {id, task, messages, response}.",
)
def suites_overlap(paths: tuple[str, ...], train_path: Path) -> None:
    """Check that no training prompt in --train is an evaluation case of a suite under PATHS (default
    prompt_suites/; the training file's folder and *.canaries.yaml are skipped): user messages are compared,
    exactly after normalisation and by word 3-gram and character 5-gram Jaccard similarity. Exit 1 on any
    overlap, 2 on a malformed training file or suite, 0 when clean."""
    from harness.suites.overlap import CHAR_THRESHOLD, WORD_THRESHOLD, scan, shorten

    result = scan(train_path, paths or DEFAULT_PATHS)
    where = (
        f"{result.training_prompts} training prompts vs {result.cases} evaluation cases in {len(result.suites)} suites"
    )
    for o in result.overlaps:
        click.echo(
            f"overlap: {o.train_id} (line {o.train_line}) ~ {o.suite}/{o.case_id}: {o.kind}, similarity "
            f"{o.similarity:.2f} (word 3-gram {o.word_jaccard:.2f}, char 5-gram {o.char_jaccard:.2f})"
        )
        click.echo(f"  train: {shorten(o.train_text)}")
        click.echo(f"  eval:  {shorten(o.eval_text)}")
    if result.overlaps:
        click.echo(
            f"{len(result.overlaps)} overlap(s) in {train_path}: {where} "
            f"(near: word 3-gram >= {WORD_THRESHOLD} or char 5-gram >= {CHAR_THRESHOLD})",
            err=True,
        )
        sys.exit(1)
    best = ""
    if result.best is not None:
        b = result.best
        best = f"; most similar: {b.train_id} ~ {b.suite}/{b.case_id} at {b.similarity:.2f}"
    click.echo(f"no overlap: {where}{best}")
