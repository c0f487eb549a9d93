"""`harness compare` on real runs made through the CLI against the fake OpenAI server, whose judge gives known scores
per case and model: exact deltas, the flip list, McNemar and Wilcoxon p-values recomputed here with scipy, judge
noise marking from --judge-samples runs, suite changes, target selection, and escaping of model text."""

from __future__ import annotations

import json
import re
import statistics
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_openai_server import Action, Call, FakeOpenAIServer, bad_request, not_json, reply, verdict
from plotly.offline import get_plotlyjs
from scipy.stats import binomtest, wilcoxon
from store_rows import rows

from harness.cli import cli, main
from reports.stats import mean_ci

CRITERIA = ["preciseness", "instruction_following"]
CASE = re.compile(r"\[(c\d\d)\]")
# (preciseness, instruction_following) the judge gives the old and the new model's response; threshold 4
SCORES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "c01": ((5, 5), (2, 5)),  # pass -> fail
    "c02": ((4, 4), (3, 4)),  # pass -> fail
    "c03": ((5, 4), (1, 4)),  # pass -> fail
    "c04": ((2, 3), (5, 4)),  # fail -> pass
    "c05": ((4, 5), (4, 5)),  # pass, pass
    "c06": ((3, 3), (3, 2)),  # fail, fail
    "c07": ((5, 5), (4, 4)),  # pass, pass
    "c08": ((4, 4), (2, 4)),  # pass -> fail
    "c09": ((5, 5), (5, 5)),  # pass, pass
    "c10": ((4, 4), (3, 5)),  # pass -> fail
    "c11": ((5, 5), (5, 5)),  # pass -> fail: the new reply fails the case's check
    "c12": ((4, 4), (4, 4)),  # the new target's call fails: an error, never scored
    "c13": ((4, 4), (4, 4)),  # the judge gives no verdict on the old reply: unscored, never scored
}
PASS_TO_FAIL = ["c01", "c02", "c03", "c08", "c10", "c11"]
FAIL_TO_PASS = ["c04"]


def prompt_of(cid: str) -> str:
    return f"[{cid}] Answer briefly, please."


def model_of(call: Call) -> str:
    """Which model wrote the judged response: the default reply starts with "<model> says:"."""
    found = re.search(r"\b(old|new) says:", call.text)
    assert found, call.text[-500:]
    return found.group(1)


def write_suite(path: Path, cases: dict[str, str], version: str = "1.0.0", name: str = "reg") -> Path:
    """A suite of `cases` {id: prompt}; c11 checks that the reply comes from the old model."""
    lines = [
        f"suite: {name}",
        f"version: {version}",
        "defaults:",
        f"  criteria: {json.dumps(CRITERIA)}",
        "  threshold: 4",
        "cases:",
    ]
    for cid, prompt in cases.items():
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt)}"]
        if cid == "c11":
            lines += ["    checks:", "      - regex: 'old says'"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def scores_policy(call: Call) -> Action | None:
    cid = CASE.search(call.text)
    if not call.is_judge:
        return bad_request("no") if cid and cid.group(1) == "c12" and call.model == "new" else None
    assert cid
    model = model_of(call)
    if cid.group(1) == "c13" and model == "old":
        return not_json()
    p, i = SCORES[cid.group(1)][0 if model == "old" else 1]
    return verdict({"preciseness": p, "instruction_following": i}, f"{model} on {cid.group(1)}")


def run(db: Path, suite: Path, server: FakeOpenAIServer, model: str, *extra: str, target: str = "m") -> str:
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(suite),
            "-t",
            f"{target}=openai:{model}@{server.url}",
            "--judge",
            f"judge=openai:judge-model@{server.url}",
            "--no-canaries",
            "--max-attempts",
            "1",
            "--db",
            str(db),
            "--format",
            "json",
            *extra,
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["run_id"])


def compare(db: Path, *args: str, fmt: str = "json") -> Any:
    result = CliRunner().invoke(cli, ["compare", *args, "--db", str(db), "--format", fmt], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if fmt == "json" else result.stdout


def harness_exit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Baseline: target m = model old, two samples per case; candidate: m = model new, one sample."""
    work = tmp_path_factory.mktemp("compare")
    suite = write_suite(work / "reg.yaml", {cid: prompt_of(cid) for cid in SCORES})
    db = work / "results.db"
    with FakeOpenAIServer(policy=scores_policy) as server:
        base = run(db, suite, server, "old", "--samples", "2", "--name", "before")
        cand = run(db, suite, server, "new", "--name", "after")
    return {"db": db, "base": base, "cand": cand, "work": work}


def expected_deltas(criterion: int) -> list[float]:
    """The deltas of the pairs scored on both sides (not c12: an error; not c13: unscored on the baseline)."""
    return [float(new[criterion] - old[criterion]) for cid, (old, new) in SCORES.items() if cid not in ("c12", "c13")]


def test_deltas_p_values_and_flips_are_exact(two_runs: dict[str, Any]) -> None:
    doc = compare(two_runs["db"], "before", "after")
    assert doc["schema"] == "judge-harness/compare@1"
    assert doc["baseline"]["run_id"] == two_runs["base"] and doc["candidate"]["run_id"] == two_runs["cand"]
    assert doc["suite_changes"] == []
    (t,) = doc["targets"]
    assert (t["baseline_target"], t["candidate_target"]) == ("m", "m")
    assert t["pairs"] == len(SCORES)  # sample 0 of every case; the baseline's sample 1 has no partner
    assert t["unpaired"] == {"baseline_only": len(SCORES), "candidate_only": 0}
    assert set(t["criteria"]) == set(CRITERIA)
    for k, criterion in enumerate(CRITERIA):
        block = t["criteria"][criterion]
        deltas = expected_deltas(k)
        olds = [float(o[k]) for cid, (o, _) in SCORES.items() if cid not in ("c12", "c13")]
        news = [float(n[k]) for cid, (_, n) in SCORES.items() if cid not in ("c12", "c13")]
        assert block["n"] == len(deltas) == 11
        assert block["baseline_mean"] == pytest.approx(statistics.fmean(olds), abs=1e-4)
        assert block["candidate_mean"] == pytest.approx(statistics.fmean(news), abs=1e-4)
        assert block["mean_delta"] == pytest.approx(statistics.fmean(deltas), abs=1e-4)
        assert block["p_wilcoxon"] == pytest.approx(wilcoxon(deltas, zero_method="wilcox").pvalue, abs=1e-6)
        assert block["ci95"] == mean_ci(deltas)
        low, high = block["ci95"]
        assert low <= block["mean_delta"] <= high
        assert block["ci_includes_zero"] == (low <= 0 <= high)
        # no repeated judging: no floor, so within_noise is the CI's answer alone
        assert block["noise_floor"] is None and block["within_noise_floor"] is None
        assert block["within_noise"] == block["ci_includes_zero"]
        assert block["improved"] == sum(d > 0 for d in deltas)
        assert block["regressed"] == sum(d < 0 for d in deltas)
        assert block["unchanged"] == sum(d == 0 for d in deltas) and block["noise"] == 0
        assert block["not_scored"] == {"pairs": 2, "baseline": 1, "candidate": 1}
    assert t["criteria"]["preciseness"]["mean_delta"] == pytest.approx(-9 / 11, abs=1e-4)
    assert t["criteria"]["instruction_following"]["mean_delta"] == 0.0

    pf = t["pass_fail"]
    assert (pf["pass_to_fail"], pf["fail_to_pass"]) == (len(PASS_TO_FAIL), len(FAIL_TO_PASS))
    assert (pf["both_pass"], pf["both_fail"]) == (3, 1)  # c05, c07, c09; c06
    assert pf["evaluated_pairs"] == 11
    assert pf["p_mcnemar"] == pytest.approx(binomtest(1, 7, 0.5).pvalue, abs=1e-6)
    assert pf["baseline_pass_rate"] == pytest.approx(9 / 11, abs=1e-4)
    assert pf["candidate_pass_rate"] == pytest.approx(4 / 11, abs=1e-4)
    not_evaluated = {(n["case_id"], n["baseline"], n["candidate"]) for n in t["not_evaluated"]}
    assert not_evaluated == {("c12", "pass", "error"), ("c13", "unscored", "pass")}

    flipped = t["flipped"]
    assert [(f["direction"], f["case_id"]) for f in flipped] == [
        *[("pass_to_fail", c) for c in PASS_TO_FAIL],
        *[("fail_to_pass", c) for c in FAIL_TO_PASS],
    ]
    first = flipped[0]
    assert first["suite"] == "reg" and first["sample"] == 0 and first["threshold"] == 4
    assert first["messages"][-1]["content"] == prompt_of("c01")
    assert first["baseline"]["text"] == f"old says: {prompt_of('c01')}"
    assert first["candidate"]["text"] == f"new says: {prompt_of('c01')}"
    assert first["baseline"]["verdict"] == "pass" and first["candidate"]["verdict"] == "fail"
    assert first["baseline"]["scores"]["preciseness"]["rationale"] == "old on c01"
    assert first["candidate"]["scores"]["preciseness"]["rationale"] == "new on c01"
    assert first["candidate"]["scores"]["preciseness"]["score"] == 2
    assert first["deltas"] == {
        "instruction_following": {"delta": 0.0, "change": "unchanged"},
        "preciseness": {"delta": -3.0, "change": "regressed"},
    }
    by_case = {f["case_id"]: f for f in flipped}
    assert by_case["c11"]["candidate"]["failed_checks"][0]["check"].startswith("regex")
    assert by_case["c11"]["baseline"]["failed_checks"] == []
    assert by_case["c04"]["deltas"]["preciseness"] == {"delta": 3.0, "change": "improved"}
    # the flip table agrees with the pass/fail counts
    directions = Counter(f["direction"] for f in flipped)
    assert directions == {"pass_to_fail": pf["pass_to_fail"], "fail_to_pass": pf["fail_to_pass"]}
    assert t["regressed_criteria"] == [
        c for c in CRITERIA if t["criteria"][c]["within_noise"] is False and t["criteria"][c]["mean_delta"] < 0
    ]


def test_flip_texts_come_from_the_store(two_runs: dict[str, Any]) -> None:
    doc = compare(two_runs["db"], two_runs["base"], two_runs["cand"])
    stored = {(r["run_id"], r["id"]): r["text"] for r in rows(two_runs["db"], "SELECT run_id, id, text FROM responses")}
    for f in doc["targets"][0]["flipped"]:
        assert stored[(two_runs["base"], f["baseline"]["response_id"])] == f["baseline"]["text"]
        assert stored[(two_runs["cand"], f["candidate"]["response_id"])] == f["candidate"]["text"]


def test_table_and_markdown_state_the_figures_and_the_rules(two_runs: dict[str, Any]) -> None:
    text = compare(two_runs["db"], "before", "after", fmt="table")
    doc = compare(two_runs["db"], "before", "after")
    p = doc["targets"][0]["criteria"]["preciseness"]
    assert "pass→fail 6, fail→pass 1" in text
    assert f"{p['mean_delta']:+.2f}" in text and "[pass → fail] reg / c01 / sample 0" in text
    assert "noise_floor_case" in text and "McNemar" in text  # the rules are printed
    md = compare(two_runs["db"], "before", "after", fmt="md")
    assert "| preciseness | 11 |" in md
    assert "**pass → fail** reg / c01 / sample 0" in md
    assert "| response | old says: [c01] Answer briefly, please. | new says: [c01] Answer briefly, please. |" in md


def test_targets_of_one_run_compare_like_two_runs(two_runs: dict[str, Any], tmp_path: Path) -> None:
    """--baseline-target / --candidate-target: one run's two targets give the same figures as two runs."""
    suite = write_suite(tmp_path / "reg.yaml", {cid: prompt_of(cid) for cid in SCORES})
    db = tmp_path / "one.db"
    with FakeOpenAIServer(policy=scores_policy) as server:
        result = CliRunner().invoke(
            cli,
            [
                "run",
                str(suite),
                "-t",
                f"old=openai:old@{server.url}",
                "-t",
                f"new=openai:new@{server.url}",
                "--judge",
                f"judge=openai:judge-model@{server.url}",
                "--no-canaries",
                "--max-attempts",
                "1",
                "--db",
                str(db),
                "--format",
                "json",
            ],
            catch_exceptions=False,
        )
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    one = compare(db, run_id, run_id, "--baseline-target", "old", "--candidate-target", "new")
    two = compare(two_runs["db"], "before", "after")
    (t1,), (t2,) = one["targets"], two["targets"]
    assert (t1["baseline_target"], t1["candidate_target"]) == ("old", "new")
    for key in ("criteria", "pass_fail"):
        assert t1[key] == t2[key]
    assert [f["case_id"] for f in t1["flipped"]] == [f["case_id"] for f in t2["flipped"]]


def test_bad_targets_and_runs_are_user_errors(two_runs: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    db = str(two_runs["db"])
    code, err = harness_exit(capsys, "compare", "before", "after", "--target", "nope", "--db", db)
    assert code == 2 and "has no target 'nope'" in err and "--target" in err
    code, err = harness_exit(capsys, "compare", "before", "missing-run", "--db", db)
    assert code == 2 and "no run 'missing-run'" in err
    both = ("--target", "m", "--baseline-target", "m")
    code, err = harness_exit(capsys, "compare", "before", "after", *both, "--db", db)
    assert code == 2 and "not both" in err


# judge noise --------------------------------------------------------------------------------------------------------
NOISE_NEW = {"n1": 3, "n2": 3, "n3": 3, "n4": 3, "n5": 2, "n6": 2, "n7": 4, "n8": 5}  # the baseline scores 4 on average


def noise_policy() -> Callable[[Call], Action | None]:
    """The old model's responses are judged 3, 4, 5 in turn (one response's three judge samples: variance 1, mean 4);
    the new model's get NOISE_NEW."""
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def policy(call: Call) -> Action | None:
        if not call.is_judge:
            return None
        found = re.search(r"\[(n\d)\]", call.text)
        assert found
        cid = found.group(1)
        if model_of(call) == "new":
            return verdict(NOISE_NEW[cid], "new")
        with lock:
            k = seen[cid]
            seen[cid] += 1
        return verdict(3 + k % 3, f"old sample {k}")

    return policy


def test_deltas_inside_the_judge_noise_floor_are_marked(tmp_path: Path) -> None:
    """The baseline's judge noise (floor 1.60 per case) is larger than the candidate's (0): the larger one counts."""
    suite = write_suite(tmp_path / "noise.yaml", {cid: f"[{cid}] Say something." for cid in NOISE_NEW})
    db = tmp_path / "results.db"
    with FakeOpenAIServer(policy=noise_policy()) as server:
        base = run(db, suite, server, "old", "--judge-samples", "3")
        cand = run(db, suite, server, "new", "--judge-samples", "2")  # the same verdict twice: a floor of 0
    for run_id, samples in ((base, 3), (cand, 2)):
        judged = rows(db, "SELECT COUNT(*) AS n FROM judge_calls WHERE run_id = ?", run_id)[0]["n"]
        assert judged == samples * len(NOISE_NEW)
    doc = compare(db, base, cand)
    (t,) = doc["targets"]
    floor_case = 1.959963984540054 * (2 * 1.0 / 3) ** 0.5  # pooled variance 1 over 3 samples: 1.6003
    floor_mean = floor_case / len(NOISE_NEW) ** 0.5
    deltas = [float(s - 4) for s in NOISE_NEW.values()]
    for criterion in CRITERIA:
        block = t["criteria"][criterion]
        assert block["noise_floor"]["source"] == "baseline" and block["noise_floor"]["judge_samples"] == 3
        assert block["noise_floor"]["case"] == pytest.approx(floor_case, abs=1e-4)
        assert block["noise_floor"]["mean"] == pytest.approx(floor_mean, abs=1e-4)
        assert block["baseline_mean"] == 4.0
        assert block["mean_delta"] == pytest.approx(statistics.fmean(deltas), abs=1e-4)  # -0.875
        # case level: |delta| 1 is noise (<= 1.60), 2 is a regression, 0 unchanged
        assert (block["noise"], block["regressed"], block["unchanged"], block["improved"]) == (5, 2, 1, 0)
        # run level: |-0.875| > 0.566, so outside the floor; the CI is reported apart
        assert block["within_noise_floor"] is False
        low, high = block["ci95"]
        assert block["ci_includes_zero"] == (low <= 0 <= high)
        assert block["within_noise"] == block["ci_includes_zero"]
    assert not any("no judge noise floor" in n for n in doc["notes"])
    text = compare(db, base, cand, fmt="table")
    assert "1.60 / 0.566" in text


# suite changes ------------------------------------------------------------------------------------------------------
def test_a_new_suite_version_compares_the_common_cases_and_lists_the_changes(tmp_path: Path) -> None:
    v1 = {"c05": prompt_of("c05"), "c06": prompt_of("c06"), "c07": prompt_of("c07"), "c09": prompt_of("c09")}
    v2 = {"c06": prompt_of("c06") + " Now in one word.", "c07": prompt_of("c07"), "c09": prompt_of("c09")}
    v2["c01"] = prompt_of("c01")
    db = tmp_path / "results.db"
    with FakeOpenAIServer(policy=scores_policy) as server:
        base = run(db, write_suite(tmp_path / "v1.yaml", v1, "1.0.0"), server, "old")
        cand = run(db, write_suite(tmp_path / "v2.yaml", v2, "1.1.0"), server, "new")
    doc = compare(db, base, cand)
    (change,) = doc["suite_changes"]
    assert change["suite"] == "reg"
    assert change["baseline"]["version"] == "1.0.0" and change["candidate"]["version"] == "1.1.0"
    assert change["version_changed"] and change["hash_changed"]
    assert change["baseline"]["hash"] != change["candidate"]["hash"]
    assert change["added"] == ["c01"] and change["removed"] == ["c05"]
    assert change["changed"] == [{"case_id": "c06", "fields": ["messages"]}]
    assert change["common_cases"] == 2
    (t,) = doc["targets"]
    assert t["pairs"] == 2  # c07 and c09 only
    assert t["unpaired"] == {"baseline_only": 0, "candidate_only": 0}
    assert t["criteria"]["preciseness"]["n"] == 2
    assert t["criteria"]["preciseness"]["mean_delta"] == pytest.approx(-0.5)  # c07 5 -> 4, c09 5 -> 5
    text = compare(db, base, cand, fmt="table")
    assert "added: c01" in text and "removed: c05" in text and "c06 (messages)" in text


def test_runs_sharing_no_case_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "results.db"
    with FakeOpenAIServer(policy=scores_policy) as server:
        base = run(db, write_suite(tmp_path / "a.yaml", {"c05": prompt_of("c05")}, name="first"), server, "old")
        cand = run(db, write_suite(tmp_path / "b.yaml", {"c05": prompt_of("c05")}, name="second"), server, "new")
    code, err = harness_exit(capsys, "compare", base, cand, "--db", str(db))
    assert code == 2 and "share no cases" in err


# escaping -----------------------------------------------------------------------------------------------------------
XSS_TEXT = "<script>alert(1)</script> | <img src=x onerror=alert(2)>"
XSS_RATIONALE = '<b onmouseover="alert(3)">bold</b> | <iframe src="javascript:alert(4)"></iframe>'
RAW_TAGS = ["<script>alert(1)", "<img src=x", "<b onmouseover", "<iframe"]


def xss_policy(call: Call) -> Action | None:
    if not call.is_judge:
        return reply(f"{call.model} says: {XSS_TEXT}")
    return verdict(5 if model_of(call) == "old" else 1, XSS_RATIONALE)


def test_markdown_and_html_escape_model_and_judge_text(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "xss.yaml", {"c01": prompt_of("c01"), "c02": prompt_of("c02")})
    db = tmp_path / "results.db"
    with FakeOpenAIServer(policy=xss_policy) as server:
        base = run(db, suite, server, "old")
        cand = run(db, suite, server, "new")
    texts = {r["text"] for r in rows(db, "SELECT text FROM responses")}
    assert texts == {f"{m} says: {XSS_TEXT}" for m in ("old", "new")}

    md = compare(db, base, cand, fmt="md")
    assert "2 flipped pairs" in md
    for tag in RAW_TAGS:
        assert tag not in md, tag
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\| &lt;img src=x onerror=alert(2)&gt;" in md
    assert "&lt;b onmouseover=" in md

    out = tmp_path / "compare.html"
    result = CliRunner().invoke(
        cli, ["compare", base, cand, "--db", str(db), "--format", "html", "-o", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    plotly_js = get_plotlyjs()
    assert page.count(plotly_js) == 1
    body = page.replace(plotly_js, "")
    for tag in RAW_TAGS:
        assert tag not in body, tag
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "&lt;iframe src=" in body
    assert len(re.findall(r"<script\b", body, re.IGNORECASE)) == 3  # the base page's three, no more
    assert 'id="compare-chart-1"' in body
    data = json.loads(re.search(r'<script id="charts-data" type="application/json">(.*?)</script>', body, re.S)[1])
    (chart,) = data
    assert chart["id"] == "compare-chart-1"
    (trace,) = chart["traces"]
    assert trace["x"] == sorted(CRITERIA) and trace["y"] == [-4.0, -4.0]
    assert "pass → fail" in body and "c01" in body and "c02" in body
