"""Summarise one stored run: per target, per criterion, per suite, per case. Reads the store only.

Plain Python on purpose: `harness run` prints this summary, and it must not pay for importing pandas.

A response's verdict is one of:
  error     the target call failed (after retries); nothing was checked or judged
  fail      a check failed, or a judged criterion scored below the case's threshold
  unscored  checks passed but the judge gave no usable score for some criterion (reason recorded), or nothing
            evaluated the response at all (no check, and no rubric judge scored it)
  pass      every check passed and every judged criterion reached the threshold
`pass_rate` = pass / (pass + fail): errors and unscored responses are counted, never guessed.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from harness.store import Store
from reports.cost import CostTally, judge_cost
from reports.ifeval import ifeval_summary
from reports.judging import combine, judge_noise, pairwise_summary, panel_agreement
from reports.pairwise import pairwise_table, ratings
from reports.stats import mean_ci, percentile, wilson_ci

VERDICTS = ("pass", "fail", "unscored", "error")


def _verdict(
    row: dict[str, Any], scores: dict[str, dict[str, Any]], threshold: int, criteria: list[str], judged: bool
) -> str:
    if row["status"] != "ok":
        return "error"
    if not all(c["passed"] for c in row["checks"]):
        return "fail"
    if not judged or not criteria:
        # passed by its checks; with no check and no rubric judge nothing evaluated it: never a pass
        return "pass" if row["checks"] else "unscored"
    if any(scores.get(c) is None or scores[c]["status"] != "scored" for c in criteria):
        return "unscored"
    return "pass" if all(scores[c]["score"] >= threshold for c in criteria) else "fail"


def _checks_verdict(row: dict[str, Any]) -> str | None:
    """The deterministic checks alone: pass (all passed), fail, or None (no check, or the call failed)."""
    if row["status"] != "ok" or not row["checks"]:
        return None
    return "pass" if all(c["passed"] for c in row["checks"]) else "fail"


def checks_block(passed: int, evaluated: int) -> dict[str, Any]:
    """Pass rate of the deterministic checks alone (no judge), over the answered responses that have checks."""
    return {
        "passed": passed,
        "evaluated": evaluated,
        "pass_rate": round(passed / evaluated, 4) if evaluated else None,
        "pass_rate_ci95": wilson_ci(passed, evaluated),
    }


def _num(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return None if math.isnan(f) else round(f, 4)


def case_rows(store: Store, run_id: str, lean: bool = False) -> Iterator[dict[str, Any]]:
    """One row per response with its checks, scores, rationales and verdict.

    `lean` rows keep only what the summary statistics read (no texts, messages, references, rationales, and only
    the IFEval check results), so a summary of a 100,000-response run fits in little memory. Responses and
    judgments are streamed from the store in response order, never loaded whole."""
    run = store.run(run_id)
    method = run["config"].get("judge_method") or {}
    judged = run["config"].get("judge") is not None and method.get("mode", "rubric") != "pairwise"
    aggregate = str(method.get("aggregate", "mean"))
    cases = {(c["suite"], c["case_id"]): _lean_case(c) if lean else c for c in store.iter_cases(run["run_id"])}
    judgments = store.iter_judgments(run["run_id"])
    pending = next(judgments, None)
    for r in store.iter_responses(run["run_id"]):
        verdicts: dict[str, list[dict[str, Any]]] = {}
        while pending is not None and pending["response_id"] <= r["id"]:
            if pending["response_id"] == r["id"]:
                verdicts.setdefault(pending["criterion"], []).append(_verdict_entry(pending, lean))
            pending = next(judgments, None)
        case = cases.get((r["suite"], r["case_id"]), {})
        criteria = list(case.get("criteria", []))
        threshold = int(case.get("threshold", 4))
        scores = {c: combine(v, aggregate) for c, v in verdicts.items()}
        row: dict[str, Any] = {
            "response_id": r["id"],
            "suite": r["suite"],
            "case_id": r["case_id"],
            "target": r["target"],
            "sample": r["sample"],
            "threshold": threshold,
            "status": r["status"],
            "from_cache": bool(r["from_cache"]),
            "latency_ms": r["latency_ms"],
            "created_at": r["created_at"],
            "tokens_in": r["tokens_in"],
            "tokens_out": r["tokens_out"],
            "scores": scores,
            "verdict": _verdict(r, scores, threshold, criteria, judged),
            "checks_verdict": _checks_verdict(r),
            "checks": [c for c in r["checks"] if "loose" in c] if lean else r["checks"],
            "tags": list(case.get("tags", [])),
            "text_chars": len(r["text"]) if r["text"] is not None else None,
        }
        if not lean:
            row |= {
                "messages": case.get("messages", []),
                "references": case.get("references", []),
                "text": r["text"],
                "error": r["error"],
                "finish_reason": r["finish_reason"],
                "attempts": r["attempts"],
            }
        yield row


def _lean_case(case: dict[str, Any]) -> dict[str, Any]:
    return {"criteria": case.get("criteria", []), "threshold": case.get("threshold", 4), "tags": case.get("tags", [])}


def _verdict_entry(j: dict[str, Any], lean: bool) -> dict[str, Any]:
    entry = {
        "judge": j["judge"],
        "score": j["score"],
        "weighted": j["weighted_score"],
        "status": j["status"],
        "reason": j["reason"],
        "template": j["template"],
        "rationale": None if lean else j["rationale"],
    }
    if not lean:
        entry |= {"sample": j["judge_sample"], "weighted_note": j["weighted_note"]}
    return entry


def _criterion_stats(scores: list[float], unscored: int, weighted: list[float | None] | None = None) -> dict[str, Any]:
    n = len(scores)
    hist: dict[str, int] = {}
    for value in sorted(scores):
        key = str(int(value)) if float(value).is_integer() else str(value)
        hist[key] = hist.get(key, 0) + 1
    return {
        "n": n,
        "mean": _num(statistics.fmean(scores)) if n else None,
        "ci95": mean_ci(scores),
        "median": _num(statistics.median(scores)) if n else None,
        "std": _num(statistics.stdev(scores)) if n > 1 else None,
        "min": _num(min(scores)) if n else None,
        "max": _num(max(scores)) if n else None,
        "unscored": unscored,
        "histogram": hist,
        **_weighted_stats(weighted or []),
    }


def _weighted_stats(weighted: list[float | None]) -> dict[str, Any]:
    """The logprob-weighted (G-Eval) mean beside the integer one, over the responses that have it."""
    have = [w for w in weighted if w is not None]
    return {
        "weighted_mean": _num(statistics.fmean(have)) if have else None,
        "weighted_n": len(have),
        "weighted_missing": len(weighted) - len(have),
    }


def _pass_block(verdicts: Counter[str]) -> dict[str, Any]:
    counts = {v: verdicts[v] for v in VERDICTS}
    evaluated = counts["pass"] + counts["fail"]
    return {
        "passed": counts["pass"],
        "failed": counts["fail"],
        "unscored": counts["unscored"],
        "errors": counts["error"],
        "evaluated": evaluated,
        "pass_rate": round(counts["pass"] / evaluated, 4) if evaluated else None,
        "pass_rate_ci95": wilson_ci(counts["pass"], evaluated),
    }


class _GroupTally:
    """Verdicts and scores of a group of responses (one tag of one target), added one row at a time."""

    def __init__(self) -> None:
        self.verdicts: Counter[str] = Counter()
        self.checks: Counter[str | None] = Counter()
        self.scores: dict[str, list[float]] = defaultdict(list)
        self.unscored: Counter[str] = Counter()

    def add(self, r: dict[str, Any]) -> None:
        self.verdicts[r["verdict"]] += 1
        self.checks[r["checks_verdict"]] += 1
        for criterion, s in r["scores"].items():
            if s["status"] == "scored":
                self.scores[criterion].append(float(s["score"]))
            else:
                self.scores.setdefault(criterion, [])
                self.unscored[criterion] += 1

    def block(self) -> dict[str, Any]:
        return {
            "responses": sum(self.verdicts.values()),
            **_pass_block(self.verdicts),
            "checks": checks_block(self.checks["pass"], self.checks["pass"] + self.checks["fail"]),
            "criteria": {c: _criterion_stats(self.scores[c], self.unscored[c]) for c in sorted(self.scores)},
        }


class _TargetTally:
    """A target's summary, accumulated one response row at a time (a run's rows are never all in memory)."""

    def __init__(self, name: str, price: dict[str, Any] | None) -> None:
        self.name = name
        self.price = price
        self.responses = 0
        self.cases: set[int] = set()
        self.verdicts: Counter[str] = Counter()
        self.checks: Counter[str | None] = Counter()
        self.statuses: Counter[str] = Counter()
        self.scores: dict[str, list[float]] = defaultdict(list)
        self.weighted: dict[str, list[float | None]] = defaultdict(list)
        self.unscored: Counter[str] = Counter()
        self.judge_verdicts: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.tokens_in = self.tokens_out = self.cache_hits = 0
        self.cost = CostTally()
        self.tags: dict[str, _GroupTally] = defaultdict(_GroupTally)

    def add(self, r: dict[str, Any]) -> None:
        self.responses += 1
        self.cases.add(hash((r["suite"], r["case_id"])))
        self.verdicts[r["verdict"]] += 1
        self.checks[r["checks_verdict"]] += 1
        self.statuses[r["status"]] += 1
        self.cache_hits += bool(r["from_cache"])
        self.cost.add(r)
        for tag in r["tags"]:
            self.tags[tag].add(r)
        for criterion, s in r["scores"].items():
            if s["status"] == "scored":
                self.scores[criterion].append(float(s["score"]))
                self.weighted[criterion].append(s["weighted"])
            else:
                self.scores.setdefault(criterion, [])
                self.unscored[criterion] += 1
            self.judge_verdicts.update(v["status"] for v in s["verdicts"])
        if r["status"] == "ok":
            self.tokens_in += r["tokens_in"] or 0
            self.tokens_out += r["tokens_out"] or 0
            if r["latency_ms"] is not None:
                self.latencies.append(r["latency_ms"])

    def block(self) -> dict[str, Any]:
        answered = self.statuses["ok"] + self.statuses["blocked"]
        return {
            "target": self.name,
            "responses": self.responses,
            "cases": len(self.cases),
            **_pass_block(self.verdicts),
            "checks": checks_block(self.checks["pass"], self.checks["pass"] + self.checks["fail"]),
            "blocked": self.statuses["blocked"],
            "unavailable": self.statuses["unavailable"],
            "availability": round(answered / self.responses, 4) if self.responses else None,
            "criteria": {
                c: _criterion_stats(self.scores[c], self.unscored[c], self.weighted[c]) for c in sorted(self.scores)
            },
            "tags": {tag: self.tags[tag].block() for tag in sorted(self.tags)},
            "judge_unscored": self.judge_verdicts["unscored"],
            "judge_errors": self.judge_verdicts["error"],
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "latency_ms_p50": _num(statistics.median(self.latencies)) if self.latencies else None,
            "latency_ms_p95": percentile(self.latencies, 95),
            "cache_hits": self.cache_hits,
            "cost": self.cost.result(self.price),
        }


def summarise(store: Store, run_id: str, include_cases: bool = True) -> dict[str, Any]:
    """The whole report document (the JSON report's schema): run, per-target summary, per-suite coverage,
    judging and IFEval blocks, and (unless `include_cases` is false) the per-case rows.

    Rows stream from the store into per-target tallies; only what a block needs is kept: every row when the
    cases are included, otherwise the scores of rows with several verdicts (judge noise, panel agreement)
    and the IFEval check results."""
    run = store.run(run_id)
    config = run["config"]
    prices = config.get("prices") or {}
    tallies = {t["name"]: _TargetTally(t["name"], prices.get(t["name"])) for t in config.get("targets", [])}
    coverage: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    coverage_checks: dict[tuple[str, str], Counter[str | None]] = defaultdict(Counter)
    kept: list[dict[str, Any]] = []
    for row in case_rows(store, run["run_id"], lean=not include_cases):
        target = row["target"]
        if target not in tallies:
            tallies[target] = _TargetTally(target, prices.get(target))
        tallies[target].add(row)
        coverage[(row["suite"], target)][row["verdict"]] += 1
        coverage_checks[(row["suite"], target)][row["checks_verdict"]] += 1
        if include_cases:
            kept.append(row)
        elif row["checks"] or row["checks_verdict"] or any(len(s["verdicts"]) > 1 for s in row["scores"].values()):
            kept.append(
                {
                    "target": target,
                    "scores": row["scores"],
                    "checks": row["checks"],
                    "checks_verdict": row["checks_verdict"],
                    "threshold": row["threshold"],
                }
            )
    blocks = {name: tally.block() for name, tally in tallies.items()}
    if config.get("imported"):  # the responses were timed elsewhere, and recorded at import: no throughput here
        for block in blocks.values():
            block["cost"]["throughput_per_s"] = None
    if include_cases:
        from reports.anomalies import target_flags

        by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in kept:
            by_target[row["target"]].append(row)
        for name, found in target_flags(by_target).items():
            blocks[name]["flags"] = found
    return {
        "schema": "judge-harness/report@2",
        "run": {
            "run_id": run["run_id"],
            "name": run["name"],
            "status": run["status"],
            "created_at": run["created_at"],
            "finished_at": run["finished_at"],
            "harness_version": run["harness_version"],
            "suites": config.get("suites", []),
            "targets": config.get("targets", []),
            "judge": config.get("judge"),
            "judge_method": config.get("judge_method"),
            "samples": config.get("samples"),
            "kind": config.get("kind", "eval"),
        },
        "targets": blocks,
        "coverage": [
            {
                "suite": suite,
                "target": target,
                **_pass_block(verdicts),
                "checks": checks_block(
                    coverage_checks[(suite, target)]["pass"],
                    coverage_checks[(suite, target)]["pass"] + coverage_checks[(suite, target)]["fail"],
                ),
            }
            for (suite, target), verdicts in sorted(coverage.items())
        ],
        "judging": _judging(store, run["run_id"], config, kept),
        "ifeval": ifeval_summary(kept),
        **_pairwise(store, run["run_id"]),
        **_bench(store, run["run_id"]),
        **({"cases": kept} if include_cases else {}),
    }


def _judging(store: Store, run_id: str, config: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    method = config.get("judge_method") or {}
    judges = [j["name"] for j in config.get("judges") or ([config["judge"]] if config.get("judge") else [])]
    out: dict[str, Any] = {
        "mode": method.get("mode", "rubric") if judges else None,
        "judges": judges,
        "samples": method.get("samples", 1),
        "aggregate": method.get("aggregate", "mean"),
    }
    if method.get("samples", 1) > 1:
        out["noise"] = judge_noise(rows, int(method["samples"]))
    if len(judges) >= 2 and out["mode"] != "pairwise":
        out["agreement"] = panel_agreement(rows, judges)
    out["cost"] = judge_cost(store.judge_usage(run_id), config.get("prices") or {})
    pairs = store.pairwise(run_id)
    if pairs:
        out["pairwise"] = pairwise_summary(pairs)
    out |= judge_trust(store, run_id, config, rows)
    return out


def judge_trust(store: Store, run_id: str, config: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The judges' canary results and their agreement with the deterministic checks, and the verdict on them:
    `trusted` is True when every judge passed its canaries, False when one failed (every judge-based figure of the
    run is then untrustworthy), None when the canaries were not scored (reliability not measured)."""
    from reports.canaries import agreement_with_checks, canary_summary

    out: dict[str, Any] = {}
    canary_config = config.get("canaries")
    canary_rows = store.canary_judgments(run_id)
    if canary_config is not None or canary_rows:
        floor = (canary_config or {}).get("floor")
        out["canaries"] = {"set": canary_config, **canary_summary(canary_rows, floor)}
    pairs = [
        {
            "judge": v["judge"],
            "criterion": criterion,
            "score": float(v["score"]),
            "threshold": int(row.get("threshold", 4)),
            "checks_passed": row["checks_verdict"] == "pass",
        }
        for row in rows
        if row.get("checks_verdict") is not None
        for criterion, s in row["scores"].items()
        for v in s["verdicts"]
        if v["status"] == "scored" and v["score"] is not None
    ]
    if pairs:
        out["agreement_with_checks"] = agreement_with_checks(pairs)
    out["trusted"] = out["canaries"]["trusted"] if "canaries" in out else None
    return out


def _bench(store: Store, run_id: str) -> dict[str, Any]:
    """lm-eval metrics stored with the run (`harness bench`), when it has any."""
    from reports.bench import bench_rows

    rows = bench_rows(store, run_id)
    return {"bench": rows} if rows else {}


def _pairwise(store: Store, run_id: str) -> dict[str, Any]:
    """Pairwise win rates (model vs opponent, ties half) and, with three or more models, Bradley-Terry ratings."""
    pairs = store.pairwise(run_id)
    if not pairs:
        return {}
    return {"pairwise": pairwise_table(pairs), "bradley_terry": ratings(pairs)}
