"""Render a comparison document (reports.compare) as a terminal table, JSON, Markdown (for PR comments) or a
self-contained HTML page. Model and judge text is untrusted: escaped in Markdown and HTML.

The HTML section lives in templates/_compare.html.j2 and reads one variable, `compare` (the document), so the run
report can include it; its charts (compare_charts) draw into elements `compare-chart-N`, N counting the compared
targets from 1, and must be passed in the page's `charts_json`."""

from __future__ import annotations

from typing import Any

from harness.cli_common import table
from reports.render import _env, _md_cell, _plotly_js, _script_json, render_as

FORMATS = ("table", "json", "md", "html")
ARROW = {"pass_to_fail": "pass → fail", "fail_to_pass": "fail → pass"}
MD_FLIPS = 30  # flipped pairs shown per target in Markdown (a PR comment holds 65,536 characters)
MD_TEXT = 600  # characters of a response or rationale shown in Markdown
TABLE_TEXT = 160  # ... and in the terminal
MD_LIST = TABLE_LIST = 50  # pairs not evaluated listed in Markdown and in the terminal


def _f(value: Any, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _ci(ci: list[float] | None) -> str:
    return "–" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def _yes(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "no")


def _floor(floor: dict[str, Any] | None) -> str:
    return "–" if floor is None else f"{floor['case']:.2f} / {floor['mean']:.3f}"


def _clip(text: Any, limit: int) -> str:
    s = "" if text is None else " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _run_label(run: dict[str, Any]) -> str:
    return str(run["run_id"]) + (f" ({run['name']})" if run["name"] else "")


def _suite_line(s: dict[str, Any]) -> str:
    def ident(x: dict[str, Any] | None) -> str:
        return "absent" if x is None else f"{x['version']} ({str(x['hash'])[:12]})"

    parts = [f"{s['suite']}: {ident(s['baseline'])} → {ident(s['candidate'])}; {s['common_cases']} cases compared"]
    if s["added"]:
        parts.append(f"added: {', '.join(s['added'])}")
    if s["removed"]:
        parts.append(f"removed: {', '.join(s['removed'])}")
    if s["changed"]:
        changed = ", ".join(f"{c['case_id']} ({'/'.join(c['fields'])})" for c in s["changed"])
        parts.append(f"changed, not compared: {changed}")
    return "; ".join(parts)


def _criteria_rows(t: dict[str, Any]) -> list[list[Any]]:
    return [
        [
            c,
            b["n"],
            _f(b["baseline_mean"]),
            _f(b["candidate_mean"]),
            _f(b["mean_delta"], signed=True),
            _ci(b["ci95"]),
            _p(b["p_wilcoxon"]),
            _floor(b["noise_floor"]),
            _yes(b["within_noise_floor"]),
            _yes(b["ci_includes_zero"]),
            f"{b['improved']}/{b['regressed']}/{b['noise']}/{b['unchanged']}",
            b["not_scored"]["pairs"],
        ]
        for c, b in t["criteria"].items()
    ]


CRITERIA_HEAD = [
    "criterion",
    "n",
    "baseline",
    "candidate",
    "delta",
    "95% CI",
    "p Wilcoxon",
    "noise floor case/mean",
    "within floor",
    "CI has 0",
    "improved/regressed/noise/same",
    "not scored",
]


def _pass_fail_line(pf: dict[str, Any]) -> str:
    return (
        f"pass/fail over {pf['evaluated_pairs']} pairs: both pass {pf['both_pass']}, pass→fail {pf['pass_to_fail']}, "
        f"fail→pass {pf['fail_to_pass']}, both fail {pf['both_fail']}; pass rate {_pct(pf['baseline_pass_rate'])} → "
        f"{_pct(pf['candidate_pass_rate'])}; McNemar exact p = {_p(pf['p_mcnemar'])}"
    )


def checks_lines(t: dict[str, Any]) -> list[str]:
    """The deterministic checks alone (no judge): overall and per suite, pass rates, paired delta, McNemar."""
    checks = t.get("checks") or {}

    def line(scope: str, c: dict[str, Any]) -> str:
        return (
            f"checks {scope}: pass rate {_pct(c['baseline_pass_rate'])} → {_pct(c['candidate_pass_rate'])} over "
            f"{c['pairs']} pairs, delta {_f(c['delta'], signed=True)} {_ci(c['ci95'])}, fail→pass "
            f"{c['fail_to_pass']}, pass→fail {c['pass_to_fail']}; McNemar exact p = {_p(c['p_mcnemar'])}"
        )

    if not checks.get("pairs"):
        return []
    return [line("(all suites)", checks)] + [
        line(f"in {suite}", c) for suite, c in checks.get("by_suite", {}).items() if c["pairs"]
    ]


def trust_lines(doc: dict[str, Any]) -> list[str]:
    """Each run's judge canary verdict, per judge and criterion."""
    lines = []
    for role in ("baseline", "candidate"):
        trust = doc[role].get("judge_trust")
        if trust is None:
            continue
        for judge, block in trust["judges"].items():
            accs = ", ".join(
                f"{c} {_pct(k['accuracy'])} {_ci([100 * x for x in k['ci95']] if k['ci95'] else None)}"
                for c, k in block["criteria"].items()
            )
            verdict = "trusted" if block["trusted"] else "NOT TRUSTED"
            lines.append(f"judge canaries ({role} run), judge {judge}: {verdict}; accuracy {accs}")
    return lines


def _score_text(s: dict[str, Any] | None, limit: int) -> str:
    if s is None:
        return "–"
    if s["status"] != "scored":
        return f"{s['status']}: {_clip(s['reason'], limit)}"
    return f"{_f(s['score'])}: {_clip(s['rationale'], limit)}"


def _response_text(side: dict[str, Any], limit: int) -> str:
    return _clip(side["text"], limit) if side["status"] == "ok" else f"[{side['status']}] {_clip(side['error'], limit)}"


def _not_evaluated(n: dict[str, Any]) -> str:
    return f"{n['suite']} / {n['case_id']} / sample {n['sample']}: {n['baseline']} → {n['candidate']}"


def _checks_text(side: dict[str, Any]) -> str:
    return ", ".join(c["check"] for c in side["failed_checks"]) or "none"


# terminal -------------------------------------------------------------------------------------------------------
def render_table(doc: dict[str, Any]) -> str:
    lines = [f"compare  baseline {_run_label(doc['baseline'])}  →  candidate {_run_label(doc['candidate'])}"]
    for s in doc["suite_changes"]:
        lines.append(f"suite changed  {_suite_line(s)}")
    lines += [f"note: {n}" for n in doc["notes"]]
    lines += trust_lines(doc)
    for t in doc["targets"]:
        lines += [
            "",
            f"target {t['baseline_target']} → {t['candidate_target']}: {t['pairs']} pairs "
            f"(unpaired: baseline {t['unpaired']['baseline_only']}, candidate {t['unpaired']['candidate_only']})",
        ]
        if t["criteria"]:
            lines.append(table(CRITERIA_HEAD, _criteria_rows(t)))
        lines.append(_pass_fail_line(t["pass_fail"]))
        lines += checks_lines(t)
        if t["regressed_criteria"]:
            lines.append(f"REGRESSED beyond noise: {', '.join(t['regressed_criteria'])}")
        if t["improved_criteria"]:
            lines.append(f"improved beyond noise: {', '.join(t['improved_criteria'])}")
        if t["not_evaluated"]:
            lines.append(f"not evaluated (error or unscored on either side): {len(t['not_evaluated'])} pairs")
            lines += [f"  {_not_evaluated(n)}" for n in t["not_evaluated"][:TABLE_LIST]]
            if len(t["not_evaluated"]) > TABLE_LIST:
                lines.append(f"  … and {len(t['not_evaluated']) - TABLE_LIST} more (see --format json)")
        if t["flipped"]:
            lines.append(f"flipped ({len(t['flipped'])}, pass → fail first):")
        for f in t["flipped"]:
            lines.append(f"  [{ARROW[f['direction']]}] {f['suite']} / {f['case_id']} / sample {f['sample']}")
            for role in ("baseline", "candidate"):
                side = f[role]
                lines.append(
                    f"    {role:<9} {side['verdict']:<4} {_response_text(side, TABLE_TEXT)!r}; "
                    f"failed checks: {_checks_text(side)}"
                )
                for c, s in side["scores"].items():
                    lines.append(f"      {c}: {_score_text(s, TABLE_TEXT)}")
            changes = ", ".join(f"{c} {_f(d['delta'], signed=True)} ({d['change']})" for c, d in f["deltas"].items())
            if changes:
                lines.append(f"    delta: {changes}")
    lines += ["", "rules:", *[f"  {k}: {v}" for k, v in doc["rules"].items()]]
    return "\n".join(lines) + "\n"


# Markdown -------------------------------------------------------------------------------------------------------
def _md_row(cells: list[Any]) -> str:
    return "| " + " | ".join(_md_cell(c) for c in cells) + " |"


def render_markdown(doc: dict[str, Any]) -> str:
    b, c = doc["baseline"], doc["candidate"]
    lines = [f"## Comparison: {_md_cell(_run_label(b))} → {_md_cell(_run_label(c))}", ""]
    if doc["suite_changes"]:
        lines += ["**Suite changes**", "", *[f"- {_md_cell(_suite_line(s))}" for s in doc["suite_changes"]], ""]
    if doc["notes"]:
        lines += [*[f"> {_md_cell(n)}" for n in doc["notes"]], ""]
    if trust_lines(doc):
        lines += [*[f"- {_md_cell(n)}" for n in trust_lines(doc)], ""]
    for t in doc["targets"]:
        lines += [
            f"### {_md_cell(t['baseline_target'])} → {_md_cell(t['candidate_target'])}",
            "",
            f"{t['pairs']} pairs (unpaired: baseline {t['unpaired']['baseline_only']}, candidate "
            f"{t['unpaired']['candidate_only']}).",
            "",
        ]
        if t["criteria"]:
            lines += [_md_row(CRITERIA_HEAD), "|" + "---|" * len(CRITERIA_HEAD)]
            lines += [_md_row(r) for r in _criteria_rows(t)]
            lines.append("")
        lines += [_md_cell(_pass_fail_line(t["pass_fail"])), ""]
        if checks_lines(t):
            lines += [*[f"- {_md_cell(n)}" for n in checks_lines(t)], ""]
        if t["regressed_criteria"]:
            lines += [f"**Regressed beyond noise:** {_md_cell(', '.join(t['regressed_criteria']))}", ""]
        if t["improved_criteria"]:
            lines += [f"Improved beyond noise: {_md_cell(', '.join(t['improved_criteria']))}", ""]
        if t["not_evaluated"]:
            lines += [
                f"<details><summary>{len(t['not_evaluated'])} pairs not evaluated (error or unscored on either "
                "side)</summary>",
                "",
                *[f"- {_md_cell(_not_evaluated(n))}" for n in t["not_evaluated"][:MD_LIST]],
                *([f"- … and {len(t['not_evaluated']) - MD_LIST} more"] if len(t["not_evaluated"]) > MD_LIST else []),
                "",
                "</details>",
                "",
            ]
        flips = t["flipped"]
        if flips:
            lines += [f"<details><summary>{len(flips)} flipped pairs (pass → fail first)</summary>", ""]
            for f in flips[:MD_FLIPS]:
                lines += _md_flip(f)
            if len(flips) > MD_FLIPS:
                lines += [f"… and {len(flips) - MD_FLIPS} more (see --format json or html).", ""]
            lines += ["</details>", ""]
    lines += ["<details><summary>Rules</summary>", ""]
    lines += [f"- **{k}**: {_md_cell(v)}" for k, v in doc["rules"].items()]
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def _md_flip(f: dict[str, Any]) -> list[str]:
    b, c = f["baseline"], f["candidate"]
    lines = [
        f"**{ARROW[f['direction']]}** {_md_cell(f['suite'])} / {_md_cell(f['case_id'])} / sample {f['sample']}",
        "",
        "| | baseline | candidate |",
        "|---|---|---|",
        _md_row(["verdict", b["verdict"], c["verdict"]]),
        _md_row(["response", _response_text(b, MD_TEXT), _response_text(c, MD_TEXT)]),
        _md_row(["failed checks", _checks_text(b), _checks_text(c)]),
    ]
    for crit, d in f["deltas"].items():
        label = f"{crit} (Δ {_f(d['delta'], signed=True)}, {d['change']})"
        lines.append(
            _md_row([label, _score_text(b["scores"].get(crit), MD_TEXT), _score_text(c["scores"].get(crit), MD_TEXT)])
        )
    return [*lines, ""]


# HTML -----------------------------------------------------------------------------------------------------------
def compare_charts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Per compared target with scored criteria, the mean deltas with their 95% CIs as error bars; element ids
    `compare-chart-N` (N: the target's position, from 1), as templates/_compare.html.j2 places them."""
    charts = []
    for n, t in enumerate(doc["targets"], start=1):
        crits = [c for c, b in t["criteria"].items() if b["mean_delta"] is not None]
        if not crits:
            continue
        blocks = [t["criteria"][c] for c in crits]
        ys = [b["mean_delta"] for b in blocks]
        colours = [
            "#b3261e" if c in t["regressed_criteria"] else "#17703a" if c in t["improved_criteria"] else "#8a93a6"
            for c in crits
        ]
        trace = {
            "type": "bar",
            "name": "mean delta",
            "x": crits,
            "y": ys,
            "marker": {"color": colours},
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": [
                    0 if b["ci95"] is None else round(b["ci95"][1] - y, 4) for b, y in zip(blocks, ys, strict=True)
                ],
                "arrayminus": [
                    0 if b["ci95"] is None else round(y - b["ci95"][0], 4) for b, y in zip(blocks, ys, strict=True)
                ],
            },
        }
        layout = {
            "title": {"text": f"{t['baseline_target']} → {t['candidate_target']}: mean delta, 95% CI"},
            "yaxis": {"title": {"text": "candidate - baseline"}, "zeroline": True},
            "showlegend": False,
            "margin": {"t": 70, "r": 10, "b": 60, "l": 60},
        }
        charts.append({"id": f"compare-chart-{n}", "traces": [trace], "layout": layout})
    return charts


def render_html(doc: dict[str, Any]) -> str:
    charts = compare_charts(doc)
    return (
        _env()
        .get_template("compare.html.j2")
        .render(
            compare=doc,
            charts_json=_script_json(charts),
            plotly_js=_plotly_js(),
        )
    )


def render_compare(doc: dict[str, Any], fmt: str) -> str:
    return render_as(doc, fmt, {"md": render_markdown, "html": render_html, "table": render_table})
