"""Rendering a stored run: model text is escaped in HTML, plotly.js is inline once with no CDN, and the
Markdown and JSON reports agree with the store."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_openai_server import Action, Call, FakeOpenAIServer, bad_request, reply, verdict
from plotly.offline import get_plotlyjs
from scipy.stats import binomtest
from store_rows import rows

from harness.cli import cli

CRITERIA = ["preciseness", "instruction_following"]
XSS_TEXT = "<script>alert(1)</script><img src=x onerror=alert(2)>"
XSS_RATIONALE = '<b onmouseover="alert(3)">bold</b> & <iframe src="javascript:alert(4)"></iframe>'
XSS_ERROR = "<svg onload=alert(5)>bad request</svg>"
RAW_TAGS = ["<script>alert(1)", "<img src=x", "<b onmouseover", "<iframe", "<svg onload"]


def prompt_of(case_id: str) -> str:
    return f"[{case_id}] Reply with some markup, please."


def policy(call: Call) -> Action | None:
    if call.is_judge:
        score = 2 if prompt_of("second") in call.text else 5
        return verdict(score, XSS_RATIONALE)
    if prompt_of("broken") in call.text:
        return bad_request(XSS_ERROR)
    return reply(XSS_TEXT)


@pytest.fixture
def stored_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "markup.yaml"
    lines = ["suite: markup", "version: 1.0.0", "defaults:", f"  criteria: {json.dumps(CRITERIA)}", "cases:"]
    for cid in ("first", "second", "broken"):
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}", "    references: ['<i>ref</i>']"]
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "results.db"
    with FakeOpenAIServer(policy=policy) as server:
        result = CliRunner().invoke(
            cli,
            [
                "run",
                str(suite),
                "-t",
                f"a=openai:model-a@{server.url}",
                "--judge",
                f"judge=openai:judge-model@{server.url}",
                "--no-canaries",
                "--db",
                str(db),
                "--samples",
                "2",
                "--format",
                "json",
            ],
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    return db, json.loads(result.stdout)["run_id"], tmp_path


def report(db: Path, run_id: str, fmt: str, out: Path) -> str:
    result = CliRunner().invoke(
        cli, ["report", run_id, "--format", fmt, "--db", str(db), "-o", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def test_html_escapes_untrusted_text_and_is_self_contained(stored_run: Any) -> None:
    db, run_id, tmp_path = stored_run
    html = report(db, run_id, "html", tmp_path / "report.html")

    # the run really holds the hostile text
    texts = {r["text"] for r in rows(db, "SELECT text FROM responses WHERE status = 'ok'")}
    assert texts == {XSS_TEXT}
    assert {r["rationale"] for r in rows(db, "SELECT rationale FROM judgments")} == {XSS_RATIONALE}

    plotly_js = get_plotlyjs()
    assert html.count(plotly_js) == 1, "plotly.js must be inlined exactly once"
    page = html.replace(plotly_js, "")  # the page around the library
    for tag in RAW_TAGS:
        assert tag not in page, f"unescaped {tag!r} in the HTML report"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;b onmouseover=" in page
    assert "&lt;svg onload=alert(5)&gt;" in page
    assert "&lt;i&gt;ref&lt;/i&gt;" in page

    assert not re.search(r"<script\b[^>]*\bsrc\s*=", html, re.IGNORECASE), "an external script"
    assert "https://cdn" not in page
    assert "<link" not in page.lower()
    # only the three script elements of the template: plotly.js, the chart data, the chart code
    assert len(re.findall(r"<script\b", page, re.IGNORECASE)) == 3
    assert run_id in page


def test_markdown_and_json_render_and_json_matches_the_store(stored_run: Any) -> None:
    db, run_id, tmp_path = stored_run
    md = report(db, run_id, "md", tmp_path / "report.md")
    assert f"## Run `{run_id}`" in md
    wilson = binomtest(2, 4).proportion_ci(method="wilson")
    assert f"| a | 3 | 50.0% [{100 * wilson.low:.1f}, {100 * wilson.high:.1f}] | 2 / 4 |" in md
    assert "mean preciseness [95% CI]" in md and "mean instruction_following [95% CI]" in md
    assert "4 responses not passing" in md
    assert "<script>alert(1)" not in md

    doc = json.loads(report(db, run_id, "json", tmp_path / "report.json"))
    assert doc["run"]["run_id"] == run_id
    (target,) = doc["targets"].values()
    responses = rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id)
    assert target["responses"] == len(responses) == 6
    assert target["errors"] == sum(r["status"] == "error" for r in responses) == 2
    assert target["cases"] == 3
    judgments = rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id)
    for criterion in CRITERIA:
        scores = [j["score"] for j in judgments if j["criterion"] == criterion and j["status"] == "scored"]
        stats = target["criteria"][criterion]
        assert stats["n"] == len(scores) == 4
        assert stats["mean"] == pytest.approx(statistics.fmean(scores))
        assert stats["min"] == min(scores) and stats["max"] == max(scores)
        assert sum(stats["histogram"].values()) == len(scores)
        low, high = stats["ci95"]
        assert min(scores) <= low <= stats["mean"] <= high <= max(scores)
    assert target["pass_rate_ci95"] == pytest.approx([wilson.low, wilson.high], abs=1e-4)
    assert target["passed"] == 2 and target["failed"] == 2 and target["pass_rate"] == 0.5
    by_id = {r["id"]: r for r in responses}
    assert len(doc["cases"]) == len(responses)
    for case in doc["cases"]:
        stored = by_id[case["response_id"]]
        assert case["text"] == stored["text"]
        assert case["status"] == stored["status"]
        assert case["attempts"] == stored["attempts"]
        if stored["status"] == "ok":
            assert case["text"] == XSS_TEXT
            assert {c: s["rationale"] for c, s in case["scores"].items()} == dict.fromkeys(CRITERIA, XSS_RATIONALE)
        else:
            assert XSS_ERROR in case["error"] and case["scores"] == {}


def test_json_report_validates_against_its_documented_schema(stored_run: Any) -> None:
    from jsonschema import Draft202012Validator

    db, run_id, tmp_path = stored_run
    schema = json.loads((Path(__file__).resolve().parents[2] / "reports/schemas/report.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    doc = json.loads(report(db, run_id, "json", tmp_path / "report.json"))
    errors = sorted(Draft202012Validator(schema).iter_errors(doc), key=str)
    assert not errors, errors[0]
    # the schema is not vacuous: a report missing a contract field fails it
    del doc["targets"]["a"]["criteria"]["preciseness"]["ci95"]
    assert list(Draft202012Validator(schema).iter_errors(doc))
