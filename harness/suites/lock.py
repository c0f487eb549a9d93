"""The suite lock: `suites.lock` records each suite's version and content hash, and every version -> hash ever
locked, so that `harness suites check` (pre-commit, CI) fails when a suite's content changed without a version
bump, or when a version was reused with other content, even versions that are no longer the latest.

The lock is JSON with sorted keys, one suite per key, paths relative to the lock's folder (so the same lock
holds on every machine and its diffs are small and stable)::

    {"format": 1, "generated_by": "harness suites lock",
     "suites": {"factual-qa": {"version": "1.0.0", "sha256": "...", "cases": 14,
                               "path": "examples/factual_qa.yaml",
                               "history": [{"version": "1.0.0", "sha256": "..."}]}}}

A suite whose file is gone stays in the lock with `"removed": true`: its history still forbids reusing one of
its versions with other content if it comes back.

Judge canary sets (`*.canaries.yaml`, judges/canaries.py) are versioned like suites: each is locked under its
`canaries` name, its item count in `cases`, and checked by the same rules.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from harness.errors import UserError
from harness.suites.loader import discover_suite_files, is_canary_file, load_suite
from judges.canaries import discover_canary_files, load_canaries

LOCK_NAME = "suites.lock"
LOCK_FORMAT = 1
GENERATED_BY = "harness suites lock"
ProblemKind = Literal["changed", "reused", "backwards", "duplicate", "new", "unlocked", "gone"]
FORCEABLE: frozenset[str] = frozenset({"changed", "reused", "backwards"})  # `lock --force` overwrites these
FIXED_BY_LOCK: frozenset[str] = frozenset({"new", "unlocked", "gone"})  # `lock` records these as they are


@dataclass(frozen=True)
class Found:
    """A suite as it is on disk now."""

    name: str
    version: str
    sha256: str
    cases: int
    path: str  # relative to the lock's folder, with forward slashes


@dataclass(frozen=True)
class Entry:
    """A suite as the lock records it."""

    name: str
    version: str
    sha256: str
    cases: int
    path: str
    history: dict[str, str] = field(default_factory=dict)  # every version ever locked -> its content hash
    removed: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "sha256": self.sha256,
            "cases": self.cases,
            "path": self.path,
            "history": [
                {"version": v, "sha256": h} for v, h in sorted(self.history.items(), key=lambda i: version_key(i[0]))
            ],
        }
        if self.removed:
            out["removed"] = True
        return out


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    suite: str
    message: str


def version_key(version: str) -> tuple[tuple[int, ...], int, tuple[tuple[int, int, str], ...]]:
    """Semantic-version precedence: MAJOR.MINOR.PATCH, a pre-release (`-rc.1`) below its release, build
    metadata (`+build`) ignored."""
    core, _, _build = version.partition("+")
    core, dash, pre = core.partition("-")
    numbers = tuple(int(part) if part.isdigit() else 0 for part in core.split("."))
    if not dash:
        return numbers, 1, ()
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return numbers, 0, ids


def default_lock_path(paths: Sequence[str | Path]) -> Path:
    """`<first path>/suites.lock` (the folder of the first path when it is a file)."""
    first = Path(paths[0])
    return (first.parent if first.is_file() else first) / LOCK_NAME


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path.resolve(), base.resolve())).as_posix()


def scan(paths: Sequence[str | Path], lock_path: Path) -> list[Found]:
    """Load every suite and judge canary set under `paths` (a bad one is a UserError); their paths relative to
    the lock's folder."""
    canary_files = discover_canary_files(list(paths))
    suite_paths = [p for p in paths if not is_canary_file(p)]
    found = []
    for file in discover_suite_files(suite_paths, empty_ok=bool(canary_files)):
        suite = load_suite(file)
        found.append(
            Found(suite.name, suite.version, suite.content_hash, suite.case_count, _relative(file, lock_path.parent))
        )
    for file in canary_files:
        canaries = load_canaries(file)
        found.append(
            Found(
                canaries.name,
                canaries.version,
                canaries.content_hash,
                len(canaries.items),
                _relative(file, lock_path.parent),
            )
        )
    return found


def read_lock(path: Path, missing_ok: bool = False) -> dict[str, Entry]:
    """The lock's entries by suite name. A missing file is {} when `missing_ok`, else a UserError; an unreadable
    or malformed one is always a UserError."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise UserError("no suite lock here; create it with `harness suites lock`", file=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the suite lock ({exc})", file=path) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"the suite lock is not valid JSON: {exc.msg}", file=path, line=exc.lineno) from None
    if not isinstance(doc, dict) or doc.get("format") != LOCK_FORMAT or not isinstance(doc.get("suites"), dict):
        raise UserError(
            f"not a suite lock (expected a JSON object with format {LOCK_FORMAT} and `suites`); "
            "regenerate it with `harness suites lock`",
            file=path,
        )
    return {name: _entry(name, data, path) for name, data in doc["suites"].items()}


def _entry(name: str, data: Any, path: Path) -> Entry:
    where = f"suites.{name}"
    try:
        history = {str(h["version"]): str(h["sha256"]) for h in data.get("history", [])}
        entry = Entry(
            name=name,
            version=str(data["version"]),
            sha256=str(data["sha256"]),
            cases=int(data.get("cases", 0)),
            path=str(data["path"]),
            history=history,
            removed=bool(data.get("removed", False)),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise UserError(
            f"malformed suite entry ({detail}); regenerate with `harness suites lock`", file=path, field=where
        ) from None
    return entry


def render_lock(entries: dict[str, Entry]) -> str:
    doc = {
        "format": LOCK_FORMAT,
        "generated_by": GENERATED_BY,
        "suites": {name: entries[name].to_json() for name in sorted(entries)},
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_lock(path: Path, entries: dict[str, Entry]) -> bool:
    """Write the lock (atomically); False when the file already says exactly this."""
    text = render_lock(entries)
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UserError(f"cannot write the suite lock ({exc.strerror or exc})", file=path) from None
    return True


def _short(digest: str) -> str:
    return digest[:16]


def problems(found: list[Found], entries: dict[str, Entry], lock_dir: Path) -> list[Problem]:
    """Everything that makes the suites on disk disagree with the lock, in suite-name order."""
    out: list[Problem] = []
    by_name: dict[str, list[Found]] = {}
    for f in found:
        by_name.setdefault(f.name, []).append(f)
    for name in sorted(by_name):
        files = by_name[name]
        if len(files) > 1:
            out.append(
                Problem(
                    "duplicate",
                    name,
                    f"{name}: {len(files)} suite files share this suite name: {', '.join(f.path for f in files)}; "
                    "a suite name must be unique",
                )
            )
            continue
        out.extend(_compare(files[0], entries.get(name)))
    scanned = {f.path for f in found}
    for name in sorted(set(entries) - set(by_name)):
        entry = entries[name]
        if entry.removed or (entry.path not in scanned and (lock_dir / entry.path).is_file()):
            continue  # recorded as removed, or a suite outside the paths checked now
        out.append(
            Problem(
                "gone",
                name,
                f"{name}: in the lock ({entry.path}, {entry.version}) but no suite file has it any more; "
                "run `harness suites lock` to record its removal",
            )
        )
    return out


def _compare(f: Found, entry: Entry | None) -> list[Problem]:
    where = f"{f.name} ({f.path})"
    if entry is None:
        return [Problem("new", f.name, f"{where}: not in the lock; run `harness suites lock`")]
    locked_here = entry.history.get(f.version)
    if f.version == entry.version and not entry.removed:
        if f.sha256 == entry.sha256:
            return []
        return [
            Problem(
                "changed",
                f.name,
                f"{where}: content changed without a version bump: version {f.version} was locked with sha256 "
                f"{_short(entry.sha256)}, the content now hashes to {_short(f.sha256)}; bump `version` in the "
                "suite file, then run `harness suites lock`",
            )
        ]
    if locked_here is not None and locked_here != f.sha256:
        return [
            Problem(
                "reused",
                f.name,
                f"{where}: version {f.version} reused with new content: it was locked before with sha256 "
                f"{_short(locked_here)}, the content now hashes to {_short(f.sha256)}; give it a new version",
            )
        ]
    if version_key(f.version) < version_key(entry.version):
        return [
            Problem(
                "backwards",
                f.name,
                f"{where}: version went backwards: {f.version} is below the locked {entry.version}; "
                "versions only go up",
            )
        ]
    state = "locked as removed" if entry.removed else f"the lock has {entry.version}"
    return [
        Problem("unlocked", f.name, f"{where}: version {f.version} is not locked ({state}); run `harness suites lock`")
    ]


def updated(found: list[Found], entries: dict[str, Entry], lock_dir: Path) -> dict[str, Entry]:
    """The lock after recording the suites on disk: each found suite's version and hash (added to its history),
    suites whose file is gone marked removed, suites outside the scanned paths kept as they are. The caller
    decides first which problems (see FORCEABLE) may be overwritten."""
    out = dict(entries)
    for f in found:
        old = entries.get(f.name)
        history = {**(old.history if old else {}), f.version: f.sha256}
        out[f.name] = Entry(f.name, f.version, f.sha256, f.cases, f.path, history)
    for problem in problems(found, entries, lock_dir):
        if problem.kind == "gone":
            out[problem.suite] = replace(entries[problem.suite], removed=True)
    return out
