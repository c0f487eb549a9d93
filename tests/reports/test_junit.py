"""`harness junit`: a real run (CLI against the loopback fake OpenAI server) written as JUnit XML that validates
against the Jenkins xUnit junit-10.xsd, counts what the store holds, explains failures, and survives hostile text."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
import xmlschema
from click.testing import CliRunner
from fake_openai_server import Action, Call, FakeOpenAIServer, bad_request, not_json, reply, server_error, verdict
from store_rows import rows

from harness.cli import cli
from harness.store import Store
from reports.junit import xml_safe
from reports.summary import case_rows

XSD = Path(__file__).parents[1] / "data" / "junit-10.xsd"
CONTROL = "".join(chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D))
HOSTILE = f"ctl:{CONTROL} end ]]> <b>bold</b> & AT&T"
HOSTILE_CLEAN = "ctl: end ]]> <b>bold</b> & AT&T"
LOW_RATIONALE = "RATIONALE-LOW: the answer is too vague"
ILLEGAL_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
SAMPLES = 2
# case -> (expected verdict, JUnit element, its type)
EXPECTED = {
    "good": ("pass", None, None),
    "checkfail": ("fail", "failure", "quality"),
    "lowscore": ("fail", "failure", "quality"),
    "broken": ("error", "error", "endpoint"),
    "unscored": ("unscored", "error", "unscored"),
    "hostile": ("fail", "failure", "quality"),
    "other": ("pass", None, None),
}


def prompt_of(case_id: str) -> str:
    return f"[{case_id}] Please answer."


def policy(call: Call) -> Action | None:
    if call.is_judge:
        if prompt_of("unscored") in call.text:
            return not_json()  # twice: the judge is asked again once, then the response is unscored
        if prompt_of("lowscore") in call.text:
            return verdict(2, LOW_RATIONALE)
        if prompt_of("hostile") in call.text:
            return verdict(1, "judge quotes " + HOSTILE)
        return verdict(5, "fine")
    if prompt_of("broken") in call.text:
        return bad_request("endpoint refused <svg> & more")
    if prompt_of("hostile") in call.text:
        return reply(HOSTILE)
    if prompt_of("checkfail") in call.text:
        return reply("nothing relevant")
    return reply("a fine answer")


def case_line(case_id: str, extra: str = "") -> str:
    return f"  - {{id: {case_id}, prompt: {json.dumps(prompt_of(case_id))}{extra}}}"


@dataclass
class Stored:
    db: Path
    run_id: str
    xml_path: Path
    xml: str


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    tmp = tmp_path_factory.mktemp("junit")
    main = [
        "suite: ci",
        "version: 1.2.0",
        "defaults: {criteria: [preciseness], threshold: 4}",
        "cases:",
        case_line("good", ", checks: [{contains: fine}]"),
        case_line("checkfail", ", checks: [{contains: EXPECTED-WORD}]"),
        case_line("lowscore"),
        case_line("broken"),
        case_line("unscored"),
        case_line("hostile"),
    ]
    (tmp / "ci.yaml").write_text("\n".join(main) + "\n", encoding="utf-8")
    other = ["suite: extra", "version: 0.1.0", "defaults: {criteria: [preciseness]}", "cases:", case_line("other")]
    (tmp / "extra.yaml").write_text("\n".join(other) + "\n", encoding="utf-8")
    db = tmp / "results.db"
    with pytest.MonkeyPatch.context() as mp, FakeOpenAIServer(policy=policy) as server:
        mp.chdir(tmp)
        result = CliRunner().invoke(
            cli,
            [
                "run",
                str(tmp / "ci.yaml"),
                str(tmp / "extra.yaml"),
                "-t",
                f"a=openai:model-a@{server.url}",
                "--judge",
                f"judge=openai:judge-model@{server.url}",
                "--samples",
                str(SAMPLES),
                "--db",
                str(db),
                "--format",
                "json",
            ],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        run_id = json.loads(result.stdout)["run_id"]
        out = tmp / "ci" / "junit.xml"
        written = CliRunner().invoke(
            cli, ["report", "--format", "junit", run_id, "--db", str(db), "-o", str(out)], catch_exceptions=False
        )
        assert written.exit_code == 0, written.output
    yield Stored(db, run_id, out, out.read_text(encoding="utf-8"))


def cases_by_key(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(c.attrib["classname"], c.attrib["name"]): c for c in root.iter("testcase")}


def test_validates_against_the_junit_xsd(stored: Stored) -> None:
    schema = xmlschema.XMLSchema(XSD)
    schema.validate(str(stored.xml_path))  # raises with the first violation
    # the schema is not vacuous: an attribute junit-10.xsd does not know, or a testcase without a name, fail it
    root = ET.fromstring(stored.xml)
    root.set("skipped", "0")
    assert not schema.is_valid(ET.tostring(root, encoding="unicode"))
    root = ET.fromstring(stored.xml)
    next(root.iter("testcase")).attrib.pop("name")
    assert not schema.is_valid(ET.tostring(root, encoding="unicode"))


def test_counts_and_testcases_match_the_store(stored: Stored) -> None:
    root = ET.fromstring(stored.xml)
    with closing(Store(stored.db)) as store:
        verdicts = Counter(r["verdict"] for r in case_rows(store, stored.run_id))
    expected = Counter({v: SAMPLES * sum(1 for e in EXPECTED.values() if e[0] == v) for v in ("pass", "fail")})
    expected.update({"error": SAMPLES, "unscored": SAMPLES})
    assert verdicts == expected  # the run really holds every kind of outcome
    assert root.attrib["tests"] == str(sum(verdicts.values())) == str(SAMPLES * len(EXPECTED))
    assert root.attrib["failures"] == str(verdicts["fail"])
    assert root.attrib["errors"] == str(verdicts["error"] + verdicts["unscored"])

    suites = {s.attrib["name"]: s for s in root.findall("testsuite")}
    assert set(suites) == {"ci@1.2.0", "extra@0.1.0"}
    for key in ("tests", "failures", "errors"):
        assert sum(int(s.attrib[key]) for s in suites.values()) == int(root.attrib[key])
    assert suites["extra@0.1.0"].attrib["tests"] == str(SAMPLES)
    assert all(s.attrib["skipped"] == "0" for s in suites.values())

    responses = rows(stored.db, "SELECT * FROM responses WHERE run_id = ?", stored.run_id)
    cases = cases_by_key(root)
    assert set(cases) == {(f"{r['suite']}.a", f"{r['case_id']}[sample {r['sample']}]") for r in responses}
    for r in responses:
        case = cases[(f"{r['suite']}.a", f"{r['case_id']}[sample {r['sample']}]")]
        assert float(case.attrib["time"]) == pytest.approx((r["latency_ms"] or 0) / 1000, abs=0.0006)
        _, tag, kind = EXPECTED[r["case_id"]]
        outcomes = [c for c in case if c.tag in ("failure", "error", "skipped")]
        if tag is None:
            assert outcomes == [], r["case_id"]
        else:
            assert [(o.tag, o.attrib["type"]) for o in outcomes] == [(tag, kind)], r["case_id"]
    total = sum(float(c.attrib["time"]) for c in cases.values())
    assert float(root.attrib["time"]) == pytest.approx(total, abs=0.002)


def test_failures_carry_checks_scores_and_rationales(stored: Stored) -> None:
    cases = cases_by_key(ET.fromstring(stored.xml))
    check = cases[("ci.a", "checkfail[sample 0]")].find("failure")
    assert check is not None
    assert "contains: EXPECTED-WORD" in check.attrib["message"]
    assert "not in the response" in check.attrib["message"]  # the check's detail
    assert "failed checks:" in (check.text or "") and "nothing relevant" in (check.text or "")

    low = cases[("ci.a", "lowscore[sample 1]")].find("failure")
    assert low is not None
    assert LOW_RATIONALE in low.attrib["message"] and "preciseness=2" in low.attrib["message"]
    assert "preciseness: 2 / threshold 4 (below threshold)" in (low.text or "")
    assert f"rationale: {LOW_RATIONALE}" in (low.text or "")
    assert "\n" not in low.attrib["message"]

    endpoint = cases[("ci.a", "broken[sample 0]")].find("error")
    assert endpoint is not None and "endpoint refused <svg> & more" in endpoint.attrib["message"]
    assert cases[("ci.a", "broken[sample 0]")].find("system-out") is None  # no response text to show

    unscored = cases[("ci.a", "unscored[sample 0]")].find("error")
    assert unscored is not None and "no JSON object" in unscored.attrib["message"]
    assert "preciseness: unscored" in (unscored.text or "")

    good = cases[("extra.a", "other[sample 0]")]
    assert good.find("system-out") is not None and good.findtext("system-out") == "a fine answer"


def test_properties_identify_the_run_suite_targets_and_judge(stored: Stored) -> None:
    root = ET.fromstring(stored.xml)
    suite = next(s for s in root.findall("testsuite") if s.attrib["name"] == "ci@1.2.0")
    props = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    with closing(Store(stored.db)) as store:
        config = store.run(stored.run_id)["config"]
    (identity,) = [s for s in config["suites"] if s["suite"] == "ci"]
    assert props["run_id"] == stored.run_id
    assert props["suite"] == "ci" and props["suite_version"] == "1.2.0"
    assert props["suite_hash"] == identity["hash"]
    assert re.fullmatch(r"a=openai:model-a@http://127\.0\.0\.1:\d+/v1", props["target.a"])
    assert props["judge.judge"].startswith("judge=openai:judge-model@")
    assert props["samples"] == str(SAMPLES)


def test_hostile_text_is_cleaned_and_escaped(stored: Stored) -> None:
    texts = {r["text"] for r in rows(stored.db, "SELECT text FROM responses WHERE case_id = 'hostile'")}
    assert texts == {HOSTILE}, "the store must hold the control characters for this test to mean anything"

    assert not ILLEGAL_IN_XML.search(stored.xml), "a character XML 1.0 forbids reached the document"
    assert "&#" not in stored.xml  # not smuggled as character references either
    assert "<b>bold" not in stored.xml and "]]> " not in stored.xml
    root = ET.fromstring(stored.xml)  # parses
    case = cases_by_key(root)[("ci.a", "hostile[sample 0]")]
    assert case.findtext("system-out") == HOSTILE_CLEAN
    failure = case.find("failure")
    assert failure is not None
    assert f"judge quotes {HOSTILE_CLEAN}" in failure.attrib["message"]
    assert f"response:\n{HOSTILE_CLEAN}" in (failure.text or "")


def test_xml_safe_removes_only_what_xml_forbids() -> None:
    kept = "tab\tnewline\nreturn\r é ✓ \U0001f600 \ud7ff \ue000 \ufffd"
    assert xml_safe(kept) == kept
    assert xml_safe(f"a{CONTROL}b\ud800c\udfffd\ufffee\uffff") == "abcde"


def test_junit_command_prints_to_stdout_without_output(stored: Stored) -> None:
    result = CliRunner().invoke(
        cli, ["report", "--format", "junit", stored.run_id, "--db", str(stored.db)], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert result.stdout == stored.xml
    assert result.stdout.startswith("<?xml version='1.0' encoding='UTF-8'?>\n<testsuites ")


def test_a_target_declared_down_is_an_unavailable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "down.yaml"
    suite.write_text(
        "suite: down\nversion: 1.0.0\ncases:\n" + "".join(f"  - {{id: c{i}, prompt: q{i}}}\n" for i in range(3)),
        encoding="utf-8",
    )
    db = tmp_path / "results.db"
    flags = ["-c", "1", "--max-attempts", "1", "--breaker-failures", "1", "--breaker-cooldown", "60"]
    with FakeOpenAIServer(policy=lambda call: server_error(503)) as server:
        result = CliRunner().invoke(
            cli,
            ["run", str(suite), "-t", f"a=openai:m@{server.url}", *flags, "--db", str(db), "--format", "json"],
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    xml = (
        CliRunner().invoke(cli, ["report", "--format", "junit", run_id, "--db", str(db)], catch_exceptions=False).stdout
    )
    xmlschema.XMLSchema(XSD).validate(xml)
    root = ET.fromstring(xml)
    statuses = [r["status"] for r in rows(db, "SELECT status FROM responses WHERE run_id = ?", run_id)]
    assert statuses == ["unavailable"] * 3
    assert (root.attrib["tests"], root.attrib["failures"], root.attrib["errors"]) == ("3", "0", "3")
    errors = list(root.iter("error"))
    assert [e.attrib["type"] for e in errors] == ["unavailable"] * 3
    assert all("HTTP 503" in e.attrib["message"] for e in errors)
