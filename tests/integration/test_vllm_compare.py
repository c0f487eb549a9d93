"""`harness compare` on two real runs against the vLLM fixture: target m = the tiny base model, then m = its LoRA
adapter, both judged by the base model. The compare document is checked against the store (the pass/fail table and
the Wilcoxon p-values recomputed from reports.summary rows with scipy) and for internal consistency."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from scipy.stats import binomtest, wilcoxon

from harness.store import Store
from reports.summary import case_rows

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "prompt_suites" / "examples"
CRITERIA = {"preciseness", "instruction_following"}
# Judge-only cases (no checks): a random model fails every check of the example suites on both sides, so pass/fail
# flips come from here, where the judge alone decides. Sampled at temperature 1, so base and adapter replies differ;
# threshold 5, as the tiny judge gives mostly 4s and 5s, so passes and fails both occur.
OPEN_SUITE = """suite: open-questions
version: 1.0.0
defaults:
  params: {temperature: 1.0, max_tokens: 24}
  criteria: [preciseness, instruction_following]
  threshold: 5
cases:
"""
OPEN_PROMPTS = [
    "Name a colour.",
    "Say hello.",
    "Give one word that rhymes with cat.",
    "What is two plus two?",
    "Name an animal.",
    "Describe the sea in one sentence.",
    "Name a city in Europe.",
    "What day comes after Monday?",
    "Name a fruit.",
    "Say something kind.",
    "Name a planet.",
    "Describe a tree briefly.",
]


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def compared(vllm_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("compare")
    db = work / "results.db"
    open_suite = work / "open_questions.yaml"
    lines = [f"  - id: q{n:02d}\n    prompt: {json.dumps(p)}\n" for n, p in enumerate(OPEN_PROMPTS, start=1)]
    open_suite.write_text(OPEN_SUITE + "".join(lines), encoding="utf-8")
    run_ids = []
    for model in ("tiny", "ft"):
        proc = harness(
            "run",
            str(EXAMPLES / "factual_qa.yaml"),
            str(EXAMPLES / "support_triage.yaml"),
            str(open_suite),
            "--target",
            f"m=openai:{model}@{vllm_url}",
            "--judge",
            f"judge=openai:tiny@{vllm_url}",
            "--judge-format",
            "regex",
            "--no-canaries",  # the tiny random judge: flow only
            "--samples",
            "2",
            "--concurrency",
            "16",
            "--name",
            f"compare-{model}",
            "--db",
            str(db),
            "--format",
            "json",
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        run_ids.append(json.loads(proc.stdout)["run_id"])
    proc = harness("compare", "compare-tiny", "compare-ft", "--format", "json", "--db", str(db))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"db": db, "base": run_ids[0], "cand": run_ids[1], "doc": json.loads(proc.stdout), "work": work}


def _rows(db: Path, run_id: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    return {(r["suite"], r["case_id"], r["sample"]): r for r in case_rows(Store(db), run_id, lean=True)}


def test_compare_lists_p_values_and_flipped_cases(compared: dict[str, Any]) -> None:
    doc = compared["doc"]
    assert doc["schema"] == "judge-harness/compare@1"
    assert (doc["baseline"]["run_id"], doc["candidate"]["run_id"]) == (compared["base"], compared["cand"])
    assert doc["suite_changes"] == []
    (t,) = doc["targets"]
    assert (t["baseline_target"], t["candidate_target"]) == ("m", "m")
    base, cand = _rows(compared["db"], compared["base"]), _rows(compared["db"], compared["cand"])
    assert set(base) == set(cand) and t["pairs"] == len(base)
    assert t["unpaired"] == {"baseline_only": 0, "candidate_only": 0}

    assert set(t["criteria"]) == CRITERIA
    for criterion, block in t["criteria"].items():
        pairs = [
            (base[k]["scores"][criterion]["score"], cand[k]["scores"][criterion]["score"])
            for k in sorted(base)
            if base[k]["scores"].get(criterion, {}).get("status") == "scored"
            and cand[k]["scores"].get(criterion, {}).get("status") == "scored"
        ]
        deltas = [float(c - b) for b, c in pairs]
        assert block["n"] == len(deltas) > 0.8 * t["pairs"]
        assert block["n"] + block["not_scored"]["pairs"] == t["pairs"]
        assert block["mean_delta"] == pytest.approx(statistics.fmean(deltas), abs=1e-4)
        assert block["mean_delta"] == pytest.approx(block["candidate_mean"] - block["baseline_mean"], abs=1e-3)
        expected_p = 1.0 if not any(deltas) else wilcoxon(deltas, zero_method="wilcox").pvalue
        assert block["p_wilcoxon"] == pytest.approx(expected_p, abs=1e-6)
        assert 0.0 <= block["p_wilcoxon"] <= 1.0
        low, high = block["ci95"]
        assert low <= block["mean_delta"] <= high
        assert block["ci_includes_zero"] == (low <= 0 <= high)
        assert block["improved"] + block["regressed"] + block["noise"] + block["unchanged"] == block["n"]
        assert block["improved"] == sum(d > 0 for d in deltas) and block["regressed"] == sum(d < 0 for d in deltas)

    table = Counter(
        (base[k]["verdict"], cand[k]["verdict"])
        for k in base
        if base[k]["verdict"] in ("pass", "fail") and cand[k]["verdict"] in ("pass", "fail")
    )
    pf = t["pass_fail"]
    assert (pf["both_pass"], pf["pass_to_fail"], pf["fail_to_pass"], pf["both_fail"]) == (
        table[("pass", "pass")],
        table[("pass", "fail")],
        table[("fail", "pass")],
        table[("fail", "fail")],
    )
    assert pf["evaluated_pairs"] + len(t["not_evaluated"]) == t["pairs"]
    discordant = pf["pass_to_fail"] + pf["fail_to_pass"]
    assert discordant > 0, "no pass/fail flip between base and adapter"
    expected_mcnemar = binomtest(min(pf["pass_to_fail"], pf["fail_to_pass"]), discordant, 0.5).pvalue
    assert pf["p_mcnemar"] == pytest.approx(expected_mcnemar, abs=1e-6)

    flipped = t["flipped"]
    assert len(flipped) == discordant
    directions = [f["direction"] for f in flipped]
    assert directions == sorted(directions, key=lambda d: d != "pass_to_fail")  # pass -> fail first
    assert Counter(directions) == {
        k: v for k, v in (("pass_to_fail", pf["pass_to_fail"]), ("fail_to_pass", pf["fail_to_pass"])) if v
    }
    for f in flipped:
        key = (f["suite"], f["case_id"], f["sample"])
        before, after = ("pass", "fail") if f["direction"] == "pass_to_fail" else ("fail", "pass")
        assert (f["baseline"]["verdict"], f["candidate"]["verdict"]) == (before, after)
        assert (base[key]["verdict"], cand[key]["verdict"]) == (before, after)
        assert f["baseline"]["response_id"] == base[key]["response_id"]
        assert f["candidate"]["response_id"] == cand[key]["response_id"]
        assert isinstance(f["baseline"]["text"], str) and isinstance(f["candidate"]["text"], str)
        for side in (f["baseline"], f["candidate"]):
            for s in side["scores"].values():
                assert s["status"] != "scored" or (1 <= s["score"] <= 5 and isinstance(s["rationale"], str))
    print(
        "compare figures:",
        {c: (b["n"], b["mean_delta"], b["p_wilcoxon"]) for c, b in t["criteria"].items()},
        {k: pf[k] for k in ("both_pass", "pass_to_fail", "fail_to_pass", "both_fail", "p_mcnemar")},
    )


def test_compare_renders_table_markdown_and_html(compared: dict[str, Any]) -> None:
    db, work = str(compared["db"]), compared["work"]
    proc = harness("compare", compared["base"], compared["cand"], "--db", db)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "p Wilcoxon" in proc.stdout and "McNemar exact p" in proc.stdout and "flipped (" in proc.stdout
    for fmt in ("md", "html"):
        out = work / f"compare.{fmt}"
        proc = harness("compare", compared["base"], compared["cand"], "--format", fmt, "-o", str(out), "--db", db)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert "flipped pairs (pass → fail first)" in (work / "compare.md").read_text(encoding="utf-8")
    html = (work / "compare.html").read_text(encoding="utf-8")
    assert html.count("plotly.js v") == 1 and 'id="compare-chart-1"' in html and "<script src" not in html
