"""The report of a run whose judges scored the canaries (real CLI runs against the loopback fake OpenAI server): an
untrusted judge is said first and marks every judge-based figure, the deterministic checks stand on their own, the
judge's agreement with the checks is reported, and `--training-log` adds a fine-tune's loss curves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fake_openai_server import Action, Call, FakeOpenAIServer, reply, verdict
from jsonschema import Draft202012Validator

from harness.cli import cli, main

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "reports/schemas/report.schema.json").read_text())
JUDGED = re.compile(r"<<<RESPONSE (\w+)>>>\n(.*?)\n<<<END RESPONSE \1>>>", re.S)
PASSING = ["c0", "c1", "c2"]  # answer "OK": their check passes
FAILING = ["c3", "c4", "c5"]  # answer "Nope": their check fails
UNCHECKED = "c6"  # no check at all
MARK = "(checked)"


def prompt_of(cid: str) -> str:
    return f"[{cid}] Start your reply with OK."


def policy(call: Call) -> Action | None:
    """Targets: OK for the passing cases, Nope otherwise. Judges by model id: `flat` scores everything 4; `sharp`
    scores OK answers and marked canary answers 5, Nope answers 2, anything else 1."""
    if not call.is_judge:
        cid = re.search(r"\[(c\d)\]", call.text)
        assert cid is not None
        return reply(f"{'Nope' if cid.group(1) in FAILING else 'OK'}: answer to [{cid.group(1)}]")
    found = JUDGED.search(call.text)
    assert found is not None
    text = found.group(2).strip()
    if call.model == "flat":
        return verdict(4, "flat")
    if text.startswith("OK:") or MARK in text:
        return verdict(5, "sharp")
    return verdict(2 if text.startswith("Nope:") else 1, "sharp")


def write_suite(path: Path) -> Path:
    lines = ["suite: rep", "version: 1.0.0", "defaults:", "  criteria: [preciseness]", "cases:"]
    for cid in [*PASSING, *FAILING, UNCHECKED]:
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}"]
        if cid != UNCHECKED:
            lines.append("    checks: [{regex: '^OK'}]")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_canaries(path: Path, n: int = 12) -> Path:
    items = [
        {"id": f"k{i:02d}", "kind": "wrong_fact", "prompt": f"What is {i} plus one?", "good": f"{i + 1} {MARK}",
         "bad": f"{i + 2}"}
        for i in range(n)
    ]  # fmt: skip
    doc = {"canaries": "test-canaries", "version": "1.0.0", "defaults": {"criteria": ["preciseness"]}, "items": items}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def invoke(*args: Any) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def harness_exit(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """flat: the shipped canaries judged by a constant judge; sharp: a test canary set judged by a judge that tells
    good from bad; panel: both judges, no canaries."""
    work = tmp_path_factory.mktemp("canary-report")
    suite, db = write_suite(work / "s.yaml"), work / "r.db"
    canaries = write_canaries(work / "t.canaries.yaml")
    out: dict[str, Any] = {"db": db, "work": work}
    with FakeOpenAIServer(policy=policy) as server:

        def run(judges: dict[str, str], *extra: Any) -> str:
            args: list[Any] = ["run", suite, "-t", f"ft=openai:target@{server.url}", "--db", db, "--format", "json"]
            for name, model in judges.items():
                args += ["--judge", f"{name}=openai:{model}@{server.url}"]
            return str(json.loads(invoke(*args, *extra).stdout)["run_id"])

        out["flat"] = run({"flat": "flat"})
        out["sharp"] = run({"sharp": "sharp"}, "--canaries", canaries)
        out["panel"] = run({"sharp": "sharp", "flat": "flat"}, "--no-canaries")
    return out


def report(runs: dict[str, Any], run: str, fmt: str, *extra: Any) -> str:
    return invoke("report", runs[run], "--db", runs["db"], "--format", fmt, *extra).stdout


def md_sections(md: str) -> list[str]:
    return re.findall(r"^### (.+)$", md, re.M)


def md_rows(md: str, section: str) -> list[list[str]]:
    """The table rows (cells) of one Markdown section, header and rule left out."""
    body = md.split(f"### {section}\n", 1)[1].split("\n### ", 1)[0].split("<details>", 1)[0]
    lines = [ln for ln in body.splitlines() if ln.startswith("| ")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines[1:]]


def valid(doc: dict[str, Any]) -> None:
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(doc), key=str)
    assert not errors, errors[0]


# (b) an untrusted judge --------------------------------------------------------------------------------------------
def test_a_constant_judge_is_untrusted_in_the_json_report(runs: dict[str, Any]) -> None:
    doc = json.loads(report(runs, "flat", "json"))
    valid(doc)
    judging = doc["judging"]
    assert judging["trusted"] is False and judging["canaries"]["trusted"] is False
    assert judging["canaries"]["set"]["canaries"] == "judge-canaries" and judging["canaries"]["set"]["items"] == 58
    reasons = judging["canaries"]["judges"]["flat"]["reasons"]
    assert len(reasons) == 2 and all("not above chance" in r for r in reasons)
    # the checks block stands apart from the judge: 3 of the 6 responses with checks pass them
    target = doc["targets"]["ft"]
    assert {k: target["checks"][k] for k in ("passed", "evaluated", "pass_rate")} == {
        "passed": 3,
        "evaluated": 6,
        "pass_rate": 0.5,
    }
    verdicts = {c["case_id"]: c["checks_verdict"] for c in doc["cases"]}
    assert verdicts == {**dict.fromkeys(PASSING, "pass"), **dict.fromkeys(FAILING, "fail"), UNCHECKED: None}
    (coverage,) = doc["coverage"]
    assert coverage["checks"]["evaluated"] == 6 and coverage["checks"]["passed"] == 3


def test_the_markdown_report_says_first_that_the_judge_is_not_trustworthy(runs: dict[str, Any]) -> None:
    md = report(runs, "flat", "md")
    sections = md_sections(md)
    assert sections[0] == "Judge reliability (canaries)" and sections[1] == "Summary"
    first = md.split("### Judge reliability (canaries)\n", 1)[1].split("\n### ", 1)[0]
    assert "NOT TRUSTWORTHY" in first
    assert {row[0] for row in md_rows(md, "Judge reliability (canaries)")} == {"flat"}
    assert all(row[-1] == "NOT TRUSTED" for row in md_rows(md, "Judge reliability (canaries)"))
    # the judge-based cells are marked; the counts and the checks are not
    (summary,) = md_rows(md, "Summary")
    assert summary[0] == "ft" and summary[2].endswith(" ⚠") and summary[4].endswith(" ⚠")
    assert "⚠" not in summary[1] and "⚠" not in summary[3]
    (criterion,) = md_rows(md, "Scores per criterion")
    assert criterion[3].endswith(" ⚠")
    checks = md_rows(md, "Deterministic checks")
    assert checks and not any("⚠" in cell for row in checks for cell in row)
    html = report(runs, "flat", "html")
    assert "Judge reliability (canaries)" in html and "NOT TRUSTWORTHY" in html and " ⚠" in html


def test_a_trusted_judge_is_reported_after_the_summary_and_marks_nothing(runs: dict[str, Any]) -> None:
    doc = json.loads(report(runs, "sharp", "json"))
    valid(doc)
    assert doc["judging"]["trusted"] is True
    md = report(runs, "sharp", "md")
    sections = md_sections(md)
    assert sections[0] == "Summary" and "Judge reliability (canaries)" in sections
    (row,) = md_rows(md, "Judge reliability (canaries)")
    assert row[:3] == ["sharp", "preciseness", "12"] and row[3].startswith("100.0% [") and row[-1] == "trusted"
    assert "Every judge passed its canaries." in md and "⚠" not in md


def test_without_canaries_there_is_no_reliability_section(runs: dict[str, Any]) -> None:
    doc = json.loads(report(runs, "panel", "json"))
    valid(doc)
    assert "canaries" not in doc["judging"] and doc["judging"]["trusted"] is None
    md = report(runs, "panel", "md")
    assert "Judge reliability (canaries)" not in md_sections(md) and "⚠" not in md


# (g) judge scores against the deterministic checks -----------------------------------------------------------------
def test_agreement_with_checks_tells_a_judge_that_tracks_them_from_one_that_does_not(runs: dict[str, Any]) -> None:
    doc = json.loads(report(runs, "panel", "json"))
    agreement = doc["judging"]["agreement_with_checks"]
    assert agreement["suspect"] is True and set(agreement["judges"]) == {"flat", "sharp"}
    sharp = agreement["judges"]["sharp"]
    assert (sharp["n"], sharp["n_checks_passed"], sharp["n_checks_failed"]) == (6, 3, 3)  # c6 has no check
    assert (sharp["agreement"], sharp["kappa"], sharp["suspect"], sharp["note"]) == (1.0, 1.0, False, None)
    assert (sharp["mean_score_checks_passed"], sharp["mean_score_checks_failed"]) == (5.0, 2.0)
    assert set(sharp["criteria"]) == {"preciseness"}
    flat = agreement["judges"]["flat"]
    assert (flat["agreement"], flat["mean_score_checks_passed"], flat["mean_score_checks_failed"]) == (0.5, 4.0, 4.0)
    assert flat["suspect"] is True and "no lower than" in flat["note"]
    rows = {row[0]: row for row in md_rows(report(runs, "panel", "md"), "Judge vs deterministic checks")}
    assert rows["flat"][6] == "SUSPECT" and rows["sharp"][6] == "–"
    assert rows["sharp"][2] == "100.0%" and rows["sharp"][4] == "5.00 (n=3)" and rows["sharp"][5] == "2.00 (n=3)"


def test_no_agreement_block_without_checks(runs: dict[str, Any], tmp_path: Path) -> None:
    suite = tmp_path / "plain.yaml"
    suite.write_text(
        "suite: plain\nversion: 1.0.0\ndefaults:\n  criteria: [preciseness]\ncases:\n"
        f"  - id: c0\n    prompt: {json.dumps(prompt_of('c0'))}\n",
        encoding="utf-8",
    )
    db = tmp_path / "r.db"
    with FakeOpenAIServer(policy=policy) as server:
        args = ["run", suite, "-t", f"ft=openai:target@{server.url}", "--judge", f"j=openai:sharp@{server.url}"]
        run_id = json.loads(invoke(*args, "--no-canaries", "--db", db, "--format", "json").stdout)["run_id"]
    doc = json.loads(invoke("report", run_id, "--db", db, "--format", "json").stdout)
    assert "agreement_with_checks" not in doc["judging"]
    assert doc["targets"]["ft"]["checks"] == {"passed": 0, "evaluated": 0, "pass_rate": None, "pass_rate_ci95": None}
    assert "Deterministic checks" not in md_sections(invoke("report", run_id, "--db", db, "--format", "md").stdout)


# (f) --training-log -----------------------------------------------------------------------------------------------
TRAINING_LOG = {
    "fingerprint": "abc",
    "base_model": "tiny-base",
    "data": "/private/path/sft.jsonl",
    "settings": {"rank": 8, "lr": 0.0002, "batch": 4},
    "train_examples": 40,
    "val_examples": 8,
    "epochs": 0.4,
    "steps": [{"step": s, "train_loss": round(2.0 - 0.25 * s, 3)} for s in range(1, 5)],
    "validation": [{"step": 0, "val_loss": 2.1}, {"step": 4, "val_loss": 1.3}],
    "seconds": 12.3,
}


def test_training_log_adds_a_section_and_a_loss_chart(runs: dict[str, Any], tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "training_log.json").write_text(json.dumps(TRAINING_LOG), encoding="utf-8")
    md = report(runs, "sharp", "md", "--training-log", f"ft={adapter / 'training_log.json'}")
    assert md_sections(md)[-1] == "Fine-tune training"
    (row,) = md_rows(md, "Fine-tune training")
    assert row[:6] == ["ft", "4", "40", "8", "1.000", "2.100 → 1.300"]
    assert row[6] == "LoRA r=8, lr 0.0002, batch 4"

    doc = json.loads(report(runs, "sharp", "json", "--training-log", f"ft={adapter}"))  # the adapter folder works too
    valid(doc)
    assert set(doc["training"]) == {"ft"}
    assert doc["training"]["ft"]["steps"] == TRAINING_LOG["steps"] and "data" not in doc["training"]["ft"]

    html = report(runs, "sharp", "html", "--training-log", f"ft={adapter}")
    assert '<div class="chart" id="chart-loss-1"></div>' in html and "Fine-tune training" in html
    assert "/private/path" not in html
    data = re.search(r'<script id="charts-data" type="application/json">(.*?)</script>', html, re.S)
    assert data is not None
    (chart,) = [c for c in json.loads(data.group(1)) if c["id"] == "chart-loss-1"]
    train, val = chart["traces"]
    assert (train["x"], train["y"]) == ([1, 2, 3, 4], [1.75, 1.5, 1.25, 1.0])
    assert (val["x"], val["y"]) == ([0, 4], [2.1, 1.3])
    assert chart["layout"]["title"]["text"] == "ft: fine-tune loss per step"


@pytest.mark.parametrize(
    ("content", "value", "message"),
    [
        ("{not json", "ft={path}", "the training log is not JSON"),
        ('{"steps": [{"step": 1}], "validation": []}', "ft={path}", "steps"),
        ("[1, 2]", "ft={path}", "not a JSON object"),
        (None, "ft={path}", "cannot read the training log"),
        ("{}", "nobody={path}", "the run has no target 'nobody'"),
        ("{}", "{path}", "TARGET=PATH"),
    ],
)
def test_a_bad_training_log_is_a_usage_error_naming_the_file(
    runs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, value: str,
    message: str,
) -> None:  # fmt: skip
    path = tmp_path / "training_log.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, err = harness_exit(
        capsys, "report", runs["sharp"], "--db", runs["db"], "--training-log", value.format(path=path)
    )
    assert code == 2 and message in err
    if "ft=" in value:
        assert str(path) in err
