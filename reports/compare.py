"""Compare two stored runs, a baseline and a candidate (a regression check after an upgrade). Reads the store only.

Rules (also in the document's `rules`, which every rendering prints):
  * Pairs: responses are matched on (suite, case id, sample), per compared target. A case whose content (messages,
    references, checks, criteria, threshold, params) differs between the runs is listed as changed and never
    paired; cases in one run only are listed as added or removed.
  * Scores: per criterion, delta = candidate score - baseline score, over the pairs scored on both sides; a pair
    where either side is an error or unscored is counted, never scored. mean_delta with a paired percentile
    bootstrap 95% CI (reports.stats.mean_ci) and a two-sided Wilcoxon signed-rank p-value (zero deltas dropped).
  * Judge noise (when a run was judged with --judge-samples > 1; the larger floor of the two runs): a case delta
    with |delta| <= noise_floor_case is marked `noise`; the mean delta is within the noise floor when
    |mean_delta| <= noise_floor_mean. Separately, the mean delta is within noise when its CI includes 0.
  * Pass/fail: over the pairs with a pass or fail on both sides, McNemar's exact test on the discordant pairs
    (pass -> fail, fail -> pass). Flipped pairs are listed pass -> fail first, each with both responses, verdicts,
    scores and judge rationales.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from harness.errors import UserError
from harness.store import Store
from reports.judging import judge_noise
from reports.stats import mcnemar_exact_p, mean_ci, wilcoxon_p
from reports.summary import case_rows

SCHEMA = "judge-harness/compare@1"
CONTENT_FIELDS = ("messages", "references", "checks", "criteria", "threshold", "params")
EVALUATED = ("pass", "fail")
RULES = {
    "pairing": "responses matched on (suite, case id, sample) per compared target; cases whose content changed "
    "between the runs are excluded",
    "delta": "candidate score - baseline score, per pair scored on both sides; errors and unscored responses are "
    "counted, never scored",
    "ci95": "paired percentile bootstrap 95% CI of the mean delta (2000 resamples, fixed seed)",
    "p_wilcoxon": "two-sided Wilcoxon signed-rank test on the paired deltas (zero deltas dropped)",
    "case_noise": "a case delta with |delta| <= noise_floor_case (from repeated judging, the larger of the two "
    "runs) is marked noise, not improved or regressed",
    "within_noise": "the mean delta is within noise when |mean_delta| <= noise_floor_mean (within_noise_floor) or "
    "when its 95% CI includes 0 (ci_includes_zero); both are reported",
    "p_mcnemar": "McNemar's exact test on pass->fail vs fail->pass over pairs with pass or fail on both sides",
    "checks": "deterministic checks alone (no judge), over pairs with checks on both sides, overall and per suite: "
    "pass rates, the paired difference with a bootstrap 95% CI, McNemar's exact test",
    "judge_trust": "each run's judges are tested on canaries; an untrusted judge makes that run's score deltas and "
    "judged pass/fail untrustworthy, the checks are unaffected",
}

Key = tuple[str, str, int]  # suite, case_id, sample


def _num(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), digits)


@dataclass
class _Row:
    """What the statistics need of one response (the texts and rationales are read again for flipped pairs only)."""

    response_id: int
    verdict: str
    scores: dict[str, float | None]  # None: the criterion was not scored (unscored or judge error)
    checks: str | None = None  # the deterministic checks alone: pass, fail, or None (no check, or an error)


@dataclass
class _RunData:
    run: dict[str, Any]
    cases: dict[tuple[str, str], dict[str, Any]]
    rows: dict[str, dict[Key, _Row]] = field(default_factory=dict)  # target -> key -> row
    trust: dict[str, Any] | None = None  # the run's judge canaries (run_trust)
    noise_rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # target -> rows judged repeatedly

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.run["config"])

    @property
    def judge_samples(self) -> int:
        return int((self.config.get("judge_method") or {}).get("samples", 1))

    @property
    def rubric_judged(self) -> bool:
        method = self.config.get("judge_method") or {}
        return self.config.get("judge") is not None and method.get("mode", "rubric") != "pairwise"

    def targets(self) -> list[str]:
        return [str(t["name"]) for t in self.config.get("targets", [])]


def compare_runs(
    store: Store,
    baseline: str,
    candidate: str,
    *,
    target: str | None = None,
    baseline_target: str | None = None,
    candidate_target: str | None = None,
) -> dict[str, Any]:
    """The comparison document (schema judge-harness/compare@1) of two runs given by id or name.

    Targets: `target` names one target present in both runs; `baseline_target` / `candidate_target` pair two
    names (one defaults to the other); by default every target name the runs share, or, when they share none and
    each run has a single target, those two."""
    base_run, cand_run = store.run(baseline), store.run(candidate)
    base = _RunData(base_run, {(c["suite"], c["case_id"]): c for c in store.iter_cases(base_run["run_id"])})
    cand = _RunData(cand_run, {(c["suite"], c["case_id"]): c for c in store.iter_cases(cand_run["run_id"])})
    base.trust, cand.trust = run_trust(store, base_run), run_trust(store, cand_run)
    suite_changes, comparable = _suite_changes(base, cand)
    if not comparable:
        raise UserError(
            f"runs {base.run_id} and {cand.run_id} share no cases with the same content: nothing to compare"
        )
    pairs = _target_pairs(base, cand, target, baseline_target, candidate_target)
    notes = _notes(base, cand, pairs, target, baseline_target, candidate_target)
    _collect(store, base, {b for b, _ in pairs}, comparable)
    _collect(store, cand, {c for _, c in pairs}, comparable)
    blocks = [_compare_target(base, cand, b, c, comparable) for b, c in pairs]
    _add_flip_details(store, base, cand, blocks)
    return {
        "schema": SCHEMA,
        "baseline": _run_block(base),
        "candidate": _run_block(cand),
        "rules": RULES,
        "notes": notes,
        "suite_changes": suite_changes,
        "targets": blocks,
    }


def run_trust(store: Store, run: dict[str, Any]) -> dict[str, Any] | None:
    """A run's judge canary verdict (reports.canaries.canary_summary), or None when it scored no canaries."""
    from reports.canaries import canary_summary

    config = run["config"].get("canaries")
    rows = store.canary_judgments(run["run_id"])
    if config is None and not rows:
        return None
    return {"set": config, **canary_summary(rows, (config or {}).get("floor"))}


# runs, suites and cases ---------------------------------------------------------------------------------------------
def _run_block(data: _RunData) -> dict[str, Any]:
    config = data.config
    judge = config.get("judge")
    method = config.get("judge_method") or {}
    return {
        "run_id": data.run_id,
        "name": data.run["name"],
        "status": data.run["status"],
        "created_at": data.run["created_at"],
        "suites": [{k: s.get(k) for k in ("suite", "version", "hash", "cases")} for s in config.get("suites", [])],
        "targets": config.get("targets", []),
        "judge": None if judge is None else {"name": judge.get("name"), "model": judge.get("model")},
        "judge_template": method.get("template"),
        "judge_samples": data.judge_samples,
        "samples": config.get("samples"),
        "judge_trust": data.trust,
    }


def _suite_changes(base: _RunData, cand: _RunData) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """Per suite present in either run: versions, hashes, and the cases added, removed or changed; and the cases
    comparable (in both runs with the same content)."""
    ident_b = {s["suite"]: s for s in base.config.get("suites", [])}
    ident_c = {s["suite"]: s for s in cand.config.get("suites", [])}
    names = sorted(set(ident_b) | set(ident_c) | {s for s, _ in base.cases} | {s for s, _ in cand.cases})
    comparable: set[tuple[str, str]] = set()
    changes = []
    for suite in names:
        ids_b = {cid for s, cid in base.cases if s == suite}
        ids_c = {cid for s, cid in cand.cases if s == suite}
        changed = []
        for cid in sorted(ids_b & ids_c):
            fields = [f for f in CONTENT_FIELDS if base.cases[(suite, cid)].get(f) != cand.cases[(suite, cid)].get(f)]
            if fields:
                changed.append({"case_id": cid, "fields": fields})
            else:
                comparable.add((suite, cid))
        b, c = ident_b.get(suite), ident_c.get(suite)
        entry = {
            "suite": suite,
            "baseline": None if b is None else {"version": b.get("version"), "hash": b.get("hash")},
            "candidate": None if c is None else {"version": c.get("version"), "hash": c.get("hash")},
            "version_changed": b is not None and c is not None and b.get("version") != c.get("version"),
            "hash_changed": b is not None and c is not None and b.get("hash") != c.get("hash"),
            "common_cases": len(ids_b & ids_c) - len(changed),
            "added": sorted(ids_c - ids_b),
            "removed": sorted(ids_b - ids_c),
            "changed": changed,
        }
        if b is None or c is None or changed or any(entry[k] for k in ("version_changed", "hash_changed", "added")):
            changes.append(entry)
    return changes, comparable


def _target_pairs(
    base: _RunData, cand: _RunData, target: str | None, baseline_target: str | None, candidate_target: str | None
) -> list[tuple[str, str]]:
    names_b, names_c = base.targets(), cand.targets()
    if target is not None and (baseline_target is not None or candidate_target is not None):
        raise UserError("give --target, or --baseline-target / --candidate-target, not both", field="--target")
    if target is not None:
        baseline_target = candidate_target = target
    if baseline_target is not None or candidate_target is not None:
        b = baseline_target or candidate_target
        c = candidate_target or baseline_target
        assert b is not None and c is not None
        if b not in names_b:
            raise UserError(
                f"run {base.run_id} has no target {b!r} (its targets: {', '.join(names_b) or 'none'})",
                field="--target" if target is not None else "--baseline-target",
            )
        if c not in names_c:
            raise UserError(
                f"run {cand.run_id} has no target {c!r} (its targets: {', '.join(names_c) or 'none'})",
                field="--target" if target is not None else "--candidate-target",
            )
        return [(b, c)]
    shared = [n for n in names_b if n in names_c]
    if shared:
        return [(n, n) for n in shared]
    if len(names_b) == 1 and len(names_c) == 1:
        return [(names_b[0], names_c[0])]
    raise UserError(
        f"the runs share no target name (baseline: {', '.join(names_b) or 'none'}; candidate: "
        f"{', '.join(names_c) or 'none'}): pick them with --baseline-target and --candidate-target",
        field="--target",
    )


def _notes(
    base: _RunData,
    cand: _RunData,
    pairs: list[tuple[str, str]],
    target: str | None,
    baseline_target: str | None,
    candidate_target: str | None,
) -> list[str]:
    """What a reader should know before trusting the deltas."""
    notes = []
    explicit = target is not None or baseline_target is not None or candidate_target is not None
    if not explicit and len(pairs) == 1 and pairs[0][0] != pairs[0][1]:
        notes.append(f"the runs share no target name: comparing their only targets, {pairs[0][0]} and {pairs[0][1]}")
    judges_b = [(j.get("name"), j.get("model")) for j in base.config.get("judges") or []]
    judges_c = [(j.get("name"), j.get("model")) for j in cand.config.get("judges") or []]
    if judges_b != judges_c:
        notes.append("the runs were judged by different judges: score deltas mix the model change with the judge's")
    method_b, method_c = base.config.get("judge_method") or {}, cand.config.get("judge_method") or {}
    if method_b.get("template_sha256") != method_c.get("template_sha256"):
        notes.append("the runs used different judge templates")
    if not base.rubric_judged or not cand.rubric_judged:
        notes.append("a run has no rubric judge: criterion scores are not compared, pass/fail is")
    for data, role in ((base, "baseline"), (cand, "candidate")):
        if data.run["status"] != "complete":
            notes.append(f"the {role} run is {data.run['status']}, not complete")
    for data, role in ((base, "baseline"), (cand, "candidate")):
        if data.trust is not None and not data.trust["trusted"]:
            why = "; ".join(r for j in data.trust["judges"].values() for r in j["reasons"]) or "no canary scored"
            notes.append(
                f"NOT TRUSTWORTHY: the {role} run's judge failed its canaries ({why}): its score deltas and judged "
                "pass/fail are not evidence; the deterministic checks are"
            )
    if base.judge_samples == 1 and cand.judge_samples == 1:
        notes.append("no judge noise floor: neither run was judged with --judge-samples > 1")
    return notes


def _collect(store: Store, data: _RunData, targets: set[str], comparable: set[tuple[str, str]]) -> None:
    """One streamed pass over the run's lean rows: per target, each comparable response's verdict and scores,
    and the rows judged repeatedly (for the noise floor)."""
    for t in targets:
        data.rows.setdefault(t, {})
        data.noise_rows.setdefault(t, [])
    for row in case_rows(store, data.run_id, lean=True):
        t = row["target"]
        if t not in targets:
            continue
        if any(len(s["verdicts"]) > 1 for s in row["scores"].values()):
            data.noise_rows[t].append({"scores": row["scores"]})
        if (row["suite"], row["case_id"]) not in comparable:
            continue
        scores = {c: (float(s["score"]) if s["status"] == "scored" else None) for c, s in row["scores"].items()}
        data.rows[t][(row["suite"], row["case_id"], int(row["sample"]))] = _Row(
            int(row["response_id"]), row["verdict"], scores, row.get("checks_verdict")
        )


# one target pair ---------------------------------------------------------------------------------------------------
def _noise_floors(base: _RunData, cand: _RunData, bt: str, ct: str) -> dict[str, dict[str, Any]]:
    """Per criterion, the larger noise floors of the two runs (judge_noise over the compared target's rows)."""
    floors: dict[str, dict[str, Any]] = {}
    for data, t, role in ((base, bt, "baseline"), (cand, ct, "candidate")):
        if data.judge_samples < 2 or not data.noise_rows.get(t):
            continue
        for criterion, n in judge_noise(data.noise_rows[t], data.judge_samples).items():
            have = floors.get(criterion)
            mean = max(n["noise_floor_mean"], have["mean"] if have else 0.0)
            if have is None or n["noise_floor_case"] > have["case"]:
                floors[criterion] = {
                    "case": n["noise_floor_case"],
                    "mean": mean,
                    "source": role,
                    "judge_samples": data.judge_samples,
                    "responses": n["responses"],
                }
            floors[criterion]["mean"] = mean
    return floors


def classify(delta: float, floor_case: float | None) -> str:
    """A case delta: unchanged (0), noise (|delta| within the case noise floor), improved or regressed."""
    if delta == 0:
        return "unchanged"
    if floor_case is not None and abs(delta) <= floor_case:
        return "noise"
    return "improved" if delta > 0 else "regressed"


def _criteria(
    base: _RunData, cand: _RunData, paired: list[Key], rows_b: dict[Key, _Row], rows_c: dict[Key, _Row]
) -> list[str]:
    if not base.rubric_judged or not cand.rubric_judged:
        return []
    names: set[str] = set()
    for key in paired:
        names.update(base.cases[(key[0], key[1])].get("criteria") or [])
        names.update(rows_b[key].scores)
        names.update(rows_c[key].scores)
    return sorted(names)


def _criterion_block(
    criterion: str,
    base: _RunData,
    paired: list[Key],
    rows_b: dict[Key, _Row],
    rows_c: dict[Key, _Row],
    floor: dict[str, Any] | None,
) -> dict[str, Any]:
    xs: list[float] = []
    ys: list[float] = []
    expected = missing_b = missing_c = 0
    for key in paired:
        sb, sc = rows_b[key].scores.get(criterion), rows_c[key].scores.get(criterion)
        listed = criterion in (base.cases[(key[0], key[1])].get("criteria") or [])
        if not listed and criterion not in rows_b[key].scores and criterion not in rows_c[key].scores:
            continue
        expected += 1
        missing_b += sb is None
        missing_c += sc is None
        if sb is not None and sc is not None:
            xs.append(sb)
            ys.append(sc)
    deltas = [y - x for x, y in zip(xs, ys, strict=True)]
    n = len(deltas)
    mean_delta = statistics.fmean(deltas) if n else None
    ci = mean_ci(deltas)
    floor_case = floor["case"] if floor else None
    changes = Counter(classify(d, floor_case) for d in deltas)
    within_floor = None if mean_delta is None or floor is None else abs(mean_delta) <= floor["mean"]
    ci_zero = None if ci is None else ci[0] <= 0 <= ci[1]
    known = [v for v in (within_floor, ci_zero) if v is not None]
    return {
        "n": n,
        "baseline_mean": _num(statistics.fmean(xs)) if n else None,
        "candidate_mean": _num(statistics.fmean(ys)) if n else None,
        "mean_delta": _num(mean_delta),
        "ci95": ci,
        "p_wilcoxon": wilcoxon_p(deltas),
        "noise_floor": floor,
        "within_noise_floor": within_floor,
        "ci_includes_zero": ci_zero,
        "within_noise": any(known) if known else None,
        "improved": changes["improved"],
        "regressed": changes["regressed"],
        "noise": changes["noise"],
        "unchanged": changes["unchanged"],
        "not_scored": {"pairs": expected - n, "baseline": missing_b, "candidate": missing_c},
    }


def _compare_target(
    base: _RunData, cand: _RunData, bt: str, ct: str, comparable: set[tuple[str, str]]
) -> dict[str, Any]:
    rows_b, rows_c = base.rows[bt], cand.rows[ct]
    paired = sorted(set(rows_b) & set(rows_c))
    floors = _noise_floors(base, cand, bt, ct)
    criteria = {
        c: _criterion_block(c, base, paired, rows_b, rows_c, floors.get(c))
        for c in _criteria(base, cand, paired, rows_b, rows_c)
    }
    table: Counter[tuple[str, str]] = Counter()
    flips: list[tuple[str, Key]] = []
    not_evaluated = []
    for key in paired:
        vb, vc = rows_b[key].verdict, rows_c[key].verdict
        if vb in EVALUATED and vc in EVALUATED:
            table[(vb, vc)] += 1
            if vb != vc:
                flips.append(("pass_to_fail" if vb == "pass" else "fail_to_pass", key))
        else:
            not_evaluated.append(
                {"suite": key[0], "case_id": key[1], "sample": key[2], "baseline": vb, "candidate": vc}
            )
    p2f, f2p = table[("pass", "fail")], table[("fail", "pass")]
    evaluated = sum(table.values())
    flips.sort(key=lambda f: (f[0] != "pass_to_fail", f[1]))
    regressed = [c for c, b in criteria.items() if b["within_noise"] is False and (b["mean_delta"] or 0) < 0]
    improved = [c for c, b in criteria.items() if b["within_noise"] is False and (b["mean_delta"] or 0) > 0]
    return {
        "baseline_target": bt,
        "candidate_target": ct,
        "pairs": len(paired),
        "unpaired": {
            "baseline_only": sum(1 for k in rows_b if k not in rows_c),
            "candidate_only": sum(1 for k in rows_c if k not in rows_b),
        },
        "criteria": criteria,
        "pass_fail": {
            "evaluated_pairs": evaluated,
            "both_pass": table[("pass", "pass")],
            "pass_to_fail": p2f,
            "fail_to_pass": f2p,
            "both_fail": table[("fail", "fail")],
            "baseline_pass_rate": _num((table[("pass", "pass")] + p2f) / evaluated) if evaluated else None,
            "candidate_pass_rate": _num((table[("pass", "pass")] + f2p) / evaluated) if evaluated else None,
            "p_mcnemar": mcnemar_exact_p(p2f, f2p) if evaluated else None,
        },
        "not_evaluated": not_evaluated,
        "checks": _checks_block(paired, rows_b, rows_c),
        "regressed_criteria": regressed,
        "improved_criteria": improved,
        "flipped": [
            {
                "direction": direction,
                "suite": key[0],
                "case_id": key[1],
                "sample": key[2],
                "_ids": (rows_b[key].response_id, rows_c[key].response_id),
                "_floors": {c: (floors[c]["case"] if c in floors else None) for c in criteria},
            }
            for direction, key in flips
        ],
    }


def _checks_pairs(keys: list[Key], rows_b: dict[Key, _Row], rows_c: dict[Key, _Row]) -> dict[str, Any]:
    """Deterministic checks alone (no judge) over the pairs with checks on both sides: pass rates, the paired
    difference with a bootstrap 95% CI, and McNemar's exact test on the discordant pairs."""
    table: Counter[tuple[str, str]] = Counter()
    diffs: list[float] = []
    for key in keys:
        cb, cc = rows_b[key].checks, rows_c[key].checks
        if cb is None or cc is None:
            continue
        table[(cb, cc)] += 1
        diffs.append(float(cc == "pass") - float(cb == "pass"))
    n = len(diffs)
    p2f, f2p = table[("pass", "fail")], table[("fail", "pass")]
    passed_b = table[("pass", "pass")] + p2f
    passed_c = table[("pass", "pass")] + f2p
    return {
        "pairs": n,
        "baseline_pass_rate": _num(passed_b / n) if n else None,
        "candidate_pass_rate": _num(passed_c / n) if n else None,
        "delta": _num(statistics.fmean(diffs)) if n else None,
        "ci95": mean_ci(diffs),
        "pass_to_fail": p2f,
        "fail_to_pass": f2p,
        "p_mcnemar": mcnemar_exact_p(p2f, f2p) if n else None,
    }


def _checks_block(paired: list[Key], rows_b: dict[Key, _Row], rows_c: dict[Key, _Row]) -> dict[str, Any]:
    suites = sorted({k[0] for k in paired})
    return {
        **_checks_pairs(paired, rows_b, rows_c),
        "by_suite": {suite: _checks_pairs([k for k in paired if k[0] == suite], rows_b, rows_c) for suite in suites},
    }


# flipped pairs: both sides in full ---------------------------------------------------------------------------------
def _side(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "response_id": row["response_id"],
        "verdict": row["verdict"],
        "status": row["status"],
        "text": row["text"],
        "error": row["error"],
        "failed_checks": [
            {"check": c["check"], "detail": c.get("detail")} for c in row["checks"] if not c.get("passed", True)
        ],
        "scores": {
            c: {"status": s["status"], "score": s["score"], "rationale": s["rationale"], "reason": s["reason"]}
            for c, s in sorted(row["scores"].items())
        },
    }


def _full_rows(store: Store, run_id: str, ids: set[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    return {r["response_id"]: r for r in case_rows(store, run_id) if r["response_id"] in ids}


def _add_flip_details(store: Store, base: _RunData, cand: _RunData, blocks: list[dict[str, Any]]) -> None:
    """Read the flipped pairs' responses in full (text, failed checks, rationales): one more pass per run, only
    when something flipped."""
    flips = [f for b in blocks for f in b["flipped"]]
    full_b = _full_rows(store, base.run_id, {f["_ids"][0] for f in flips})
    full_c = _full_rows(store, cand.run_id, {f["_ids"][1] for f in flips})
    for f in flips:
        rb, rc = full_b[f["_ids"][0]], full_c[f["_ids"][1]]
        floors = f.pop("_floors")
        del f["_ids"]
        f["threshold"] = rb["threshold"]
        f["messages"] = rb["messages"]
        f["baseline"], f["candidate"] = _side(rb), _side(rc)
        deltas = {}
        for c in sorted(set(rb["scores"]) | set(rc["scores"])):
            sb, sc = rb["scores"].get(c), rc["scores"].get(c)
            if sb and sc and sb["status"] == "scored" and sc["status"] == "scored":
                d = float(sc["score"]) - float(sb["score"])
                deltas[c] = {"delta": _num(d), "change": classify(d, floors.get(c))}
            else:
                deltas[c] = {"delta": None, "change": "not scored"}
        f["deltas"] = deltas
