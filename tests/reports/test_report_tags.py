"""Per-tag figures in the run report: pass rate with its Wilson interval and criterion means, computed over the
responses of the cases carrying the tag (a case with two tags counts in both)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_openai_server import Action, Call, FakeOpenAIServer, reply, verdict
from scipy.stats import binomtest

from harness.cli import cli

# case id -> (tags, judge score); threshold 4
CASES = {
    "m1": (["math"], 5),
    "m2": (["math"], 2),
    "m3": (["math", "hard"], 3),
    "p1": (["prose"], 4),
    "p2": (["prose", "hard"], 5),
}


def policy(call: Call) -> Action | None:
    if call.is_judge:
        (cid,) = [c for c in CASES if f"[{c}]" in call.text]
        return verdict(CASES[cid][1])
    return reply("an answer")


def test_per_tag_pass_rates_and_means(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    lines = ["suite: tagged", "version: 1.0.0", "defaults:", "  criteria: [preciseness]", "cases:"]
    for cid, (tags, _) in CASES.items():
        lines += [f"  - id: {cid}", f"    prompt: '[{cid}] a question'", f"    tags: {json.dumps(tags)}"]
    (tmp_path / "tagged.yaml").write_text("\n".join(lines) + "\n")
    db = tmp_path / "r.db"
    db_json = ["--no-canaries", "--db", str(db), "--format", "json"]
    with FakeOpenAIServer(policy=policy) as server:
        res = CliRunner().invoke(
            cli,
            ["run", "tagged.yaml", "-t", f"a=openai:m@{server.url}", "--judge", f"j=openai:j@{server.url}", *db_json],
        )
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout)["run_id"]
    doc = json.loads(CliRunner().invoke(cli, ["report", run_id, "--db", str(db), "--format", "json"]).output)
    tags = doc["targets"]["a"]["tags"]
    assert set(tags) == {"math", "hard", "prose"}
    for tag, block in tags.items():
        scores = [score for tags_, score in CASES.values() if tag in tags_]
        passed = sum(s >= 4 for s in scores)
        assert block["responses"] == len(scores)
        assert (block["passed"], block["failed"]) == (passed, len(scores) - passed)
        assert block["pass_rate"] == round(passed / len(scores), 4)
        wilson = binomtest(passed, len(scores)).proportion_ci(method="wilson")
        assert block["pass_rate_ci95"] == pytest.approx([wilson.low, wilson.high], abs=1e-4)
        stats = block["criteria"]["preciseness"]
        assert stats["n"] == len(scores)
        assert stats["mean"] == pytest.approx(sum(scores) / len(scores), abs=1e-4)
    md = CliRunner().invoke(cli, ["report", run_id, "--db", str(db), "--format", "md"]).output
    assert "### Per tag" in md
    assert "| math | a | 3 | 33.3% [" in md
