"""Anomaly flags (reports/anomalies.py): a constant or near-constant answer, an answer length far from the primary's,
high error / blocked / unscored shares and low availability; on hand-made rows and on a run stored through the CLI."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_openai_server import Action, Call, FakeOpenAIServer, bad_request, not_json, refusal, reply, verdict

from harness.cli import cli
from harness.store import Store
from reports.anomalies import flag_codes, flags_for, median_length_ratio, output_similarity, target_flags
from reports.summary import case_rows

SENTENCES = [
    "Rivers carve valleys over long spans of time.",
    "A prime number has exactly two divisors.",
    "Photosynthesis turns light into chemical energy.",
    "The treaty was signed after months of talks.",
    "Copper conducts heat and electricity well.",
    "Owls hunt mostly at night using keen hearing.",
    "Interest compounds when earnings are reinvested.",
    "Glaciers store most of the planet's fresh water.",
]


def row(case: str, text: str | None, status: str = "ok", verdict: str = "pass", sample: int = 0) -> dict[str, Any]:
    return {"suite": "s", "case_id": case, "sample": sample, "status": status, "verdict": verdict, "text": text}


def varied(n: int = 8) -> list[dict[str, Any]]:
    return [row(f"c{i}", SENTENCES[i % len(SENTENCES)]) for i in range(n)]


def test_constant_answer_is_flagged_after_case_and_whitespace_folding() -> None:
    texts = ["Great answer!", "great   answer!", " GREAT ANSWER! ", "Great\nanswer!", "Great answer!"]
    flags = flags_for([row(f"c{i}", t) for i, t in enumerate(texts)])
    assert flag_codes(flags) == ["near_identical_outputs"]
    assert flags[0]["value"] == 1.0 and flags[0]["threshold"] == 0.5
    assert "100.0% of 5 cases get the same answer" in flags[0]["message"]


def test_near_identical_by_similarity_even_when_every_answer_differs() -> None:
    base = "Thank you for your question; the answer is clearly the one you expect, with no doubt at all. Ref "
    rows = [row(f"c{i}", f"{base}{i}") for i in range(6)]
    sim = output_similarity(rows)
    assert sim["modal_share"] == pytest.approx(1 / 6, abs=1e-4)  # all distinct
    assert sim["mean_similarity"] >= 0.9
    (flag,) = flags_for(rows)
    assert flag["code"] == "near_identical_outputs" and "similar on average over 6 cases" in flag["message"]


def test_varied_answers_few_cases_and_repeated_samples_are_not_flagged() -> None:
    assert flags_for(varied()) == []
    sim = output_similarity(varied())
    assert sim["cases"] == 8 and sim["modal_share"] == 0.125 and sim["mean_similarity"] < 0.6
    # two cases answering the same: too few cases to judge
    assert flags_for([row("c1", "same"), row("c2", "same")]) == []
    # one case sampled five times, identically: one case, not a constant answer across cases
    assert flags_for([row("c1", "same", sample=k) for k in range(5)]) == []


def test_length_far_from_primary_by_median_paired_ratio() -> None:
    primary = [row(f"c{i}", (SENTENCES[i] * 3)[:100]) for i in range(5)]
    longer = [row(f"c{i}", (SENTENCES[i] * 8)[:300]) for i in range(5)]
    assert median_length_ratio(longer, primary) == 3.0
    flags = target_flags({"p": primary, "long": longer}, primary="p")
    assert flags["p"] == []  # never compared with itself
    (flag,) = flags["long"]
    assert flag["code"] == "length_far_from_primary" and flag["value"] == 3.0 and flag["threshold"] == [0.5, 2.0]
    assert "3.00x the primary's" in flag["message"]

    shorter = [row(f"c{i}", SENTENCES[i][:40]) for i in range(5)]
    assert flag_codes(target_flags({"p": primary, "short": shorter}, primary="p")["short"]) == [
        "length_far_from_primary"
    ]
    close = [row(f"c{i}", (SENTENCES[i] * 4)[:150]) for i in range(5)]  # 1.5x
    assert target_flags({"p": primary, "close": close}, primary="p")["close"] == []
    # without a primary there is nothing to compare
    assert target_flags({"long": longer})["long"] == []


def test_error_blocked_unscored_and_availability_shares() -> None:
    rows = varied(13)
    rows += [row("e1", None, "error", "error"), row("e2", None, "error", "error"), row("e3", None, "error", "error")]
    rows += [row(f"b{i}", None, "blocked", "error") for i in range(3)]
    rows += [row("u1", None, "unavailable", "error")]
    rows[0]["verdict"] = rows[1]["verdict"] = rows[2]["verdict"] = "unscored"
    flags = {f["code"]: f for f in flags_for(rows)}
    assert set(flags) == {"high_error", "high_blocked", "high_unscored", "low_availability"}
    assert flags["high_error"]["value"] == 0.15 and "15.0% of 20 responses failed" in flags["high_error"]["message"]
    assert flags["high_blocked"]["value"] == 0.15
    assert flags["high_unscored"]["value"] == 0.15
    assert flags["low_availability"]["value"] == 0.8  # (13 ok + 3 blocked) / 20
    # exactly 10% is not "high"
    edge = [*varied(18), row("e1", None, "error", "error"), row("e2", None, "error", "error")]
    assert flag_codes(flags_for(edge)) == []


# through a stored run -------------------------------------------------------------------------------------------
def prompt_of(case: str) -> str:
    return f"[{case}] Tell me something true."


def policy(call: Call) -> Action | None:
    if call.is_judge:
        if "model-shaky" in call.text:
            return not_json()
        return verdict(5 if "Always right." in call.text else 4)
    case = re.search(r"\[(c\d+)\]", call.text)
    assert case is not None
    i = int(case.group(1)[1:])
    if call.model == "model-const":
        return reply("Always right.")
    if call.model == "model-shaky":
        if i % 3 == 0:
            return bad_request()
        if i % 3 == 1:
            return refusal()
        return reply(f"model-shaky: {SENTENCES[i]}")
    return reply(f"{call.model}: {SENTENCES[i]}")


def test_flags_from_a_stored_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "s.yaml"
    lines = ["suite: flags", "version: 1.0.0", "defaults:", "  criteria: [preciseness]", "cases:"]
    for i in range(len(SENTENCES)):
        lines += [f"  - id: c{i}", f"    prompt: {json.dumps(prompt_of(f'c{i}'))}"]
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = tmp_path / "r.db"
    with FakeOpenAIServer(policy=policy) as server:
        args = ["run", str(suite), "--db", str(db), "--format", "json", "--max-attempts", "1"]
        for name in ("prim", "const", "shaky"):
            args += ["-t", f"{name}=openai:model-{name}@{server.url}"]
        args += ["--judge", f"judge=openai:judge-model@{server.url}"]
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]

    by_target: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in case_rows(Store(db), run_id):
        by_target[r["target"]].append(r)
    flags = target_flags(by_target, primary="prim")
    assert flags["prim"] == []
    assert flag_codes(flags["const"]) == ["near_identical_outputs", "length_far_from_primary"]
    shaky = {f["code"]: f["value"] for f in flags["shaky"]}
    # cases 0, 3, 6 error; 1, 4, 7 blocked; 2, 5 answered and left unscored by the judge
    assert shaky == {
        "high_error": 0.375,
        "high_blocked": 0.375,
        "high_unscored": 0.25,
        "low_availability": 0.625,
    }
