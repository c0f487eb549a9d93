"""Baselines: a compact, committable snapshot of a run, and the way back from it to something compare can read.

`harness baseline export RUN -o baselines/NAME.json` writes, for every response: suite, case id, target, sample,
outcome (status, verdict, which checks passed), and every judge verdict per criterion (judge, judge sample, score,
status); plus the suites' versions and content hashes, each case's content (so a changed case is detected), and
the target and judge specs (never a key: specs name the environment variable that holds it). No response text and
no rationale: the file stays small enough to commit, and a gate needs no database from the night before.

A baseline file is read back by materialising it as a run in a private in-memory copy of the store, so the very
same comparison code runs on a stored baseline and on a file (reports.compare), with nothing written to disk.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import orjson

from harness import __version__
from harness.errors import UserError
from harness.store import Store
from reports.summary import case_rows

SCHEMA = "judge-harness/baseline@1"


def export_baseline(store: Store, run_id: str) -> dict[str, Any]:
    """The snapshot document of a run (schema judge-harness/baseline@1)."""
    run = store.run(run_id)
    config = run["config"]
    results = []
    for r in case_rows(store, run["run_id"]):
        results.append(
            {
                "suite": r["suite"],
                "case_id": r["case_id"],
                "target": r["target"],
                "sample": r["sample"],
                "status": r["status"],
                "verdict": r["verdict"],
                "error": None if r["error"] is None else str(r["error"])[:200],
                "checks": [{"check": c["check"], "passed": bool(c["passed"])} for c in r["checks"]],
                "scores": {
                    criterion: [
                        {
                            "judge": v["judge"],
                            "sample": v.get("sample", 0),
                            "score": v["score"],
                            "status": v["status"],
                            "reason": v["reason"],
                        }
                        for v in combined["verdicts"]
                    ]
                    for criterion, combined in r["scores"].items()
                },
            }
        )
    return {
        "schema": SCHEMA,
        "exported_from": {
            "run_id": run["run_id"],
            "name": run["name"],
            "created_at": run["created_at"],
            "harness_version": run["harness_version"],
        },
        "config": {k: config.get(k) for k in ("suites", "targets", "judge", "judges", "judge_method", "samples")},
        "cases": [{"suite": c["suite"], "case_id": c["case_id"], "data": c} for c in store.iter_cases(run["run_id"])],
        "results": results,
    }


def write_baseline(store: Store, run_id: str, path: Path) -> dict[str, Any]:
    """Write the snapshot as JSON with one case and one result per line: small, and a refreshed baseline shows in
    a code review as the lines of the results that changed."""
    doc = export_baseline(store, run_id)
    head = {k: v for k, v in doc.items() if k not in ("cases", "results")}
    parts = [orjson.dumps(head, option=orjson.OPT_SORT_KEYS)[:-1]]
    for key in ("cases", "results"):
        rows = b",\n".join(orjson.dumps(x, option=orjson.OPT_SORT_KEYS) for x in doc[key])
        parts.append(b',\n"' + key.encode() + b'": [\n' + rows + b"\n]")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(parts) + b"}\n")
    return doc


def read_baseline(path: Path) -> dict[str, Any]:
    """Read and check a baseline file; one UserError naming the file and field when it is not one."""
    try:
        doc = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise UserError(f"cannot read the baseline ({exc.strerror})", file=path) from None
    except orjson.JSONDecodeError as exc:
        raise UserError(f"not JSON: {exc}", file=path) from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise UserError(
            f"not a baseline file: schema is {found!r}, expected {SCHEMA!r} (write one with `harness baseline export`)",
            file=path,
            field="schema",
        )
    for key in ("config", "cases", "results"):
        if key not in doc:
            raise UserError(f"the baseline has no '{key}'", file=path, field=key)
    for n, r in enumerate(doc["results"]):
        where = f"results[{n}]"
        if not isinstance(r, dict):
            raise UserError("a result must be an object", file=path, field=where)
        missing = [k for k in ("suite", "case_id", "target", "sample", "status", "checks", "scores") if k not in r]
        if missing:
            raise UserError(f"result {n} lacks {', '.join(missing)}", file=path, field=where)
        if not isinstance(r["checks"], list) or not all(isinstance(c, dict) and "passed" in c for c in r["checks"]):
            raise UserError("checks must be a list of {check, passed}", file=path, field=f"{where}.checks")
        if not isinstance(r["scores"], dict):
            raise UserError("scores must map a criterion to its verdicts", file=path, field=f"{where}.scores")
        for criterion, verdicts in r["scores"].items():
            field = f"{where}.scores.{criterion}"
            if not isinstance(verdicts, list) or not all(
                isinstance(v, dict) and {"judge", "score", "status"} <= set(v) for v in verdicts
            ):
                raise UserError(
                    "a criterion's verdicts must be a list of {judge, score, status}", file=path, field=field
                )
    return dict(doc)


def _judge_calls(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The snapshot's verdicts regrouped as judge calls: one per (judge, judge sample), its criteria inside."""
    calls: dict[tuple[str, int], dict[str, Any]] = {}
    for criterion, verdicts in result["scores"].items():
        for v in verdicts:
            call = calls.setdefault(
                (v["judge"], int(v.get("sample") or 0)),
                {
                    "judge": v["judge"],
                    "judge_sample": int(v.get("sample") or 0),
                    "template": "baseline",
                    "template_sha256": "",
                    "prompt": [],
                    "raw": None,
                    "status": "ok",
                    "reason": None,
                    "judgments": [],
                },
            )
            call["judgments"].append(
                {
                    "criterion": criterion,
                    "score": v["score"],
                    "score_kind": "int",
                    "rationale": None,
                    "status": v["status"],
                    "reason": v.get("reason"),
                }
            )
    return list(calls.values())


def materialise(store: Store, path: Path) -> tuple[Store, str]:
    """A private in-memory copy of `store` holding the baseline file as one more run; returns it and the run id.
    The user's store is only read."""
    doc = read_baseline(path)
    memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    store.commit()
    store.db.backup(memory)
    copy = Store.__new__(Store)
    copy.path, copy.db, copy._pending = store.path, memory, 0
    memory.row_factory = sqlite3.Row
    responses = [
        {
            "suite": r["suite"],
            "case_id": r["case_id"],
            "target": r["target"],
            "sample": int(r["sample"]),
            "status": r["status"],
            "error": r.get("error"),
            "checks": [{"check": c["check"], "passed": c["passed"], "detail": ""} for c in r["checks"]],
            "text": None,
            "cache_key": f"baseline:{n}",
            "judge_calls": _judge_calls(r),
        }
        for n, r in enumerate(doc["results"])
    ]
    origin = doc.get("exported_from") or {}
    config = {**doc["config"], "baseline_file": {"path": str(path.resolve()), **origin}}
    fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
    name = f"baseline:{path.name}"
    run_id = copy.create_imported_run(
        name,
        fingerprint,
        __version__,
        config,
        cases=[{"suite": c["suite"], "case_id": c["case_id"], "data": c["data"]} for c in doc["cases"]],
        responses=responses,
    )
    return copy, run_id


def resolve_baseline(store: Store, baseline: str) -> tuple[Store, str]:
    """A baseline given as a run id/name of `store`, or as a baseline file path: the store to read and the run id."""
    path = Path(baseline)
    if path.suffix == ".json" or path.exists():
        return materialise(store, path)
    return store, str(store.run(baseline)["run_id"])
