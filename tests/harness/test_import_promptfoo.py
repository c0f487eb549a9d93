"""`harness import promptfoo`: a results file written by a real promptfoo eval (tests/data/promptfoo, see its
README) becomes one run whose pass, fail and error counts per provider are the ones promptfoo printed; its
scores, latency and tokens come along, and `harness judge` judges the outputs. A bad file is one error naming
the file, the line and the field, and nothing is written."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_openai_server import FakeOpenAIServer
from store_rows import rows

from harness.cli import cli, main

DATA = Path(__file__).resolve().parents[1] / "data" / "promptfoo"
RESULTS = DATA / "results.json"
PRINTED = DATA / "promptfoo_output.txt"
STATUS = re.compile(r"^\[(PASS|FAIL|ERROR)\]")
VERDICT = {"PASS": "passed", "FAIL": "failed", "ERROR": "errors"}


def printed() -> tuple[dict[tuple[str, str], Counter[str]], Counter[str], dict[str, tuple[int, int]]]:
    """What promptfoo printed: outcome counts per table column ([provider label], prompt label), its totals, and
    per provider id its (prompt, completion) tokens."""
    text = PRINTED.read_text(encoding="utf-8")
    table = [line.strip().strip("│").split("│") for line in text.splitlines() if line.startswith("│")]
    header = [re.fullmatch(r"\[(.+)\] (.+)", cell.strip()) for cell in table[0][1:]]
    columns = [(m[1], m[2]) for m in header if m]
    assert len(columns) == len(header) == 4
    counts: dict[tuple[str, str], Counter[str]] = {c: Counter() for c in columns}
    for cells in table[1:]:
        for column, cell in zip(columns, cells[1:], strict=True):
            found = STATUS.match(cell.strip())
            if found:
                counts[column][VERDICT[found[1]]] += 1
    totals = Counter({k: int(n) for n, k in re.findall(r"^\s+[✓✗] (\d+) (passed|failed|errors) \(", text, re.M)})
    tokens = {
        provider: (int(p), int(c))
        for provider, p, c in re.findall(r"^\s+(\S+): \d+ \(\d+ requests; (\d+) prompt, (\d+) completion\)", text, re.M)
    }
    return counts, totals, tokens


def per_provider(counts: dict[tuple[str, str], Counter[str]]) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for (provider, _), c in counts.items():
        out.setdefault(provider, Counter()).update(c)
    return out


def fixture() -> dict[str, Any]:
    assert RESULTS.is_file(), f"missing test data {RESULTS}"  # fail, never skip
    doc: dict[str, Any] = json.loads(RESULTS.read_text(encoding="utf-8"))
    return doc


def invoke_json(*args: str | Path) -> Any:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def harness_exit(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def test_the_fixture_is_what_promptfoo_printed() -> None:
    counts, totals, tokens = printed()
    doc = fixture()
    assert doc["metadata"]["promptfooVersion"] == "0.121.20"
    assert totals == Counter(passed=13, failed=5, errors=2)
    stats = doc["results"]["stats"]
    assert (stats["successes"], stats["failures"], stats["errors"]) == (13, 5, 2)
    assert sum(per_provider(counts).values(), Counter()) == totals
    assert per_provider(counts) == {"mini": Counter(passed=9, failed=1), "nano": Counter(passed=4, failed=4, errors=2)}
    assert tokens == {"openai:chat:gpt-4o-mini": (132, 14), "openai:chat:gpt-4.1-nano": (100, 30)}
    text = RESULTS.read_text(encoding="utf-8") + PRINTED.read_text(encoding="utf-8")
    assert "dummy" not in text and "authorization" not in text.lower()  # the placeholder key went nowhere


def test_the_report_shows_the_pass_counts_promptfoo_printed(tmp_path: Path) -> None:
    counts, totals, tokens = printed()
    db = tmp_path / "r.db"
    out = invoke_json("import", "promptfoo", RESULTS, "--db", db, "--name", "pf", "--format", "json")
    assert (out["results"], out["cases"]) == (20, 10)
    assert out["promptfoo_stats"] == {"successes": 13, "failures": 5, "errors": 2}
    providers = per_provider(counts)
    for t in out["targets"]:
        assert Counter({k: t[k] for k in ("passed", "failed", "errors") if t[k]}) == providers[t["target"]]

    report = invoke_json("report", "pf", "--db", db, "--format", "json")
    assert report["run"]["run_id"] == out["run_id"] and sorted(report["targets"]) == ["mini", "nano"]
    ids = {"mini": "openai:chat:gpt-4o-mini", "nano": "openai:chat:gpt-4.1-nano"}
    for name, block in report["targets"].items():
        shown = Counter({k: block[k] for k in ("passed", "failed", "errors") if block[k]})
        assert shown == providers[name], name
        assert block["unscored"] == 0 and block["responses"] == 10
        assert block["cost"]["throughput_per_s"] is None  # timed by promptfoo, recorded at import: no throughput
        assert (block["tokens_in"], block["tokens_out"]) == tokens[ids[name]]
        for (provider, prompt), column in counts.items():  # per prompt: one table column each
            if provider == name:
                tag = block["tags"][f"prompt:{prompt}"]
                assert Counter({k: tag[k] for k in ("passed", "failed", "errors") if tag[k]}) == column
    shown = [Counter({k: b[k] for k in ("passed", "failed", "errors")}) for b in report["targets"].values()]
    assert sum(shown, Counter()) == totals
    # promptfoo's per-prompt metrics in the same file agree
    for prompt in fixture()["results"]["prompts"]:
        tag = report["targets"][prompt["provider"]]["tags"][f"prompt:{prompt['label']}"]
        m = prompt["metrics"]
        assert (tag["passed"], tag["failed"], tag["errors"]) == (
            m["testPassCount"],
            m["testFailCount"],
            m["testErrorCount"],
        )


def test_what_the_run_records(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    run_id = invoke_json("import", "promptfoo", RESULTS, "--db", db, "--format", "json")["run_id"]
    results = fixture()["results"]["results"]
    cases = {c["case_id"]: json.loads(c["data"]) for c in rows(db, "SELECT * FROM cases WHERE run_id = ?", run_id)}
    responses = {(r["target"], r["case_id"]): r for r in rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id)}
    calls = {c["response_id"]: c for c in rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", run_id)}
    judgments: dict[int, dict[str, float]] = {}
    for j in rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id):
        judgments.setdefault(j["response_id"], {})[j["criterion"]] = j["score"]
    assert len(responses) == len(results) == 20 and len(cases) == 10
    assert sorted(cases) == [f"t{t}-{p}" for t in range(5) for p in ("assistant", "brief")]
    for result in results:
        case_id = f"t{result['testIdx']}-{result['prompt']['label']}"
        case = cases[case_id]
        assert case["messages"] == [{"role": "user", "content": result["prompt"]["raw"]}]
        assert case["tags"] == [f"prompt:{result['prompt']['label']}"]
        assert case["promptfoo"]["vars"] == result["vars"]
        assert case["promptfoo"]["description"] == result["testCase"]["description"]
        r = responses[(result["provider"]["label"], case_id)]
        assert r["latency_ms"] == result["latencyMs"]
        checks = json.loads(r["checks"])
        if result["failureReason"] == 2:  # promptfoo's error
            assert (r["status"], r["text"], r["error"]) == ("error", None, result["error"])
            assert checks == [] and r["id"] not in calls
            continue
        response = result["response"]
        assert (r["status"], r["text"], r["finish_reason"]) == ("ok", response["output"], "stop")
        assert (r["tokens_in"], r["tokens_out"]) == (
            response["tokenUsage"]["prompt"],
            response["tokenUsage"]["completion"],
        )
        assert all(c["passed"] for c in checks) is result["success"]
        components = result["gradingResult"]["componentResults"]
        if all(c["pass"] for c in components) == result["success"]:  # a check per assertion, with its reason
            assert [(c["passed"], c["detail"]) for c in checks] == [(c["pass"], c["reason"]) for c in components]
            assert [c["check"] for c in checks] == [label(c["assertion"]) for c in components]
        else:  # passed by its threshold: one check, promptfoo's verdict, each assertion's outcome in the detail
            (check,) = checks
            assert (check["check"], check["passed"]) == ("promptfoo:test", result["success"])
            assert "Aggregate score" in check["detail"] and "promptfoo:equals: tac failed" in check["detail"]
            assert result["testCase"]["threshold"] == 0.5 and result["provider"]["label"] == "nano"
        assert calls[r["id"]]["judge"] == "promptfoo"
        assert judgments[r["id"]] == {"promptfoo:score": result["score"], **result["namedScores"]}
    # the nano provider passed the threshold test with one of its two assertions failing
    nano = json.loads(responses[("nano", "t3-brief")]["checks"])
    assert [c["passed"] for c in nano] == [True]


def test_the_imported_outputs_can_be_judged(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    imported = invoke_json("import", "promptfoo", RESULTS, "--db", db, "--format", "json")["run_id"]
    with FakeOpenAIServer(judge_score=5) as judge:
        out = invoke_json(
            "judge", imported, "--judge", f"j=openai:judge@{judge.url}", "--no-canaries", "--db", db, "--format", "json"
        )
        asked = judge.calls()
    assert len(asked) == 18 and all(c.is_judge for c in asked)  # every output; promptfoo's 2 errors have none
    judged = rows(db, "SELECT DISTINCT response_id FROM judgments WHERE run_id = ?", out["run_id"])
    assert len(judged) == 18
    # judged 5 of 5, each response keeps promptfoo's verdict through its checks
    assert {n: (b["passed"], b["failed"], b["errors"]) for n, b in out["summary"].items()} == {
        "mini": (9, 1, 0),
        "nano": (4, 4, 2),
    }


def label(assertion: dict[str, Any]) -> str:
    """The check name of an assertion: its type and value (a non-text value as JSON)."""
    value = assertion["value"]
    return f"promptfoo:{assertion['type']}: {value if isinstance(value, str) else json.dumps(value)}"


def write_edited(tmp_path: Path, edit: Any) -> tuple[Path, str]:
    """A copy of the fixture changed by `edit`, written as promptfoo writes (indent 2)."""
    doc = fixture()
    edit(doc)
    path = tmp_path / "results.json"
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    path.write_text(text, encoding="utf-8")
    return path, text


def line_of(text: str, needle: str) -> int:
    return text.count("\n", 0, text.index(needle)) + 1


def test_a_bad_field_names_file_line_and_field_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.db"

    def count_runs() -> int:
        return 0 if not db.exists() else int(rows(db, "SELECT COUNT(*) AS n FROM runs")[0]["n"])

    def bad_success(doc: dict[str, Any]) -> None:
        doc["results"]["results"][3]["success"] = "perhaps"

    path, text = write_edited(tmp_path, bad_success)
    code, err = harness_exit(capsys, "import", "promptfoo", path, "--db", db)
    line = line_of(text, '"success": "perhaps"')
    assert code == 2 and f"{path}:{line}: field 'results.results[3].success'" in err, err
    assert count_runs() == 0

    def no_provider(doc: dict[str, Any]) -> None:
        del doc["results"]["results"][5]["provider"]

    path, text = write_edited(tmp_path, no_provider)
    code, err = harness_exit(capsys, "import", "promptfoo", path, "--db", db)
    # a missing field is reported at the line of the element that lacks it: its "{", 6 spaces in
    sixth = text.index('"id": "{}"'.format(fixture()["results"]["results"][5]["id"]))
    line = text.count("\n", 0, text.rfind("\n      {\n", 0, sixth) + 1) + 1
    assert code == 2 and f"{path}:{line}: field 'results.results[5].provider': is required but missing" in err, err

    def old_version(doc: dict[str, Any]) -> None:
        doc["results"]["version"] = 1

    path, text = write_edited(tmp_path, old_version)
    code, err = harness_exit(capsys, "import", "promptfoo", path, "--db", db)
    line = line_of(text, '"version": 1')
    assert code == 2 and f"{path}:{line}: field 'results.version'" in err, err

    path = tmp_path / "annotations.json"
    path.write_text('[{"instruction": "hi"}]', encoding="utf-8")
    code, err = harness_exit(capsys, "import", "promptfoo", path, "--db", db)
    assert code == 2 and "not promptfoo eval output" in err and "field 'results.results'" in err
    path.write_text('{"results": {"version": 3, "results": [}', encoding="utf-8")
    code, err = harness_exit(capsys, "import", "promptfoo", path, "--db", db)
    assert code == 2 and f"{path}:1: invalid JSON" in err
    assert count_runs() == 0
