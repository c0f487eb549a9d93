"""Render a summary document as JSON, Markdown or self-contained HTML (plotly.js embedded once)."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import orjson

from reports.sections import Section, criteria_names, fmt, pct, report_sections, usd

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = ("html", "md", "json")


def render_json(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"


def _md_cell(text: Any) -> str:
    # model and endpoint text is untrusted: no raw HTML in Markdown that may be rendered with HTML allowed
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def md_table(section: Section) -> list[str]:
    lines = [f"### {section.title}", ""]
    lines += ["| " + " | ".join(_md_cell(h) for h in section.header) + " |", "|" + "---|" * len(section.header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in section.rows]
    if section.note:
        lines += ["", f"_{_md_cell(section.note)}_"]
    return [*lines, ""]


def render_markdown(doc: dict[str, Any]) -> str:
    run = doc["run"]
    lines = [f"## Run `{run['run_id']}`" + (f" ({_md_cell(run['name'])})" if run["name"] else ""), ""]
    suites = ", ".join(f"{s['suite']}@{s['version']} (`{s['hash'][:12]}`)" for s in run["suites"])
    judge = run["judge"]["name"] if run["judge"] else "none"
    lines += [
        f"Suites: {_md_cell(suites) or '–'}. Judge: {_md_cell(judge)}. Samples: {run['samples']}. "
        f"Status: {run['status']}.",
        "",
    ]
    for section in report_sections(doc):
        lines += md_table(section)
    trust = judging_lines(doc.get("judging") or {}) + ifeval_lines(doc.get("ifeval") or {})
    if trust:
        lines += ["**Judge and verifiable instructions**", "", *[f"- {_md_cell(t)}" for t in trust]]
    failing = [r for r in doc.get("cases", []) if r["verdict"] != "pass"]
    if failing:
        lines += [
            "",
            f"<details><summary>{len(failing)} responses not passing</summary>",
            "",
            "| suite | case | target | sample | verdict | why |",
            "|---|---|---|---|---|---|",
        ]
        for r in failing[:200]:
            lines.append(
                "| "
                + " | ".join(
                    _md_cell(x) for x in (r["suite"], r["case_id"], r["target"], r["sample"], r["verdict"], why(r))
                )
                + " |"
            )
        lines += ["", "</details>"]
    if "regression" in doc:
        from reports.compare_render import render_markdown as compare_markdown

        lines += ["", compare_markdown(doc["regression"]).rstrip("\n")]
    if "failover" in doc:
        from reports.failover_render import render_markdown as failover_markdown

        lines += ["", failover_markdown(doc["failover"]).rstrip("\n")]
    return "\n".join(lines) + "\n"


def judging_lines(judging: dict[str, Any]) -> list[str]:
    """Plain-text lines on judge trust: canaries, noise floors, panel agreement, pairwise results."""
    lines = []
    canaries = judging.get("canaries")
    for judge, block in (canaries or {}).get("judges", {}).items():
        accs = ", ".join(
            f"{c} {pct(k['accuracy'])}"
            + (f" [{pct(k['ci95'][0])}, {pct(k['ci95'][1])}]" if k["ci95"] else "")
            + f" gap {fmt(k['mean_gap'])}"
            for c, k in block["criteria"].items()
        )
        verdict = "trusted" if block["trusted"] else "NOT TRUSTED: " + "; ".join(block["reasons"])
        lines.append(f"judge canaries  {judge}: accuracy {accs or '–'}; {verdict}")
    for criterion, n in (judging.get("noise") or {}).items():
        lines.append(
            f"judge noise  {criterion}: sd {n['sd']:.2f} over {n['samples_per_response']} samples x "
            f"{n['responses']} responses; noise floor per case {n['noise_floor_case']:.2f}, "
            f"per mean {n['noise_floor_mean']:.3f}"
        )
    for criterion, a in (judging.get("agreement") or {}).items():
        stat = (
            f"weighted kappa {fmt(a.get('weighted_kappa'), 3)}"
            if "weighted_kappa" in a
            else f"Krippendorff alpha {fmt(a.get('krippendorff_alpha'), 3)}"
        )
        lines.append(
            f"panel agreement  {criterion}: {stat} ({', '.join(a['judges'])}; "
            f"{a['responses_all_scored']} responses scored by all)"
        )
    for judge, r in (judging.get("pairwise") or {}).items():
        rates = ", ".join(
            f"{model} {w['wins']}-{w['losses']}-{w['ties']} (score {pct(w['score'])})"
            for model, w in r["win_rates"].items()
        )
        lines.append(
            f"pairwise  judge {judge}: {r['pairs']} pairs in both orders; wins-losses-ties {rates}; "
            f"position consistency {pct(r['position_consistency'])}; kappa between orders "
            f"{fmt(r['kappa_orders'], 3)}; shown-first won {pct(r['first_shown_win_rate'])}; "
            f"unscored verdicts {r['unscored']}"
        )
    return lines


def ifeval_lines(ifeval: dict[str, Any]) -> list[str]:
    """Plain-text lines: IFEval prompt- and instruction-level accuracy, strict and loose, per target."""

    def rate(block: dict[str, Any] | None) -> str:
        return "–" if not block else f"{pct(block['accuracy'])} ({block['passed']}/{block['total']})"

    return [
        f"IFEval  {t['target']}: prompt-level strict {rate(t['prompt_strict'])}, loose {rate(t['prompt_loose'])}; "
        f"instruction-level strict {rate(t['instruction_strict'])}, loose {rate(t['instruction_loose'])}"
        for t in ifeval.get("targets", [])
    ]


def why(row: dict[str, Any]) -> str:
    """A one-line reason for a verdict that is not `pass`."""
    if row["verdict"] == "error":
        return str(row["error"])[:200]
    failed = [c["check"] for c in row["checks"] if not c["passed"]]
    if failed:
        return "failed checks: " + ", ".join(failed)[:200]
    if row["verdict"] == "unscored":
        if not row["scores"]:
            return "unscored: nothing evaluated this response (no check, no rubric judge)"
        reasons = {s["reason"] for s in row["scores"].values() if s["status"] != "scored"}
        return "unscored: " + "; ".join(sorted(str(r) for r in reasons))[:200]
    low = [
        f"{c}={s['score']:g}"
        for c, s in row["scores"].items()
        if s["status"] == "scored" and s["score"] < row["threshold"]
    ]
    return f"below threshold {row['threshold']}: " + ", ".join(low) if low else ""


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters["fmt"] = fmt
    env.filters["pct"] = pct
    env.filters["usd"] = usd
    env.filters["ts"] = lambda t: dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "–"
    env.globals["why"] = why
    env.globals["compare_checks"] = _compare_checks
    env.globals["compare_trust"] = _compare_trust
    return env


def _compare_checks(target_block: dict[str, Any]) -> list[str]:
    from reports.compare_render import checks_lines  # compare_render builds on this module

    return checks_lines(target_block)


def _compare_trust(doc: dict[str, Any]) -> list[str]:
    from reports.compare_render import trust_lines

    return trust_lines(doc)


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no `</script>`, no HTML comment openers."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _score_axis(hists: list[dict[str, int]]) -> list[float]:
    """The x values of a criterion's histogram: every integer from 1 to the scale's top (5, or higher when a
    score above 5 was seen, as on MT-Bench's 1-10), plus any non-integer score seen (a panel's mean)."""
    seen = {float(k) for h in hists for k in h}
    top = max(5, int(max(seen, default=5)))
    return sorted(set(range(1, top + 1)) | seen)


def _key(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _error_bar(value: float | None, interval: list[float] | None) -> tuple[float, float]:
    if value is None or interval is None:
        return 0.0, 0.0
    return max(0.0, interval[1] - value), max(0.0, value - interval[0])


def histogram_data(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Charts of the run (shape: see base.html.j2): per criterion, grouped bars of score counts per target; the
    mean of every criterion per target with its 95% interval; pairwise win rates and Bradley-Terry ratings."""
    charts: list[dict[str, Any]] = []
    targets = list(doc["targets"].values())
    for n, crit in enumerate(criteria_names(doc), start=1):
        hists = [t["criteria"][crit]["histogram"] for t in targets if crit in t["criteria"]]
        xs = _score_axis(hists)
        traces = [
            {
                "type": "bar",
                "name": t["target"],
                "x": xs,
                "y": [t["criteria"][crit]["histogram"].get(_key(x), 0) for x in xs],
            }
            for t in targets
            if crit in t["criteria"]
        ]
        layout = {
            "title": {"text": f"{crit}: score distribution"},
            "barmode": "group",
            "xaxis": {"title": {"text": "score"}, "dtick": 1},
            "yaxis": {"title": {"text": "responses"}},
        }
        charts.append({"id": f"chart-{n}", "criterion": crit, "traces": traces, "layout": layout})
    if charts:
        means = []
        for t in targets:
            crits = [c for c, s in t["criteria"].items() if s["mean"] is not None]
            bars = [_error_bar(t["criteria"][c]["mean"], t["criteria"][c]["ci95"]) for c in crits]
            means.append(
                {
                    "type": "bar",
                    "name": t["target"],
                    "x": crits,
                    "y": [t["criteria"][c]["mean"] for c in crits],
                    "error_y": {"type": "data", "array": [u for u, _ in bars], "arrayminus": [d for _, d in bars]},
                }
            )
        layout = {"title": {"text": "mean score with 95% CI"}, "barmode": "group", "yaxis": {"title": {"text": "mean"}}}
        charts.append({"id": "chart-means", "criterion": None, "traces": means, "layout": layout})
    for judge, ratings in (doc.get("bradley_terry") or {}).items():
        bars = [_error_bar(r["rating"], r["ci95"]) for r in ratings]
        trace = {
            "type": "scatter",
            "mode": "markers",
            "x": [r["model"] for r in ratings],
            "y": [r["rating"] for r in ratings],
            "error_y": {"type": "data", "array": [u for u, _ in bars], "arrayminus": [d for _, d in bars]},
        }
        layout = {"title": {"text": f"Bradley-Terry rating (judge {judge})"}, "yaxis": {"title": {"text": "Elo"}}}
        charts.append({"id": f"chart-bt-{len(charts)}", "criterion": None, "traces": [trace], "layout": layout})
    if doc.get("training"):
        from reports.training import loss_charts

        charts += loss_charts(doc["training"])
    return charts


def _section_charts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The charts of the optional regression and failover sections of a run report."""
    charts: list[dict[str, Any]] = []
    if "regression" in doc:
        from reports.compare_render import compare_charts

        charts += compare_charts(doc["regression"])
    if "failover" in doc:
        from reports.failover_render import failover_charts

        charts += failover_charts(doc["failover"])
    return charts


def render_html(doc: dict[str, Any]) -> str:
    charts = histogram_data(doc)
    sections = _section_charts(doc)
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            doc=doc,
            run=doc["run"],
            criteria=criteria_names(doc),
            sections=report_sections(doc),
            charts=charts,
            charts_json=_script_json(charts + sections),
            judging=judging_lines(doc.get("judging") or {}) + ifeval_lines(doc.get("ifeval") or {}),
            plotly_js=_plotly_js(),
        )
    )


def render_as(doc: dict[str, Any], fmt: str, renderers: dict[str, Callable[[dict[str, Any]], str]]) -> str:
    """Render a document with the renderer named by `fmt` (json is shared by every document)."""
    if fmt == "json":
        return render_json(doc)
    if fmt not in renderers:
        raise ValueError(f"unknown format {fmt}")
    return renderers[fmt](doc)


def render(doc: dict[str, Any], fmt: str) -> str:
    return render_as(doc, fmt, {"md": render_markdown, "html": render_html})
