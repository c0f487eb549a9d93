"""A stored run as JUnit XML, the test-report format CI servers read (Jenkins, GitLab, GitHub test-report actions).

Valid against the Jenkins xUnit plugin's junit-10.xsd (a copy is in tests/data/junit-10.xsd):

    <testsuites name tests failures errors time>
      <testsuite name="SUITE@VERSION" tests failures errors skipped time timestamp id>   one per suite
        <properties>  run id and name, suite version and content hash, every target's spec, the judge(s)
        <testcase classname="SUITE.TARGET" name="CASE_ID[sample N]" time="latency in seconds">   one per response
          <failure type="quality">   verdict fail: a check failed or a judged criterion scored below the threshold
          <error type="endpoint">    verdict error: the target call failed (or type="blocked": a safety block,
                                     type="unavailable": the target was down), so nothing was checked or judged
          <error type="unscored">    verdict unscored: the judge gave no usable score. An error, not a failure:
                                     the result is not trustworthy, so it neither passes nor blames the model
          <system-out>               the response text (truncated)

`failures` counts verdict fail, `errors` counts verdicts error and unscored; nothing is skipped. A <failure>'s
one-line `message` names each failed check with its detail and each low criterion with the judge's rationale (an
<error>'s is reports.render.why); its text holds the failed checks, every criterion's score against the threshold
with its rationale, and the response text, truncated.

Model and endpoint text is untrusted: characters XML 1.0 does not allow (control characters, lone surrogates,
U+FFFE/U+FFFF) are removed, and ElementTree escapes the rest; the document is never built from strings.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

from harness.store import Store
from reports.render import why
from reports.summary import case_rows

TEXT_LIMIT = 2000  # characters of a response kept in <system-out> and in a failure's text
DETAIL_LIMIT = 500  # characters of a check detail, rationale or endpoint error
MESSAGE_LIMIT = 300  # characters of the one-line `message` attribute
_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_WHITESPACE = re.compile(r"\s+")


def xml_safe(text: Any) -> str:
    """`text` as a string with the characters XML 1.0 cannot carry removed."""
    return _ILLEGAL.sub("", str(text))


def _cut(text: Any, limit: int) -> str:
    text = xml_safe(text)
    return text if len(text) <= limit else f"{text[:limit]}… [{len(text) - limit} more characters]"


def _line(text: Any, limit: int = MESSAGE_LIMIT) -> str:
    """One line: whitespace collapsed, cut to `limit` characters."""
    flat = _WHITESPACE.sub(" ", xml_safe(text)).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _seconds(ms: float | None) -> str:
    """Milliseconds as seconds in the fixed-point form junit-10.xsd's SUREFIRE_TIME pattern accepts."""
    return f"{max(ms or 0.0, 0.0) / 1000:.3f}"


def _spec(target: dict[str, Any]) -> str:
    """A target as NAME=PROVIDER:MODEL[@BASE_URL]; specs hold the name of a key's variable, never the key."""
    url = f"@{target['base_url']}" if target.get("base_url") else ""
    return f"{target.get('name', '?')}={target.get('provider', '?')}:{target.get('model', '?')}{url}"


def _score(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _criteria_lines(row: dict[str, Any]) -> list[str]:
    lines = []
    for criterion, s in row["scores"].items():
        if s["status"] == "scored":
            mark = "below threshold" if s["score"] < row["threshold"] else "ok"
            head = f"  - {criterion}: {_score(s['score'])} / threshold {row['threshold']} ({mark})"
        else:
            head = f"  - {criterion}: {s['status']} ({s['reason']})"
        lines.append(f"{head}, judge {s['judge']}")
        if s.get("rationale"):
            lines.append(f"    rationale: {_cut(s['rationale'], DETAIL_LIMIT)}")
    return lines


def failure_text(row: dict[str, Any]) -> str:
    """The body of a testcase's <failure> or <error>: what failed and why, then the response."""
    where = f"suite {row['suite']}, case {row['case_id']}, target {row['target']}, sample {row['sample']}"
    lines = [f"verdict {row['verdict']} ({where})"]
    if row["verdict"] == "error":
        lines.append(f"status {row['status']} after {row.get('attempts')} attempt(s): {_cut(row['error'] or '', 4000)}")
        return "\n".join(lines) + "\n"
    failed = [c for c in row["checks"] if not c["passed"]]
    if failed:
        lines.append("failed checks:")
        lines += [f"  - {c['check']}: {_cut(c.get('detail') or '', DETAIL_LIMIT)}" for c in failed]
    passed = [c["check"] for c in row["checks"] if c["passed"]]
    if passed:
        lines.append("passed checks: " + ", ".join(passed))
    if row["scores"]:
        lines.append(f"criteria (pass needs every criterion >= {row['threshold']}):")
        lines += _criteria_lines(row)
    text = row.get("text")
    lines += ["response:", _cut(text, TEXT_LIMIT) if text is not None else "(none)"]
    return "\n".join(lines) + "\n"


def failure_message(row: dict[str, Any]) -> str:
    """One line for a <failure>: each failed check with its detail, each low criterion with its rationale.
    Errors and unscored responses get reports.render.why."""
    if row["verdict"] != "fail":
        return _line(why(row) or row["verdict"])
    parts = [f"{c['check']} failed: {c.get('detail') or ''}" for c in row["checks"] if not c["passed"]]
    parts += [
        f"{criterion}={_score(s['score'])} < {row['threshold']}: {s.get('rationale') or ''}"
        for criterion, s in row["scores"].items()
        if s["status"] == "scored" and s["score"] < row["threshold"]
    ]
    return _line("; ".join(parts) or why(row) or "fail")


def _outcome(case: ET.Element, row: dict[str, Any]) -> None:
    verdict = row["verdict"]
    if verdict == "pass":
        return
    if verdict == "fail":
        tag, kind = "failure", "quality"
    elif verdict == "unscored":
        tag, kind = "error", "unscored"
    else:  # the target call failed: an endpoint error, a safety block, or a target declared down
        tag, kind = "error", row["status"] if row["status"] in ("blocked", "unavailable") else "endpoint"
    element = ET.SubElement(case, tag, {"message": failure_message(row), "type": kind})
    element.text = failure_text(row)


def _properties(parent: ET.Element, values: list[tuple[str, Any]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in values:
        if value is not None:
            ET.SubElement(props, "property", {"name": name, "value": _line(value, 1000)})


class _Suite:
    """One <testsuite> element and its counts, filled one response at a time."""

    def __init__(self, root: ET.Element, index: int, suite: dict[str, Any], run_props: list[tuple[str, Any]]) -> None:
        name = f"{suite['suite']}@{suite['version']}" if suite.get("version") else str(suite["suite"])
        self.element = ET.SubElement(root, "testsuite", {"name": xml_safe(name), "id": str(index)})
        own = [("suite", suite["suite"]), ("suite_version", suite.get("version")), ("suite_hash", suite.get("hash"))]
        _properties(self.element, [*run_props, *own])
        self.counts: Counter[str] = Counter()
        self.seconds = 0.0

    def add(self, row: dict[str, Any]) -> None:
        latency = _seconds(row["latency_ms"])
        case = ET.SubElement(
            self.element,
            "testcase",
            {
                "classname": xml_safe(f"{row['suite']}.{row['target']}"),
                "name": xml_safe(f"{row['case_id']}[sample {row['sample']}]"),
                "time": latency,
            },
        )
        _outcome(case, row)
        if row.get("text") is not None:
            ET.SubElement(case, "system-out").text = _cut(row["text"], TEXT_LIMIT)
        self.counts[row["verdict"]] += 1
        self.seconds += float(latency)

    def close(self, timestamp: str) -> None:
        self.element.attrib.update(_counts(self.counts, self.seconds))
        self.element.set("skipped", "0")
        self.element.set("timestamp", timestamp)


def _counts(counts: Counter[str], seconds: float) -> dict[str, str]:
    return {
        "tests": str(sum(counts.values())),
        "failures": str(counts["fail"]),
        "errors": str(counts["error"] + counts["unscored"]),
        "time": f"{seconds:.3f}",
    }


def junit_tree(store: Store, run_id: str) -> ET.Element:
    """The <testsuites> element of run `run_id` (an id or a run name)."""
    run = store.run(run_id)
    config = run["config"]
    judges = config.get("judges") or ([config["judge"]] if config.get("judge") else [])
    run_props: list[tuple[str, Any]] = [
        ("run_id", run["run_id"]),
        ("run_name", run["name"]),
        ("run_status", run["status"]),
        ("harness_version", run["harness_version"]),
        ("samples", config.get("samples")),
        *[(f"target.{t.get('name')}", _spec(t)) for t in config.get("targets", [])],
        *[(f"judge.{j.get('name')}", _spec(j)) for j in judges],
        ("judge_mode", (config.get("judge_method") or {}).get("mode", "rubric") if judges else None),
    ]
    root = ET.Element("testsuites", {"name": xml_safe(f"judge-harness run {run['name'] or run['run_id']}")})
    suites: dict[str, _Suite] = {}
    for s in config.get("suites", []):
        suites[s["suite"]] = _Suite(root, len(suites), s, run_props)
    for row in case_rows(store, run["run_id"]):
        if row["suite"] not in suites:  # a suite the run's config does not list (not expected)
            suites[row["suite"]] = _Suite(root, len(suites), {"suite": row["suite"]}, run_props)
        suites[row["suite"]].add(row)
    timestamp = dt.datetime.fromtimestamp(run["created_at"], dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    total: Counter[str] = Counter()
    seconds = 0.0
    for suite in suites.values():
        suite.close(timestamp)
        total.update(suite.counts)
        seconds += suite.seconds
    root.attrib.update(_counts(total, seconds))
    return root


def junit_xml(store: Store, run_id: str) -> str:
    """The JUnit XML document of run `run_id`, with its XML declaration (UTF-8)."""
    root = junit_tree(store, run_id)
    ET.indent(root)
    return str(ET.tostring(root, encoding="UTF-8", xml_declaration=True), "utf-8") + "\n"
