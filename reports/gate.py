"""Quality gates: conditions on a run (and on its comparison with a baseline), each with its figure, and the
exit code that tells "the model got worse" (1) apart from "the run cannot be trusted" (3).

Trust conditions are checked first, per target; any that fails gives exit code 3 whatever the quality figures:
  * the run is complete;
  * availability (share of calls answered) >= min_availability;
  * error share (responses whose call failed, of all responses) <= max_errors;
  * unscored share (responses the judge gave no usable score, of the responses answered) <= max_unscored;
  * there is something to judge: at least one response evaluated (passed or failed).
Quality conditions (exit code 1 when any fails and every trust condition holds):
  * pass rate >= min_pass_rate, overall and per suite / per tag where given;
  * mean score >= min_mean[criterion];
  * against a baseline, per criterion with a tolerance: a regression fails the gate when the mean delta is a
    drop larger than the tolerance AND it is significant: its 95% CI excludes zero (with at least
    MIN_PAIRS_FOR_CI pairs: a bootstrap of fewer hugs the deltas seen) or its Wilcoxon p-value is below alpha.
    The pass rate likewise with max_pass_rate_drop and McNemar's exact p-value. A requested regression check that
    cannot be made (a target without a baseline counterpart, a criterion not scored in both runs) is a failed
    trust condition (exit 3), never a silent pass.
Check-based conditions (quality, exit 1): the share of responses whose deterministic checks all pass (no judge
involved) >= min_check_pass_rate, overall and per suite.
Judge canaries: when the run scored them and a judge failed (its canary accuracy not above chance, or under the
floor), every judge-based condition (min_mean, max_regression, and min_pass_rate / max_pass_rate_drop of a
rubric-judged run, whose pass needs the judge) becomes a failed trust condition (exit 3) that names the judge and
the canaries it failed; check-based conditions still gate normally. When no judge-based condition is gated, a
note says the judge failed and the checks alone decided.
A usage or config error is exit code 2 (raised as UserError before any condition is read).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PASS, QUALITY_FAILED, USAGE, UNTRUSTWORTHY = 0, 1, 2, 3


@dataclass(frozen=True)
class GateRules:
    min_pass_rate: float | None = None
    min_pass_rate_suite: dict[str, float] = field(default_factory=dict)
    min_pass_rate_tag: dict[str, float] = field(default_factory=dict)
    min_mean: dict[str, float] = field(default_factory=dict)
    max_regression: dict[str, float] = field(default_factory=dict)  # criterion ("*" = every one) -> tolerance
    max_pass_rate_drop: float | None = None
    min_check_pass_rate: float | None = None
    min_check_pass_rate_suite: dict[str, float] = field(default_factory=dict)
    min_canary_accuracy: float | None = None  # applied when the summary is made (the gate reads its verdict)
    alpha: float = 0.05
    max_unscored: float | None = 0.1
    max_errors: float | None = 0.1
    min_availability: float | None = 0.95


@dataclass(frozen=True)
class Condition:
    kind: str  # "trust", "quality", or "note" (shown, never decides the exit code)
    name: str
    target: str
    scope: str  # "run", "suite <name>", "tag <name>", "criterion <name>", "baseline <run>"
    threshold: float | None
    actual: float | None
    ok: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def trust_conditions(doc: dict[str, Any], rules: GateRules, targets: list[str]) -> list[Condition]:
    out: list[Condition] = []
    status = doc["run"]["status"]
    out.append(
        Condition("trust", "run_complete", "*", "run", None, None, status == "complete", f"run status is {status!r}")
    )
    for name in targets:
        t = doc["targets"][name]
        if rules.min_availability is not None:
            a = t["availability"]
            ok = a is not None and a >= rules.min_availability
            out.append(
                Condition(
                    "trust",
                    "min_availability",
                    name,
                    "run",
                    rules.min_availability,
                    a,
                    ok,
                    f"availability {_f(a)} (min {rules.min_availability:g}; "
                    f"{t['unavailable']} calls unavailable, {t['errors']} errors)",
                )
            )
        if rules.max_errors is not None:
            e = _share(t["errors"], t["responses"])
            ok = e is not None and e <= rules.max_errors
            out.append(
                Condition(
                    "trust",
                    "max_errors",
                    name,
                    "run",
                    rules.max_errors,
                    e,
                    ok,
                    f"error share {_f(e)} ({t['errors']} of {t['responses']}; max {rules.max_errors:g})",
                )
            )
        if rules.max_unscored is not None:
            answered = t["responses"] - t["errors"]
            u = _share(t["unscored"], answered)
            ok = u is None or u <= rules.max_unscored
            out.append(
                Condition(
                    "trust",
                    "max_unscored",
                    name,
                    "run",
                    rules.max_unscored,
                    u,
                    ok,
                    f"unscored share {_f(u)} ({t['unscored']} of {answered} answered; max {rules.max_unscored:g})",
                )
            )
        out.append(
            Condition(
                "trust",
                "evaluated",
                name,
                "run",
                None,
                float(t["evaluated"]),
                t["evaluated"] > 0,
                f"{t['evaluated']} responses evaluated (passed or failed)",
            )
        )
    return out


def _rate_condition(name: str, target: str, scope: str, block: dict[str, Any], minimum: float) -> Condition:
    rate = block["pass_rate"]
    ok = rate is not None and rate >= minimum
    by = "" if rate is None or ok else f", {100 * (minimum - rate):.1f} points short"
    return Condition(
        "quality",
        name,
        target,
        scope,
        minimum,
        rate,
        ok,
        f"pass rate {_f(rate)} ({block['passed']}/{block['evaluated']}; min {minimum:g}{by})",
    )


def quality_conditions(doc: dict[str, Any], rules: GateRules, targets: list[str]) -> list[Condition]:
    out: list[Condition] = []
    coverage = {(c["suite"], c["target"]): c for c in doc["coverage"]}
    for name in targets:
        t = doc["targets"][name]
        if rules.min_pass_rate is not None:
            out.append(_rate_condition("min_pass_rate", name, "run", t, rules.min_pass_rate))
        scoped = [(f"suite {s}", coverage.get((s, name)), m) for s, m in rules.min_pass_rate_suite.items()]
        scoped += [(f"tag {tag}", t["tags"].get(tag), m) for tag, m in rules.min_pass_rate_tag.items()]
        for scope, block, minimum in scoped:
            if block is None:
                missing = f"no response of {name} in this {scope.split()[0]}"
                out.append(Condition("quality", "min_pass_rate", name, scope, minimum, None, False, missing))
            else:
                out.append(_rate_condition("min_pass_rate", name, scope, block, minimum))
        for criterion, minimum in rules.min_mean.items():
            stats = t["criteria"].get(criterion)
            mean = None if stats is None else stats["mean"]
            ok = mean is not None and mean >= minimum
            ci = "" if stats is None or stats["ci95"] is None else f", 95% CI [{stats['ci95'][0]}, {stats['ci95'][1]}]"
            by = "" if mean is None or ok else f", {minimum - mean:.3f} short"
            out.append(
                Condition(
                    "quality",
                    "min_mean",
                    name,
                    f"criterion {criterion}",
                    minimum,
                    mean,
                    ok,
                    f"mean {criterion} {_f(mean)} (min {minimum:g}{ci}{by})",
                )
            )
    return out


def check_conditions(doc: dict[str, Any], rules: GateRules, targets: list[str]) -> list[Condition]:
    """Pass rates of the deterministic checks alone, overall and per suite: no judge involved."""
    out: list[Condition] = []
    coverage = {(c["suite"], c["target"]): c for c in doc["coverage"]}
    for name in targets:
        scoped: list[tuple[str, dict[str, Any] | None, float]] = []
        if rules.min_check_pass_rate is not None:
            scoped.append(("run", doc["targets"][name].get("checks"), rules.min_check_pass_rate))
        for suite, minimum in rules.min_check_pass_rate_suite.items():
            block = coverage.get((suite, name))
            scoped.append((f"suite {suite}", None if block is None else block.get("checks"), minimum))
        for scope, checks, minimum in scoped:
            if checks is None or not checks["evaluated"]:
                why = f"no response of {name} with deterministic checks in this {scope.split()[0]}"
                out.append(Condition("quality", "min_check_pass_rate", name, scope, minimum, None, False, why))
                continue
            rate = checks["pass_rate"]
            ok = rate >= minimum
            out.append(
                Condition(
                    "quality",
                    "min_check_pass_rate",
                    name,
                    scope,
                    minimum,
                    rate,
                    ok,
                    f"checks pass rate {_f(rate)} ({checks['passed']}/{checks['evaluated']}; min {minimum:g})",
                )
            )
    return out


def _judge_based(c: Condition, rubric_judged: bool) -> bool:
    if c.kind != "quality":
        return False
    return c.name in ("min_mean", "max_regression") or (
        rubric_judged and c.name in ("min_pass_rate", "max_pass_rate_drop")
    )


def canary_failures(judging: dict[str, Any]) -> list[str]:
    """Why the run's judges are not trusted: one line per judge and failed criterion, with the canaries failed."""
    lines = []
    for judge, block in (judging.get("canaries") or {}).get("judges", {}).items():
        if block.get("trusted", True):
            continue
        failed = sorted({cid for c in block.get("criteria", {}).values() for cid in c.get("failed", [])})
        shown = ", ".join(failed[:8]) + (f" and {len(failed) - 8} more" if len(failed) > 8 else "")
        reasons = "; ".join(block.get("reasons", [])) or "failed its canaries"
        lines.append(f"judge {judge}: {reasons}" + (f" (canaries failed: {shown})" if failed else ""))
    return lines


def apply_judge_trust(doc: dict[str, Any], conditions: list[Condition]) -> list[Condition]:
    """Judge-based conditions become failed trust conditions when a judge failed its canaries."""
    judging = doc.get("judging") or {}
    if judging.get("trusted") is not False:
        return conditions
    rubric_judged = bool(judging.get("judges")) and judging.get("mode") != "pairwise"
    why = " | ".join(canary_failures(judging)) or "a judge failed its canaries"
    out: list[Condition] = []
    gated = False
    for c in conditions:
        if _judge_based(c, rubric_judged):
            gated = True
            c = Condition(
                "trust",
                c.name,
                c.target,
                c.scope,
                c.threshold,
                c.actual,
                False,
                f"{c.message}; not trustworthy, judge-based: {why}",
            )
        out.append(c)
    if gated:
        out.append(Condition("trust", "judge_canaries", "*", "run", None, None, False, why))
    else:
        out.append(
            Condition(
                "note",
                "judge_canaries",
                "*",
                "run",
                None,
                None,
                True,
                f"{why}; no judge-based condition is gated, so the deterministic checks alone decided",
            )
        )
    return out


MIN_PAIRS_FOR_CI = 10  # below this a percentile bootstrap hugs the few deltas seen: only the p-value decides


def _unchecked(name: str, scope: str, why: str) -> Condition:
    """A regression condition that could not be checked: the gate cannot vouch for the run (exit 3)."""
    return Condition("trust", "regression_checked", name, scope, None, None, False, why)


def regression_conditions(compare: dict[str, Any], rules: GateRules, targets: list[str]) -> list[Condition]:
    """Per gated target and criterion: fail on a significant drop beyond the tolerance. A requested check that
    cannot be made (the target was not compared, a criterion was not scored in both runs, no pair was evaluated)
    is a failed trust condition, never a silent pass."""
    out: list[Condition] = []
    base = compare["baseline"]["name"] or compare["baseline"]["run_id"]
    blocks = {b["candidate_target"]: b for b in compare["targets"]}
    for name in targets:
        block = blocks.get(name)
        if block is None:
            out.append(_unchecked(name, f"baseline {base}", f"target {name} has no counterpart in baseline {base}"))
            continue
        named = [c for c in rules.max_regression if c != "*"]
        wanted = sorted(block["criteria"]) if "*" in rules.max_regression else []
        for criterion in sorted(set(named) | set(wanted)):
            tolerance = rules.max_regression.get(criterion, rules.max_regression.get("*"))
            c = block["criteria"].get(criterion)
            if tolerance is None:
                continue
            if c is None or not c["n"]:
                out.append(
                    _unchecked(name, f"criterion {criterion}", f"{criterion} was not scored on both sides of any pair")
                )
                continue
            out.append(_criterion_condition(name, criterion, c, tolerance, rules.alpha, base))
        if "*" in rules.max_regression and not block["criteria"]:
            out.append(_unchecked(name, f"baseline {base}", "no criterion was scored in both runs"))
        if rules.max_pass_rate_drop is not None:
            out.append(_pass_rate_condition(name, block["pass_fail"], rules, base))
    return out


def _criterion_condition(
    name: str, criterion: str, c: dict[str, Any], tolerance: float, alpha: float, base: str
) -> Condition:
    delta, ci, p, n = c["mean_delta"], c["ci95"], c["p_wilcoxon"], c["n"]
    by_ci = ci is not None and n >= MIN_PAIRS_FOR_CI and ci[1] < 0
    significant = by_ci or (p is not None and p < alpha)
    failed = delta is not None and delta < -tolerance and significant
    why = (
        f"mean delta {criterion} {_f(delta)} vs baseline {base} (tolerance {tolerance:g}; 95% CI "
        f"{ci if ci is not None else '–'}; Wilcoxon p {_f(p, 4)}; alpha {alpha:g}; n {n})"
    )
    if failed:
        why += f": a significant drop, {-delta - tolerance:.3f} beyond the tolerance"
    return Condition("quality", "max_regression", name, f"criterion {criterion}", -tolerance, delta, not failed, why)


def _pass_rate_condition(name: str, pf: dict[str, Any], rules: GateRules, base: str) -> Condition:
    if not pf["evaluated_pairs"]:
        return _unchecked(name, f"baseline {base}", "no pair was evaluated (pass or fail) in both runs")
    before, after, p = pf["baseline_pass_rate"], pf["candidate_pass_rate"], pf["p_mcnemar"]
    drop = None if before is None or after is None else before - after
    limit = rules.max_pass_rate_drop
    assert limit is not None
    failed = drop is not None and drop > limit and p is not None and p < rules.alpha
    why = (
        f"pass rate {_f(before)} -> {_f(after)} on {pf['evaluated_pairs']} paired responses "
        f"({pf['pass_to_fail']} pass->fail, {pf['fail_to_pass']} fail->pass; McNemar p {_f(p, 4)}; "
        f"max drop {limit:g})"
    )
    return Condition("quality", "max_pass_rate_drop", name, f"baseline {base}", limit, drop, not failed, why)


def verdict(conditions: list[Condition]) -> int:
    if any(not c.ok for c in conditions if c.kind == "trust"):
        return UNTRUSTWORTHY
    if any(not c.ok for c in conditions if c.kind == "quality"):
        return QUALITY_FAILED
    return PASS


OUTCOMES = {
    PASS: "passed: every condition holds",
    QUALITY_FAILED: "failed: a quality condition does not hold (the model got worse)",
    UNTRUSTWORTHY: "not trustworthy: the run cannot be judged (a target down, too many errors or unscored, or a "
    "judge that failed its canaries)",
}


def gate_document(
    doc: dict[str, Any], rules: GateRules, targets: list[str], compare: dict[str, Any] | None
) -> dict[str, Any]:
    conditions = trust_conditions(doc, rules, targets) + quality_conditions(doc, rules, targets)
    conditions += check_conditions(doc, rules, targets)
    if compare is not None:
        conditions += regression_conditions(compare, rules, targets)
    conditions = apply_judge_trust(doc, conditions)
    code = verdict(conditions)
    return {
        "schema": "judge-harness/gate@1",
        "run_id": doc["run"]["run_id"],
        "baseline": None if compare is None else compare["baseline"]["run_id"],
        "targets": targets,
        "exit_code": code,
        "outcome": OUTCOMES[code],
        "rules": asdict(rules),
        "conditions": [c.as_dict() for c in conditions],
        "failed": [c.as_dict() for c in conditions if not c.ok],
    }


def gate_markdown(gate: dict[str, Any]) -> str:
    """A Markdown block for a CI step summary or a pull-request comment."""
    import html

    def cell(text: Any) -> str:
        return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")

    icon = {PASS: "✅", QUALITY_FAILED: "❌", UNTRUSTWORTHY: "⚠️"}[gate["exit_code"]]
    lines = [f"### Quality gate {icon} {cell(gate['outcome'])}", "", f"Run `{cell(gate['run_id'])}`", ""]
    lines += ["| | kind | condition | target | scope | detail |", "|---|---|---|---|---|---|"]
    for c in gate["conditions"]:
        mark = ("note" if c["kind"] == "note" else "ok") if c["ok"] else "**FAIL**"
        lines.append(
            f"| {mark} | {c['kind']} | {cell(c['name'])} | {cell(c['target'])} | "
            f"{cell(c['scope'])} | {cell(c['message'])} |"
        )
    return "\n".join(lines) + "\n"
