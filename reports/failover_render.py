"""Render a failover document (reports/failover.py) as a plain-text table, JSON, Markdown or self-contained HTML.

The HTML page is reports/templates/failover.html.j2; its content is the include _failover.html.j2, which needs only
the variable `failover` (the document) and draws the chart `failover_charts(doc)` gives, so another page (the run
report) can include it and add those charts to its own `charts_json`."""

from __future__ import annotations

from typing import Any

from harness.cli_common import table
from reports.render import _env, _md_cell, _plotly_js, _script_json, render_as

FORMATS = ("table", "json", "md", "html")
DELTA_CHART_ID = "failover-delta"


def _signed(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def _ci(ci: list[float] | None) -> str:
    return "–" if ci is None else f"[{ci[0]:+.2f}, {ci[1]:+.2f}]"


def _num(value: float | None, digits: int = 2, unit: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:.4g}"


def _codes(flags: list[dict[str, Any]]) -> str:
    return ", ".join(f["code"] for f in flags) or "–"


def ranking_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "rank", "target", "mean delta", "95% CI", "retained", "pass agreement", "availability", "errors",
        "p50 ms", "p95 ms", "$/1k cases", "tie group", "flags",
    ]  # fmt: skip
    rows = [
        [
            str(e["rank"]),
            e["target"],
            _signed(e["mean_delta"]),
            _ci(e["ci95"]),
            _num(e["quality_retained"], 1, "%"),
            _share(e["pass_agreement"]),
            _share(e["availability"]),
            _share(e["error_rate"]),
            _num(e["latency_ms_p50"], 0),
            _num(e["latency_ms_p95"], 0),
            _usd(e["usd_per_1000_cases"]),
            str(e["tie_group"]),
            _codes(e["flags"]),
        ]
        for e in doc["ranking"]
    ]
    return head, rows


def criterion_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "target",
        "criterion",
        "n",
        "primary mean",
        "candidate mean",
        "delta",
        "95% CI",
        "Wasserstein",
        "KS",
        "KS p",
    ]
    rows = [
        [
            e["target"],
            crit,
            str(c["n"]),
            _num(c["primary_mean"]),
            _num(c["candidate_mean"]),
            _signed(c["mean_delta"]),
            _ci(c["ci95"]),
            _num(c["wasserstein"], 3),
            _num(c["ks_statistic"], 3),
            _num(c["ks_p"], 4),
        ]
        for e in doc["ranking"]
        for crit, c in e["criteria"].items()
    ]
    return head, rows


def pairwise_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["rank", "target", "judge", "win rate vs primary", "SE", "W-L-T", "n", "flags"]
    rows = [
        [
            str(e["rank"]),
            e["target"],
            e["judge"],
            _share(e["win_rate"]),
            _num(e["standard_error"], 3),
            f"{e['wins']}-{e['losses']}-{e['ties']}",
            str(e["n"]),
            _codes(e["flags"]),
        ]
        for e in doc["pairwise_ranking"]
    ]
    return head, rows


def cost_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "target", "responses", "tokens in/out", "per response in/out", "basis", "$/1M in", "$/1M out", "$/GPU-hour",
        "responses/s", "$/1k cases", "$/1M out tokens",
    ]  # fmt: skip
    rows = [
        [
            c["target"],
            str(c["responses"]),
            f"{c['tokens_in']}/{c['tokens_out']}",
            f"{_num(c['tokens_in_per_response'], 1)}/{_num(c['tokens_out_per_response'], 1)}",
            c["basis"] or "no price",
            _usd(c["usd_per_1m_input"]),
            _usd(c["usd_per_1m_output"]),
            _usd(c["usd_per_gpu_hour"]),
            _num(c["throughput_per_s"], 2),
            _usd(c["usd_per_1000_cases"]),
            _usd(c["usd_per_1m_output_tokens"]),
        ]
        for c in doc["cost"]
    ]
    return head, rows


def flag_lines(doc: dict[str, Any]) -> list[str]:
    return [f"{t}: {f['code']}: {f['message']}" for t, flags in doc["flags"].items() for f in flags]


def chain_line(doc: dict[str, Any]) -> str:
    cfg = doc["fallback_config"]["json"]
    return " -> ".join([cfg["primary"], *cfg["fallbacks"]])


def render_text(doc: dict[str, Any]) -> str:
    runs = ", ".join(r["run_id"] for r in doc["runs"])
    p = doc["primary_summary"]
    out = [
        f"failover for primary {doc['primary']} (runs {runs}; criteria {', '.join(doc['criteria']) or 'none'})",
        f"primary: availability {_share(p.get('availability'))}, errors {_share(p.get('error_rate'))}, "
        f"p50 {_num(p.get('latency_ms_p50'), 0)} ms, p95 {_num(p.get('latency_ms_p95'), 0)} ms, "
        f"{_usd(p.get('usd_per_1000_cases'))} per 1k cases",
        f"rule: {doc['rule']}",
        "",
        table(*ranking_rows(doc)),
    ]
    if doc["ranking"] and doc["criteria"]:
        out += ["", table(*criterion_rows(doc))]
    if doc["pairwise_ranking"]:
        out += ["", f"pairwise: {doc['pairwise_rule']}", table(*pairwise_rows(doc))]
    out += ["", "cost", table(*cost_rows(doc))]
    out += ["", *[f"flag  {line}" for line in flag_lines(doc)]] if flag_lines(doc) else []
    out += [f"note  {n}" for n in doc["notes"]]
    out += ["", f"fallback chain: {chain_line(doc)}  (config: --emit-config FILE.yaml|.json, or --format json)"]
    return "\n".join(out) + "\n"


def _md_table(head: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows],
    ]


def render_markdown(doc: dict[str, Any]) -> str:
    runs = ", ".join(f"`{r['run_id']}`" for r in doc["runs"])
    lines = [f"## Failover for `{_md_cell(doc['primary'])}`", "", f"Runs {runs}.", "", f"**Rule.** {doc['rule']}", ""]
    lines += _md_table(*ranking_rows(doc))
    if doc["ranking"] and doc["criteria"]:
        lines += ["", *_md_table(*criterion_rows(doc))]
    if doc["pairwise_ranking"]:
        lines += ["", f"**Pairwise.** {doc['pairwise_rule']}", "", *_md_table(*pairwise_rows(doc))]
    lines += ["", "**Cost**", "", *_md_table(*cost_rows(doc))]
    extra = [f"flag: {line}" for line in flag_lines(doc)] + [f"note: {n}" for n in doc["notes"]]
    if extra:
        lines += ["", *[f"- {_md_cell(x)}" for x in extra]]
    lines += ["", f"Fallback chain: {_md_cell(chain_line(doc))}", "", "```yaml"]
    lines += [doc["fallback_config"]["litellm_yaml"].replace("```", "'''").rstrip("\n"), "```"]
    return "\n".join(lines) + "\n"


def failover_charts(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One chart (shape: base.html.j2): mean paired delta against the primary per candidate, overall and per
    criterion, with 95% CI error bars."""
    ranking = doc["ranking"]
    if not ranking or not doc["criteria"]:
        return []
    targets = [e["target"] for e in ranking]

    def trace(name: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
        ys = [b["mean_delta"] for b in blocks]
        cis = [b["ci95"] for b in blocks]
        return {
            "type": "bar",
            "name": name,
            "x": targets,
            "y": ys,
            "error_y": {
                "type": "data",
                "symmetric": False,
                "array": [None if c is None or y is None else round(c[1] - y, 4) for c, y in zip(cis, ys, strict=True)],
                "arrayminus": [
                    None if c is None or y is None else round(y - c[0], 4) for c, y in zip(cis, ys, strict=True)
                ],
            },
        }

    traces = [trace("overall", ranking)]
    if len(doc["criteria"]) > 1:
        traces += [trace(c, [e["criteria"][c] for e in ranking]) for c in doc["criteria"]]
    layout = {
        "title": {"text": f"mean paired delta vs {doc['primary']} (95% CI)"},
        "barmode": "group",
        "yaxis": {"title": {"text": "score delta"}, "zeroline": True},
    }
    return [{"id": DELTA_CHART_ID, "traces": traces, "layout": layout}]


def render_html(doc: dict[str, Any]) -> str:
    charts = failover_charts(doc)
    return (
        _env()
        .get_template("failover.html.j2")
        .render(failover=doc, charts_json=_script_json(charts), plotly_js=_plotly_js())
    )


def render_failover(doc: dict[str, Any], fmt: str) -> str:
    return render_as(doc, fmt, {"md": render_markdown, "html": render_html, "table": render_text})
