"""Render a summary document as JSON, Markdown or self-contained HTML (plotly.js embedded once)."""

from __future__ import annotations

import datetime as dt
import html
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import orjson

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = ("html", "md", "json")


def render_json(doc: dict[str, Any]) -> str:
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n"


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:.4g}"


def _md_cell(text: Any) -> str:
    # model and endpoint text is untrusted: no raw HTML in Markdown that may be rendered with HTML allowed
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def criteria_names(doc: dict[str, Any]) -> list[str]:
    return sorted({c for t in doc["targets"].values() for c in t["criteria"]})


def render_markdown(doc: dict[str, Any]) -> str:
    run = doc["run"]
    crits = criteria_names(doc)
    lines = [f"## Run `{run['run_id']}`" + (f" ({run['name']})" if run["name"] else ""), ""]
    suites = ", ".join(f"{s['suite']}@{s['version']} (`{s['hash'][:12]}`)" for s in run["suites"])
    judge = run["judge"]["name"] if run["judge"] else "none"
    lines += [f"Suites: {suites}. Judge: {_md_cell(judge)}. Samples: {run['samples']}. Status: {run['status']}.", ""]
    head = [
        "target",
        "cases",
        "pass rate",
        "passed/evaluated",
        *[f"mean {c}" for c in crits],
        "errors",
        "unscored",
        "tokens in/out",
        "p50 latency",
        "availability",
        "$/1k cases",
    ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for t in doc["targets"].values():
        cells = [
            _md_cell(t["target"]),
            str(t["cases"]),
            _pct(t["pass_rate"]),
            f"{t['passed']}/{t['evaluated']}",
            *[_fmt(t["criteria"].get(c, {}).get("mean")) for c in crits],
            str(t["errors"]),
            str(t["unscored"]),
            f"{t['tokens_in']}/{t['tokens_out']}",
            _fmt(t["latency_ms_p50"], 0) + " ms",
            _pct(t["availability"]),
            _usd(t["cost"]["usd_per_1000_cases"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    trust = judging_lines(doc.get("judging") or {}) + ifeval_lines(doc.get("ifeval") or {})
    if trust:
        lines += ["", "**Judge and verifiable instructions**", "", *[f"- {_md_cell(t)}" for t in trust]]
    failing = [r for r in doc["cases"] if r["verdict"] != "pass"]
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
    return "\n".join(lines) + "\n"


def judging_lines(judging: dict[str, Any]) -> list[str]:
    """Plain-text lines on judge trust: noise floors, panel agreement, pairwise results."""
    lines = []
    for criterion, n in (judging.get("noise") or {}).items():
        lines.append(
            f"judge noise  {criterion}: sd {n['sd']:.2f} over {n['samples_per_response']} samples x "
            f"{n['responses']} responses; noise floor per case {n['noise_floor_case']:.2f}, "
            f"per mean {n['noise_floor_mean']:.3f}"
        )
    for criterion, a in (judging.get("agreement") or {}).items():
        stat = (
            f"weighted kappa {_fmt(a.get('weighted_kappa'), 3)}"
            if "weighted_kappa" in a
            else f"Krippendorff alpha {_fmt(a.get('krippendorff_alpha'), 3)}"
        )
        lines.append(
            f"panel agreement  {criterion}: {stat} ({', '.join(a['judges'])}; "
            f"{a['responses_all_scored']} responses scored by all)"
        )
    for judge, r in (judging.get("pairwise") or {}).items():
        rates = ", ".join(
            f"{model} {w['wins']}-{w['losses']}-{w['ties']} (score {_pct(w['score'])})"
            for model, w in r["win_rates"].items()
        )
        lines.append(
            f"pairwise  judge {judge}: {r['pairs']} pairs in both orders; wins-losses-ties {rates}; "
            f"position consistency {_pct(r['position_consistency'])}; kappa between orders "
            f"{_fmt(r['kappa_orders'], 3)}; shown-first won {_pct(r['first_shown_win_rate'])}; "
            f"unscored verdicts {r['unscored']}"
        )
    return lines


def ifeval_lines(ifeval: dict[str, Any]) -> list[str]:
    """Plain-text lines: IFEval prompt- and instruction-level accuracy, strict and loose, per target."""

    def rate(block: dict[str, Any] | None) -> str:
        return "–" if not block else f"{_pct(block['accuracy'])} ({block['passed']}/{block['total']})"

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
    env.filters["fmt"] = _fmt
    env.filters["pct"] = _pct
    env.filters["usd"] = _usd
    env.filters["ts"] = lambda t: dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else "–"
    env.globals["why"] = why
    return env


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs())


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no `</script>`, no HTML comment openers."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def histogram_data(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One chart per criterion: grouped bars of score counts per target (chart shape: see base.html.j2)."""
    charts = []
    for n, crit in enumerate(criteria_names(doc), start=1):
        traces = []
        for t in doc["targets"].values():
            stats = t["criteria"].get(crit)
            if not stats:
                continue
            hist = stats["histogram"]
            xs = [1, 2, 3, 4, 5]
            traces.append({"type": "bar", "name": t["target"], "x": xs, "y": [hist.get(str(x), 0) for x in xs]})
        layout = {
            "title": {"text": crit},
            "barmode": "group",
            "xaxis": {"title": {"text": "score"}, "dtick": 1},
            "yaxis": {"title": {"text": "responses"}},
        }
        charts.append({"id": f"chart-{n}", "criterion": crit, "traces": traces, "layout": layout})
    return charts


def render_html(doc: dict[str, Any]) -> str:
    charts = histogram_data(doc)
    return (
        _env()
        .get_template("report.html.j2")
        .render(
            doc=doc,
            run=doc["run"],
            criteria=criteria_names(doc),
            charts=charts,
            charts_json=_script_json(charts),
            judging=judging_lines(doc.get("judging") or {}) + ifeval_lines(doc.get("ifeval") or {}),
            plotly_js=_plotly_js(),
        )
    )


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return render_json(doc)
    if fmt == "md":
        return render_markdown(doc)
    if fmt == "html":
        return render_html(doc)
    raise ValueError(f"unknown format {fmt}")
