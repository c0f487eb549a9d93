"""The results store: one SQLite file (WAL), written as results arrive, readable without the runner.

Tables: runs, cases (what each run asked), responses (one row per target x case x sample, the outcome
and check results), judge_calls (rendered judge prompt, raw reply, template), judgments (one row per
criterion), pairwise (one row per pairwise verdict: which response was shown first, the winner, and the
optional gold answer; written by pairwise judging and by `harness import pairwise-jsonl`), call_cache
(successful replies keyed by request, for reuse across runs), bench_results (lm-evaluation-harness metrics of
`harness bench`: one row per target x task x metric x filter, with its stderr), canary_judgments (each judge's
scores of the judge canaries' known-good and known-bad responses: one row per judge x canary x side x criterion).
No secret is ever written here: targets are stored by provider, model, base URL and the *name* of
the environment variable holding the key.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from harness.errors import UserError

DEFAULT_DB = Path(".harness/results.db")
BATCH_LIMIT = 500  # cache-served outcomes written per commit at most
SCHEMA_VERSION = 3  # 3: canary_judgments
# columns added after version 1: (table, column, declaration); added in place to older stores on open
_ADDED_COLUMNS = (
    ("judge_calls", "judge_sample", "INTEGER NOT NULL DEFAULT 0"),
    ("judge_calls", "criterion", "TEXT"),
    ("judgments", "weighted_score", "REAL"),
    ("judgments", "weighted_note", "TEXT"),
    ("call_cache", "logprobs", "TEXT"),
    ("pairwise", "rationale", "TEXT"),
    ("judge_calls", "cache_key", "TEXT"),
    ("pairwise", "preference", "REAL"),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT PRIMARY KEY, name TEXT, fingerprint TEXT NOT NULL, status TEXT NOT NULL,
  created_at REAL NOT NULL, finished_at REAL, harness_version TEXT NOT NULL, config TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_fingerprint ON runs(fingerprint, created_at);
CREATE TABLE IF NOT EXISTS cases (
  run_id TEXT NOT NULL, suite TEXT NOT NULL, case_id TEXT NOT NULL, data TEXT NOT NULL,
  PRIMARY KEY (run_id, suite, case_id)
);
CREATE TABLE IF NOT EXISTS responses (
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, suite TEXT NOT NULL, case_id TEXT NOT NULL,
  target TEXT NOT NULL, sample INTEGER NOT NULL, status TEXT NOT NULL, text TEXT, error TEXT,
  finish_reason TEXT, tokens_in INTEGER, tokens_out INTEGER, latency_ms REAL, attempts INTEGER NOT NULL,
  from_cache INTEGER NOT NULL, cache_key TEXT NOT NULL, checks TEXT NOT NULL, created_at REAL NOT NULL,
  UNIQUE (run_id, suite, case_id, target, sample)
);
CREATE TABLE IF NOT EXISTS judge_calls (
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, response_id INTEGER NOT NULL, judge TEXT NOT NULL,
  template TEXT NOT NULL, template_sha256 TEXT NOT NULL, prompt TEXT NOT NULL, raw TEXT, status TEXT NOT NULL,
  reason TEXT, attempts INTEGER NOT NULL, tokens_in INTEGER, tokens_out INTEGER, latency_ms REAL,
  from_cache INTEGER NOT NULL, created_at REAL NOT NULL, judge_sample INTEGER NOT NULL DEFAULT 0,
  criterion TEXT, cache_key TEXT
);
CREATE INDEX IF NOT EXISTS judge_calls_response ON judge_calls(run_id, response_id);
CREATE TABLE IF NOT EXISTS judgments (
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, judge_call_id INTEGER NOT NULL, response_id INTEGER NOT NULL,
  criterion TEXT NOT NULL, score REAL, score_kind TEXT, rationale TEXT, status TEXT NOT NULL, reason TEXT,
  weighted_score REAL, weighted_note TEXT
);
CREATE INDEX IF NOT EXISTS judgments_run ON judgments(run_id);
CREATE TABLE IF NOT EXISTS pairwise (
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, suite TEXT NOT NULL, case_id TEXT NOT NULL, sample INTEGER NOT NULL,
  model_a TEXT NOT NULL, model_b TEXT NOT NULL, judge TEXT NOT NULL, first TEXT NOT NULL, winner TEXT, gold TEXT,
  instruction TEXT, response_a TEXT, response_b TEXT, status TEXT NOT NULL, reason TEXT, template TEXT,
  template_sha256 TEXT, prompt TEXT, raw TEXT, created_at REAL NOT NULL, rationale TEXT, preference REAL
);
CREATE INDEX IF NOT EXISTS pairwise_run ON pairwise(run_id);
CREATE TABLE IF NOT EXISTS bench_results (
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, target TEXT NOT NULL, task TEXT NOT NULL, metric TEXT NOT NULL,
  filter TEXT NOT NULL, value REAL, stderr REAL, n_samples INTEGER, task_version TEXT, higher_is_better INTEGER,
  is_group INTEGER NOT NULL DEFAULT 0, config TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS bench_results_run ON bench_results(run_id);
CREATE TABLE IF NOT EXISTS canary_judgments (
  id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, judge TEXT NOT NULL, canary_set TEXT NOT NULL, canary_id TEXT NOT NULL,
  kind TEXT NOT NULL, side TEXT NOT NULL, criterion TEXT NOT NULL, score REAL, rationale TEXT, status TEXT NOT NULL,
  reason TEXT, template TEXT, prompt TEXT, raw TEXT, attempts INTEGER NOT NULL, tokens_in INTEGER, tokens_out INTEGER,
  latency_ms REAL, from_cache INTEGER NOT NULL, cache_key TEXT, created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS canary_judgments_run ON canary_judgments(run_id);
CREATE TABLE IF NOT EXISTS call_cache (
  key TEXT PRIMARY KEY, text TEXT NOT NULL, finish_reason TEXT, tokens_in INTEGER, tokens_out INTEGER,
  latency_ms REAL, created_at REAL NOT NULL, logprobs TEXT
);
"""


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


@dataclass(frozen=True)
class Reply:
    """A successful model reply, as cached and as recorded."""

    text: str
    finish_reason: str | None
    tokens_in: int | None
    tokens_out: int | None
    latency_ms: float
    logprobs: list[dict[str, Any]] | None = None  # the reply's token logprobs (with top_logprobs), when asked


@dataclass(frozen=True)
class ScoredCriterion:
    """One criterion's verdict: the integer score the judge wrote, its rationale, and the logprob-weighted
    score (G-Eval) when the judge endpoint returned top logprobs, else None with `weighted_note` saying why."""

    score: float
    rationale: str
    weighted: float | None = None
    weighted_note: str | None = None


@dataclass(frozen=True)
class StoredResponse:
    id: int
    status: str
    text: str | None


class Store:
    """Synchronous SQLite access; each write commits at once, so a killed run loses nothing recorded."""

    def __init__(self, path: str | Path = DEFAULT_DB) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # durable against a killed process; WAL fsyncs at checkpoints
            self.db.execute("PRAGMA busy_timeout=10000")
            self.db.executescript(_SCHEMA)
            self._migrate()
            self.db.execute("CREATE INDEX IF NOT EXISTS judge_calls_key ON judge_calls(cache_key)")
        except (sqlite3.DatabaseError, OSError) as exc:
            raise UserError(f"cannot open the results store: {exc}", file=self.path) from None
        self.db.row_factory = sqlite3.Row
        self._pending = 0

    def _migrate(self) -> None:
        for table, column, decl in _ADDED_COLUMNS:
            present = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.commit()
        self.db.close()

    @contextmanager
    def _tx(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A transaction. A durable one commits at once (with any batched writes before it); a non-durable one
        (an outcome served from the cache: losing it to a crash costs no call, it is served again) may wait in
        an open batch of up to BATCH_LIMIT writes, which saves a commit per cached call."""
        if not self.db.in_transaction:
            self.db.execute("BEGIN")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            self._pending = 0
            raise
        self._pending += 1
        if durable or self._pending >= BATCH_LIMIT:
            self.commit()

    def commit(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")
        self._pending = 0

    # runs -----------------------------------------------------------------------------------------
    def create_run(self, name: str | None, fingerprint: str, harness_version: str, config: dict[str, Any]) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, 'running', ?, NULL, ?, ?)",
            (run_id, name, fingerprint, time.time(), harness_version, _json(config)),
        )
        self.commit()
        return run_id

    def resumable_run(self, fingerprint: str) -> str | None:
        row = self.db.execute(
            "SELECT run_id, status FROM runs WHERE fingerprint = ? ORDER BY created_at DESC LIMIT 1", (fingerprint,)
        ).fetchone()
        return str(row["run_id"]) if row is not None and row["status"] != "complete" else None

    def set_run_status(self, run_id: str, status: str) -> None:
        finished = time.time() if status == "complete" else None
        self.db.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", (status, finished, run_id))
        self.commit()

    def run(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            row = self.db.execute(
                "SELECT * FROM runs WHERE name = ? ORDER BY created_at DESC LIMIT 1", (run_id,)
            ).fetchone()
        if row is None:
            raise UserError(f"no run '{run_id}' in the store (see `harness runs`)", file=self.path)
        out = dict(row)
        out["config"] = orjson.loads(out["config"])
        return out

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.execute(
            """SELECT r.run_id, r.name, r.status, r.created_at, r.finished_at,
                      (SELECT COUNT(*) FROM responses s WHERE s.run_id = r.run_id) AS responses,
                      (SELECT COUNT(*) FROM judgments j WHERE j.run_id = r.run_id) AS judgments,
                      r.config
               FROM runs r ORDER BY r.created_at DESC LIMIT ?""",
            (limit,),
        ).fetchall()
        out = []
        for row in rows:
            item = dict(row)
            config = orjson.loads(item.pop("config"))
            item["suites"] = [f"{s['suite']}@{s['version']}" for s in config.get("suites", [])]
            item["targets"] = [t["name"] for t in config.get("targets", [])]
            out.append(item)
        return out

    # cases ----------------------------------------------------------------------------------------
    def cases(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.iter_cases(run_id))

    # cache ----------------------------------------------------------------------------------------
    def cache_get(self, key: str) -> Reply | None:
        row = self.db.execute(
            "SELECT text, finish_reason, tokens_in, tokens_out, latency_ms, logprobs FROM call_cache WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        text, finish_reason, tokens_in, tokens_out, latency_ms, logprobs = row
        return Reply(
            text, finish_reason, tokens_in, tokens_out, latency_ms, orjson.loads(logprobs) if logprobs else None
        )

    def cache_put(self, key: str, reply: Reply) -> None:
        self._cache_put(self.db, key, reply)

    def _cache_put(self, db: sqlite3.Connection, key: str, reply: Reply) -> None:
        db.execute(
            "INSERT OR REPLACE INTO call_cache (key, text, finish_reason, tokens_in, tokens_out, latency_ms,"
            " created_at, logprobs) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                reply.text,
                reply.finish_reason,
                reply.tokens_in,
                reply.tokens_out,
                reply.latency_ms,
                time.time(),
                _json(reply.logprobs) if reply.logprobs is not None else None,
            ),
        )

    # responses ------------------------------------------------------------------------------------
    def add_response(
        self,
        run_id: str,
        suite: str,
        case_id: str,
        target: str,
        sample: int,
        *,
        reply: Reply | None,
        error: str | None,
        latency_ms: float | None,
        attempts: int,
        from_cache: bool,
        cache_key: str,
        checks: list[dict[str, Any]],
        case_data: dict[str, Any] | None = None,
        status: str | None = None,
    ) -> int:
        """Record one outcome (a reply or an error), the case it answers (`case_data`, once per run) and, for a
        fresh reply, its cache entry: one transaction, so a killed run keeps exactly what it recorded."""
        with self._tx(durable=not from_cache) as db:
            if case_data is not None:
                db.execute(
                    "INSERT OR IGNORE INTO cases VALUES (?, ?, ?, ?)", (run_id, suite, case_id, _json(case_data))
                )
            cur = db.execute(
                "INSERT INTO responses (run_id, suite, case_id, target, sample, status, text, error, finish_reason,"
                " tokens_in, tokens_out, latency_ms, attempts, from_cache, cache_key, checks, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    suite,
                    case_id,
                    target,
                    sample,
                    status or ("ok" if reply is not None else "error"),
                    reply.text if reply else None,
                    error,
                    reply.finish_reason if reply else None,
                    reply.tokens_in if reply else None,
                    reply.tokens_out if reply else None,
                    latency_ms,
                    attempts,
                    int(from_cache),
                    cache_key,
                    _json(checks),
                    time.time(),
                ),
            )
            if reply is not None and not from_cache:
                self._cache_put(db, cache_key, reply)
        assert cur.lastrowid is not None
        return cur.lastrowid

    def recorded_responses(self, run_id: str) -> dict[tuple[str, str, str, int], StoredResponse]:
        rows = self.db.execute(
            "SELECT id, suite, case_id, target, sample, status, text FROM responses WHERE run_id = ?", (run_id,)
        ).fetchall()
        return {
            (r["suite"], r["case_id"], r["target"], r["sample"]): StoredResponse(r["id"], r["status"], r["text"])
            for r in rows
        }

    def recorded_judge_calls(self, run_id: str) -> set[tuple[int, str, int, str | None]]:
        """(response_id, judge, judge_sample, criterion-or-None) of every judge call the run recorded."""
        rows = self.db.execute(
            "SELECT response_id, judge, judge_sample, criterion FROM judge_calls WHERE run_id = ?", (run_id,)
        )
        return {(int(r[0]), str(r[1]), int(r[2]), r[3]) for r in rows}

    # judgments ------------------------------------------------------------------------------------
    def add_judgment(
        self,
        run_id: str,
        response_id: int,
        *,
        judge: str,
        template: str,
        template_sha256: str,
        prompt: list[dict[str, str]],
        raw: str | None,
        status: str,
        reason: str | None,
        attempts: int,
        reply: Reply | None,
        from_cache: bool,
        cache_key: str | None,
        scores: dict[str, ScoredCriterion],
        criteria: list[str],
        judge_sample: int = 0,
        call_criterion: str | None = None,
    ) -> int:
        """Record one judge call and one judgment row per criterion (scored, or unscored/error with reason).
        `call_criterion` names the criterion when the call judged one criterion alone."""
        with self._tx(durable=not from_cache) as db:
            cur = db.execute(
                "INSERT INTO judge_calls (run_id, response_id, judge, template, template_sha256, prompt, raw, status,"
                " reason, attempts, tokens_in, tokens_out, latency_ms, from_cache, created_at, judge_sample, criterion,"
                " cache_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    response_id,
                    judge,
                    template,
                    template_sha256,
                    _json(prompt),
                    raw,
                    status,
                    reason,
                    attempts,
                    reply.tokens_in if reply else None,
                    reply.tokens_out if reply else None,
                    reply.latency_ms if reply else None,
                    int(from_cache),
                    time.time(),
                    judge_sample,
                    call_criterion,
                    cache_key,
                ),
            )
            call_id = cur.lastrowid
            assert call_id is not None
            rows: list[tuple[Any, ...]] = []
            for criterion in criteria:
                if status == "scored":
                    sc = scores[criterion]
                    rows.append(
                        (
                            run_id,
                            call_id,
                            response_id,
                            criterion,
                            sc.score,
                            "int",
                            sc.rationale,
                            "scored",
                            None,
                            sc.weighted,
                            sc.weighted_note,
                        )
                    )
                else:
                    rows.append((run_id, call_id, response_id, criterion, None, None, None, status, reason, None, None))
            db.executemany(
                "INSERT INTO judgments (run_id, judge_call_id, response_id, criterion, score, score_kind, rationale,"
                " status, reason, weighted_score, weighted_note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            if status == "scored" and reply is not None and cache_key is not None and not from_cache:
                self._cache_put(db, cache_key, reply)
        return call_id

    def add_canary_judgments(
        self,
        run_id: str,
        *,
        judge: str,
        canary_set: str,
        canary_id: str,
        kind: str,
        side: str,
        status: str,
        reason: str | None,
        prompt: list[dict[str, str]],
        raw: str | None,
        reply: Reply | None,
        attempts: int,
        from_cache: bool,
        cache_key: str,
        template: str,
        rows: list[dict[str, Any]],
    ) -> None:
        """One judge call on one canary response: one row per criterion (`rows`: criterion, score, rationale)."""
        now = time.time()
        with self._tx(durable=not from_cache) as db:
            db.executemany(
                "INSERT INTO canary_judgments (run_id, judge, canary_set, canary_id, kind, side, criterion, score,"
                " rationale, status, reason, template, prompt, raw, attempts, tokens_in, tokens_out, latency_ms,"
                f" from_cache, cache_key, created_at) VALUES ({', '.join('?' * 21)})",
                [
                    (
                        run_id,
                        judge,
                        canary_set,
                        canary_id,
                        kind,
                        side,
                        row["criterion"],
                        row["score"],
                        row["rationale"],
                        status,
                        reason,
                        template,
                        _json(prompt),
                        raw,
                        attempts,
                        reply.tokens_in if reply else None,
                        reply.tokens_out if reply else None,
                        reply.latency_ms if reply else None,
                        int(from_cache),
                        cache_key,
                        now,
                    )
                    for row in rows
                ],
            )
            if status == "scored" and reply is not None and not from_cache:
                self._cache_put(db, cache_key, reply)

    def recorded_canaries(self, run_id: str) -> set[tuple[str, str, str]]:
        """(judge, canary id, side) of the canary calls recorded for a run."""
        rows = self.db.execute(
            "SELECT DISTINCT judge, canary_id, side FROM canary_judgments WHERE run_id = ?", (run_id,)
        ).fetchall()
        return {(str(r[0]), str(r[1]), str(r[2])) for r in rows}

    def canary_judgments(self, run_id: str, full: bool = False) -> list[dict[str, Any]]:
        """A run's canary rows in insertion order; `full` adds the prompt and raw reply."""
        columns = "judge, canary_set, canary_id, kind, side, criterion, score, rationale, status, reason, from_cache"
        if full:
            columns += ", template, prompt, raw"
        rows = self.db.execute(
            f"SELECT {columns} FROM canary_judgments WHERE run_id = ? ORDER BY id", (run_id,)
        ).fetchall()
        return [dict(r) for r in rows]

    # reads for analysis ---------------------------------------------------------------------------
    def responses(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.iter_responses(run_id))

    def judgments(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.iter_judgments(run_id))

    # pairwise verdicts ----------------------------------------------------------------------------
    PAIRWISE_FIELDS = (
        "suite",
        "case_id",
        "sample",
        "model_a",
        "model_b",
        "judge",
        "first",
        "winner",
        "gold",
        "instruction",
        "response_a",
        "response_b",
        "status",
        "reason",
        "template",
        "template_sha256",
        "prompt",
        "raw",
        "rationale",
        "preference",
    )

    def add_pairwise(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Record pairwise verdicts in one transaction. Each row: the PAIRWISE_FIELDS (missing ones are NULL;
        `first` is "a" or "b", the response shown first; `winner` is "a", "b", "tie", or None when unscored;
        `preference`, optional, is a graded verdict in [1, 2] as AlpacaEval gives it: 1 = a wins, 2 = b wins,
        1.5 = tie, between = the judge's probability that b wins, plus one)."""
        now = time.time()
        values = [(run_id, *[row.get(f) for f in self.PAIRWISE_FIELDS], now) for row in rows]
        cols = ", ".join(("run_id", *self.PAIRWISE_FIELDS, "created_at"))
        marks = ", ".join("?" * (len(self.PAIRWISE_FIELDS) + 2))
        with self._tx() as db:
            db.executemany(f"INSERT INTO pairwise ({cols}) VALUES ({marks})", values)

    def pairwise(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM pairwise WHERE run_id = ? ORDER BY id", (run_id,)).fetchall()
        return [dict(r) for r in rows]

    def recorded_pairs(self, run_id: str) -> set[tuple[str, str, int, str, str, str, str]]:
        """(suite, case_id, sample, model_a, model_b, judge, first) of every pairwise verdict of the run."""
        rows = self.db.execute(
            "SELECT suite, case_id, sample, model_a, model_b, judge, first FROM pairwise WHERE run_id = ?", (run_id,)
        )
        return {(r[0], r[1], int(r[2]), r[3], r[4], r[5], r[6]) for r in rows}

    def copy_responses(
        self,
        source_run: str,
        run_id: str,
        edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        """Copy a run's cases and responses (with their check results) into another run, for re-judging; `edit`
        gives the fields to change in each copied case (e.g. other criteria)."""
        with self._tx() as db:
            if edit is None:
                db.execute(
                    "INSERT INTO cases SELECT ?, suite, case_id, data FROM cases WHERE run_id = ?", (run_id, source_run)
                )
            else:
                rows = db.execute("SELECT suite, case_id, data FROM cases WHERE run_id = ?", (source_run,)).fetchall()
                edited = []
                for suite, case_id, data in rows:
                    case = orjson.loads(data)
                    edited.append((run_id, suite, case_id, _json({**case, **edit(case)})))
                db.executemany("INSERT INTO cases VALUES (?, ?, ?, ?)", edited)
            db.execute(
                "INSERT INTO responses (run_id, suite, case_id, target, sample, status, text, error, finish_reason,"
                " tokens_in, tokens_out, latency_ms, attempts, from_cache, cache_key, checks, created_at)"
                " SELECT ?, suite, case_id, target, sample, status, text, error, finish_reason, tokens_in, tokens_out,"
                " latency_ms, attempts, 1, cache_key, checks, created_at FROM responses WHERE run_id = ?",
                (run_id, source_run),
            )

    def create_imported_run(
        self,
        name: str | None,
        fingerprint: str,
        harness_version: str,
        config: dict[str, Any],
        *,
        cases: list[dict[str, Any]] | None = None,
        responses: list[dict[str, Any]] | None = None,
        pairwise: list[dict[str, Any]] | None = None,
    ) -> str:
        """Create a complete run from results made elsewhere (harness.importers), in ONE transaction: the run row
        is inserted here, not by `create_run` (which commits at once), so an import lands whole or not at all.

        cases:     {suite, case_id, data} (data: the case as recorded with a run)
        responses: {suite, case_id, target, sample, text, cache_key (unique in the run), judge_calls: [...],
                   optional status (default ok), error, checks (default none), latency_ms, tokens_in, tokens_out,
                   finish_reason (default null)}; 1 attempt, not from the cache
        a judge call: {judge, template, template_sha256, prompt (messages), raw, status, reason, judgments: [...],
                   optional judge_sample (default 0)}
        a judgment:   {criterion, score, score_kind, rationale, status, reason}
        pairwise:  rows as for `add_pairwise`.
        Nothing goes to the call cache: an imported reply was not made by any request this harness knows."""
        now = time.time()
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        pw_cols = ", ".join(("run_id", *self.PAIRWISE_FIELDS, "created_at"))
        pw_marks = ", ".join("?" * (len(self.PAIRWISE_FIELDS) + 2))
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, 'complete', ?, ?, ?, ?)",
                (run_id, name, fingerprint, now, now, harness_version, _json(config)),
            )
            db.executemany(
                "INSERT INTO cases VALUES (?, ?, ?, ?)",
                [(run_id, c["suite"], c["case_id"], _json(c["data"])) for c in cases or []],
            )
            for r in responses or []:
                cur = db.execute(
                    "INSERT INTO responses (run_id, suite, case_id, target, sample, status, text, error, attempts,"
                    " from_cache, cache_key, checks, created_at, latency_ms, tokens_in, tokens_out, finish_reason)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        r["suite"],
                        r["case_id"],
                        r["target"],
                        r["sample"],
                        r.get("status", "ok"),
                        r["text"],
                        r.get("error"),
                        r["cache_key"],
                        _json(r.get("checks", [])),
                        now,
                        r.get("latency_ms"),
                        r.get("tokens_in"),
                        r.get("tokens_out"),
                        r.get("finish_reason"),
                    ),
                )
                response_id = cur.lastrowid
                for call in r.get("judge_calls", []):
                    cur = db.execute(
                        "INSERT INTO judge_calls (run_id, response_id, judge, template, template_sha256, prompt, raw,"
                        " status, reason, attempts, from_cache, created_at, judge_sample)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?)",
                        (
                            run_id,
                            response_id,
                            call["judge"],
                            call["template"],
                            call["template_sha256"],
                            _json(call["prompt"]),
                            call["raw"],
                            call["status"],
                            call["reason"],
                            now,
                            call.get("judge_sample", 0),
                        ),
                    )
                    db.executemany(
                        "INSERT INTO judgments (run_id, judge_call_id, response_id, criterion, score, score_kind,"
                        " rationale, status, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                run_id,
                                cur.lastrowid,
                                response_id,
                                j["criterion"],
                                j["score"],
                                j["score_kind"],
                                j["rationale"],
                                j["status"],
                                j["reason"],
                            )
                            for j in call["judgments"]
                        ],
                    )
            db.executemany(
                f"INSERT INTO pairwise ({pw_cols}) VALUES ({pw_marks})",
                [(run_id, *[row.get(f) for f in self.PAIRWISE_FIELDS], now) for row in pairwise or []],
            )
        return run_id

    # lm-eval benchmark metrics (harness bench) ------------------------------------------------------
    BENCH_FIELDS = (
        "target",
        "task",
        "metric",
        "filter",
        "value",
        "stderr",
        "n_samples",
        "task_version",
        "higher_is_better",
        "is_group",
    )

    def add_bench_results(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        """Record one lm-eval run's metrics in one transaction. Each row: the BENCH_FIELDS (target, task, metric
        and filter required; value and stderr None where lm-eval gave none, e.g. "N/A"; higher_is_better and
        is_group as bools) and `config`, a JSON-able dict (the task's lm-eval config and alias)."""
        now = time.time()
        values = [
            (
                run_id,
                *[int(v) if isinstance(v, bool) else v for v in (row.get(f) for f in self.BENCH_FIELDS)],
                _json(row.get("config") or {}),
                now,
            )
            for row in rows
        ]
        cols = ", ".join(("run_id", *self.BENCH_FIELDS, "config", "created_at"))
        marks = ", ".join("?" * (len(self.BENCH_FIELDS) + 3))
        with self._tx() as db:
            db.executemany(f"INSERT INTO bench_results ({cols}) VALUES ({marks})", values)

    def fail_run(self, run_id: str, reason: str) -> None:
        """Mark a run failed, its reason kept in the run's config as `failure` (`harness bench` when lm-eval fails)."""
        self.db.execute(
            "UPDATE runs SET status = 'failed', finished_at = ?, config = json_set(config, '$.failure', ?)"
            " WHERE run_id = ?",
            (time.time(), reason, run_id),
        )
        self.commit()

    def bench_results(self, run_id: str) -> list[dict[str, Any]]:
        """A run's lm-eval metrics in the order recorded; higher_is_better and is_group as bools (or None)."""
        out = []
        for r in self.db.execute("SELECT * FROM bench_results WHERE run_id = ? ORDER BY id", (run_id,)).fetchall():
            item = dict(r)
            item["config"] = orjson.loads(item["config"])
            hib = item["higher_is_better"]
            item["higher_is_better"] = None if hib is None else bool(hib)
            item["is_group"] = bool(item["is_group"])
            out.append(item)
        return out

    def judge_prompt(self, cache_key: str) -> list[dict[str, str]] | None:
        """The prompt of the judge call whose reply the cache holds under this key (the prompt that produced
        it, delimiters included), for a judgment served from the cache."""
        row = self.db.execute("SELECT prompt FROM judge_calls WHERE cache_key = ? LIMIT 1", (cache_key,)).fetchone()
        if row is None:  # a canary call
            row = self.db.execute(
                "SELECT prompt FROM canary_judgments WHERE cache_key = ? LIMIT 1", (cache_key,)
            ).fetchone()
        return orjson.loads(row[0]) if row is not None and row[0] is not None else None

    def judge_usage(self, run_id: str) -> list[dict[str, Any]]:
        """Judge calls' token counts (for cost), one row per call, canary calls included (one row per call)."""
        rows = self.db.execute(
            "SELECT judge, tokens_in, tokens_out, from_cache FROM judge_calls WHERE run_id = ?"
            " UNION ALL SELECT judge, MAX(tokens_in), MAX(tokens_out), MAX(from_cache) FROM canary_judgments"
            " WHERE run_id = ? GROUP BY judge, canary_id, side",
            (run_id, run_id),
        ).fetchall()
        return [dict(r) for r in rows]

    def iter_cases(self, run_id: str) -> Iterator[dict[str, Any]]:
        for r in self.db.execute("SELECT suite, case_id, data FROM cases WHERE run_id = ?", (run_id,)):
            yield {"suite": r[0], "case_id": r[1], **orjson.loads(r[2])}

    def iter_responses(self, run_id: str) -> Iterator[dict[str, Any]]:
        """The run's responses in id order, streamed (a cursor, not a list)."""
        cursor = self.db.cursor()
        cursor.row_factory = sqlite3.Row
        for r in cursor.execute("SELECT * FROM responses WHERE run_id = ? ORDER BY id", (run_id,)):
            item = dict(r)
            item["checks"] = orjson.loads(item["checks"])
            yield item

    def iter_judgments(self, run_id: str) -> Iterator[dict[str, Any]]:
        """The run's judgments in response order, streamed, with their judge call's judge, template and sample."""
        cursor = self.db.cursor()
        cursor.row_factory = sqlite3.Row
        for r in cursor.execute(
            "SELECT j.*, c.judge, c.template, c.judge_sample FROM judgments j JOIN judge_calls c"
            " ON c.id = j.judge_call_id WHERE j.run_id = ? ORDER BY j.response_id, j.id",
            (run_id,),
        ):
            yield dict(r)
