"""The HTML report in a real browser (headless Chromium, see tests/browser.py): it renders offline, its charts are
drawn, and hostile model text, judge rationales and error messages are shown as text and never run.

The screenshot is kept as a test artifact: test-artifacts/report.png under the repository root.

A control page first puts the same payloads in unescaped and checks that each one does run in this browser
(and that a remote request is seen), so the report test's "never ran" and "no request" are real findings."""

from __future__ import annotations

import html as htmllib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from browser import ARTIFACTS, Element, assert_charts_rendered, open_in_chromium, parse_html, read_png
from click.testing import CliRunner
from fake_openai_server import Action, Call, FakeOpenAIServer, bad_request, reply, verdict
from plotly.offline import get_plotlyjs
from store_rows import rows

from harness.cli import cli

CRITERIA = ["preciseness", "instruction_following"]


def _mark(name: str) -> str:
    """JavaScript that leaves a trace in the DOM if it ever runs: an attribute on <body>."""
    return f"document.body.setAttribute('data-pwned-{name}','1')"


# each payload, when it is markup, runs script as soon as the page parses it (the control test proves it)
IMG = f"<img src=x onerror=\"document.title='pwned-img';{_mark('img')}\">"
SCRIPT = f"<script>document.title='pwned-script';{_mark('script')}</script>"
BREAKOUT = f'</pre></td></tr></table><svg onload="{_mark("svg")}"></svg>'
IFRAME = f'<iframe srcdoc="<script>parent.{_mark("iframe")}</script>"></iframe>'
TOGGLE = f'<details open ontoggle="{_mark("toggle")}"><summary>x</summary></details>'
TEXT_A = f'{IMG}{SCRIPT}\n{BREAKOUT} & "quoted", text'
TEXT_B = f"{IFRAME}{TOGGLE}"
RATIONALE = f'<img src=x onerror="{_mark("rationale")}"><b>bold</b> & <i>more</i>'
ERROR = f'<svg onload="{_mark("error")}">bad request</svg>'
PROMPT_MARKUP = f'<img src=x onerror="{_mark("prompt")}">'
MARKS = ["img", "script", "svg", "iframe", "toggle", "rationale", "error", "prompt"]
OLD = "the baseline's plain answer"
PLOTLY_TESTER = "js-plotly-tester"  # the hidden svg plotly adds to <body> to measure text
PLOTLY_COLOURS = [(31, 119, 180), (255, 127, 14)]  # the first two of plotly's default colorway: target a, target b


def prompt_of(case_id: str) -> str:
    return f"[{case_id}] Reply with some markup {PROMPT_MARKUP}, please."


def policy(call: Call) -> Action | None:
    if call.is_judge:
        return verdict(2 if prompt_of("second") in call.text and OLD not in call.text else 5, RATIONALE)
    if prompt_of("broken") in call.text:
        return bad_request(ERROR)
    if call.body.get("model") == "model-old":
        return reply(OLD)
    return reply(TEXT_B if call.body.get("model") == "model-b" else TEXT_A)


@pytest.fixture
def hostile_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A real run through the CLI (two targets and a judge on the loopback fake OpenAI server) whose responses,
    rationales, errors and prompts carry script, rendered with `harness report --format html`."""
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "markup.yaml"
    lines = ["suite: markup", "version: 1.0.0", "defaults:", f"  criteria: {json.dumps(CRITERIA)}", "cases:"]
    for cid in ("first", "second", "broken"):
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}"]
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "results.db"
    with FakeOpenAIServer(policy=policy) as server:
        judge = ["--judge", f"judge=openai:judge-model@{server.url}", "--no-canaries"]
        judge += ["--db", str(db), "--format", "json"]
        old = ["-t", f"a=openai:model-old@{server.url}", "--name", "baseline"]
        result = CliRunner().invoke(cli, ["run", str(suite), *old, *judge], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        targets = ["-t", f"a=openai:model-a@{server.url}", "-t", f"b=openai:model-b@{server.url}"]
        result = CliRunner().invoke(cli, ["run", str(suite), *targets, *judge], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    out = tmp_path / "report.html"
    sections = ["--baseline", "baseline", "--primary", "a"]  # the regression and failover sections too
    result = CliRunner().invoke(
        cli, ["report", run_id, "--format", "html", "--db", str(db), "-o", str(out), *sections], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return {"db": db, "run_id": run_id, "path": out, "html": out.read_text(encoding="utf-8")}


def body_marks(tree: Element) -> dict[str, str]:
    """Every data-pwned-* attribute anywhere in the document."""
    return {k: v for e in tree.iter() for k, v in e.attrs.items() if k.startswith("data-pwned")}


def title_of(tree: Element) -> str:
    """The document's title (plotly's svg icons have <title> elements of their own)."""
    (head,) = tree.find_all("head")
    return head.find_all("title")[0].text()


def test_control_page_shows_the_payloads_do_run_and_requests_are_seen(tmp_path: Path) -> None:
    """The same payloads, unescaped, in a page with a remote image: every one runs, and the request is logged."""
    page = tmp_path / "control.html"
    payloads = [TEXT_A, TEXT_B, RATIONALE, ERROR, PROMPT_MARKUP]
    page.write_text(
        "<!DOCTYPE html><html><head><title>control</title></head><body><table><tr><td><pre>"
        + "".join(payloads)
        + '<img src="https://cdn.example.com/logo.png"></body></html>',
        encoding="utf-8",
    )
    result = open_in_chromium(page)
    tree = parse_html(result.dom)
    assert set(body_marks(tree)) == {f"data-pwned-{m}" for m in MARKS}, result.dom[:2000]
    assert title_of(tree) in ("pwned-img", "pwned-script")
    assert result.page_requests == ["https://cdn.example.com/logo.png"]


def test_report_renders_offline_draws_charts_and_never_runs_model_text(hostile_report: dict[str, Any]) -> None:
    db, run_id, path, page_html = (hostile_report[k] for k in ("db", "run_id", "path", "html"))
    # the store really holds the hostile text
    ok = "SELECT text FROM responses WHERE status = 'ok' AND run_id = ?"
    assert {r["text"] for r in rows(db, ok, run_id)} == {TEXT_A, TEXT_B}
    assert {r["rationale"] for r in rows(db, "SELECT rationale FROM judgments")} == {RATIONALE}
    assert all(ERROR in r["error"] for r in rows(db, "SELECT error FROM responses WHERE status != 'ok'"))

    # self-contained as written: no src/href to anywhere (plotly.js itself is inline, its text left out here)
    around = page_html.replace(get_plotlyjs(), "")
    assert not re.search(r"\b(?:src|href|action)\s*=\s*[\"']?\s*(?:[a-z]+:)?//", around, re.I)
    for raw in ("<img", "<script>document", "<svg", "<iframe", "<details open"):
        assert raw not in around, f"{raw!r} unescaped in the report as written"

    shot = ARTIFACTS / "report.png"
    result = open_in_chromium(path, screenshot=shot)
    assert result.page_requests == [], f"the report made network requests: {result.page_requests}"
    tree = parse_html(result.dom)

    # charts: every chart the page asks for, drawn by plotly: a histogram per criterion with a trace per target,
    # the means, the regression deltas of target a against the baseline, and the failover ranking
    drawn = assert_charts_rendered(tree, page_html)
    assert {f"chart-{n}" for n in range(1, len(CRITERIA) + 1)} | {"chart-means", "compare-chart-1"} <= set(drawn)
    assert any(c.startswith("failover") for c in drawn), drawn
    assert all(drawn[f"chart-{n}"] == 2 for n in range(1, len(CRITERIA) + 1)), drawn
    # the regression section lists the flipped case, the hostile candidate text shown as text beside the old one
    regression = tree.by_id("compare")
    assert TEXT_A in regression.text() and OLD in regression.text()
    assert "second" in regression.text()

    # nothing ran: no marks, title as written, no element the payloads would have made
    assert body_marks(tree) == {}
    assert title_of(tree) == title_of(parse_html(page_html)) == f"Run {run_id}"
    assert len(tree.find_all("script")) == len(parse_html(page_html).find_all("script"))
    for tag in ("img", "iframe"):
        assert tree.find_all(tag) == [], f"a {tag} element in the rendered report"
    in_charts = {id(svg) for chart in drawn for svg in tree.by_id(chart).find_all("svg")}
    stray = [e.attrs for e in tree.find_all("svg") if id(e) not in in_charts and e.attrs.get("id") != PLOTLY_TESTER]
    assert stray == [], f"svg elements outside the charts: {stray}"
    assert [e for e in tree.find_all("details") if "ontoggle" in e.attrs] == []

    # ... and the payloads are on the page as text, where they belong
    cases = tree.by_id("cases")
    allowed = {"table", "thead", "tbody", "tr", "th", "td", "code", "br", "details", "summary", "pre", "div", "span"}
    allowed.add("b")  # the criterion names in the judge column
    assert {e.tag for e in cases.iter()} <= allowed, {e.tag for e in cases.iter()} - allowed
    pres = [e.text() for e in cases.find_all("pre")]
    assert pres.count(TEXT_A) == 2 and pres.count(TEXT_B) == 2  # cases first and second, per target
    assert any(PROMPT_MARKUP in p for p in pres)
    assert cases.text().count(RATIONALE) == 4 * len(CRITERIA)  # 2 targets x 2 answered cases
    assert ERROR in cases.text()
    dom_cases = result.dom[result.dom.index('id="cases"') :]
    assert htmllib.escape(IMG, quote=False) in dom_cases  # serialised as text: &lt;img src=x onerror="...&gt;
    assert "&lt;img src=x onerror=" in dom_cases and "&lt;script&gt;document.title=" in dom_cases

    # the screenshot: a real PNG of the page, with both targets' bars in it
    assert shot.stat().st_size > 10_000
    png = read_png(shot)
    assert (png.width, png.height) == (1280, 2400)
    assert png.colours() > 50, "the screenshot is (nearly) one colour"
    for colour in PLOTLY_COLOURS:
        assert png.count(colour, tolerance=2) > 1000, f"no bars of colour {colour} in the screenshot"


def test_a_missing_browser_fails_saying_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "page.html"
    page.write_text("<!DOCTYPE html><html><body>x</body></html>", encoding="utf-8")
    monkeypatch.setenv("HARNESS_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(pytest.fail.Exception, match=r"HARNESS_CHROMIUM=.*make install-browser"):
        open_in_chromium(page)
    monkeypatch.delenv("HARNESS_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))  # no browser on PATH
    with pytest.raises(pytest.fail.Exception, match=r"none of chromium, chromium-browser, google-chrome.*apt-get"):
        open_in_chromium(page)
