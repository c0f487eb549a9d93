"""`harness failover`: runs made through the CLI against the loopback OpenAI server, whose judge scores each target
by a known table. A primary, a good and a cheaper candidate whose CIs overlap, a clearly worse one, and a constant
answer the judge scores 5 everywhere (it must be flagged and not come first); the rule, the cost order inside a tie
group, pairwise win rates, the LiteLLM and JSON fallback configs, and the one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from fake_openai_server import Action, Call, FakeOpenAIServer, reply, verdict
from plotly.offline import get_plotlyjs

from harness.cli import cli, main
from reports.failover import RULE, rank_candidates

CRITERIA = ["preciseness", "instruction_following"]
N = 12
CONSTANT = "Certainly! This is exactly the right answer."
TOPICS = [
    "rivers carve valleys slowly", "prime numbers have two divisors", "leaves turn light into sugar",
    "treaties follow long talks", "copper conducts heat", "owls hunt by hearing at night",
    "interest compounds over years", "glaciers hold fresh water", "bees dance to share routes",
    "tides follow the moon", "granite forms from magma", "vaccines train the immune system",
]  # fmt: skip
PRIMARY = [4 if i % 2 == 0 else 5 for i in range(N)]  # every primary response passes (threshold 4)
DELTAS = {
    "prim": [0] * N,
    "good": [0, 0, -1, 0, 0, 0, 1, -1, 0, 0, 0, 0],  # mean -1/12
    "cheap": [0, -1, 0, 0, -1, 0, 1, 0, -1, 0, 0, 0],  # mean -2/12: its CI overlaps good's
    "worse": [-3] * N,
}
PRICES = {  # USD per 1M tokens, by model id (harness.yaml `prices:`); const has none
    "model-prim": {"input": 5.0, "output": 15.0},
    "model-good": {"input": 30.0, "output": 60.0},
    "model-cheap": {"input": 0.1, "output": 0.2},
    "model-worse": {"input": 0.01, "output": 0.01},
}


def prompt_of(i: int) -> str:
    return f"[c{i:02d}] Tell me one true thing."


def answer(model: str, i: int) -> str:
    return f"{model} answer c{i:02d}: {TOPICS[i]}."


def policy(call: Call) -> Action | None:
    if call.is_judge:
        if call.is_pairwise:
            return None  # server.pairwise_winner decides
        if CONSTANT in call.text:
            return verdict(5)
        m = re.search(r"model-(\w+) answer c(\d+)", call.text)
        assert m is not None, call.text
        i = int(m.group(2))
        return verdict(PRIMARY[i] + DELTAS[m.group(1)][i])
    m = re.search(r"\[c(\d+)\]", call.text)
    assert m is not None
    return reply(CONSTANT if call.model == "model-const" else answer(call.model, int(m.group(1))))


def pairwise_winner(call: Call) -> str:
    """A judge that loves the constant answer and otherwise prefers the primary."""
    first, second = call.shown()
    if CONSTANT in (first, second):
        return "1" if first == CONSTANT else "2"
    return "1" if "model-prim" in first else "2"


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def harness_exit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two rubric runs (the primary and the good candidate; the others), one pairwise run, one store."""
    work = tmp_path_factory.mktemp("failover")
    suite = work / "s.yaml"
    lines = ["suite: fo", "version: 1.0.0", "defaults:", f"  criteria: {json.dumps(CRITERIA)}", "cases:"]
    for i in range(N):
        lines += [f"  - id: c{i:02d}", f"    prompt: {json.dumps(prompt_of(i))}"]
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")
    db = work / "r.db"
    with pytest.MonkeyPatch.context() as mp, FakeOpenAIServer(policy=policy, pairwise_winner=pairwise_winner) as srv:
        mp.chdir(work)
        mp.setenv("FAKE_PRIM_KEY", "sk-do-not-leak-1234")
        prim = {"provider": "openai", "model": "model-prim", "base_url": srv.url, "api_key_env": "FAKE_PRIM_KEY"}
        config = {"targets": {"prim": prim}, "prices": PRICES}
        (work / "harness.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        judge = ["--judge", f"judge=openai:judge-model@{srv.url}", "--no-canaries", "--db", str(db), "--format", "json"]

        def run(*targets: str, extra: tuple[str, ...] = ()) -> str:
            args = ["run", str(suite)]
            for t in targets:
                args += ["-t", t if t == "prim" else f"{t}=openai:model-{t}@{srv.url}"]
            return str(json.loads(invoke(*args, *judge, *extra).stdout)["run_id"])

        first = run("prim", "good", extra=("--name", "first"))
        second = run("cheap", "worse", "const")
        pairwise = run("prim", "good", "const", extra=("--judge-mode", "pairwise"))
        again = run("good")
    return {"db": db, "work": work, "first": first, "second": second, "pairwise": pairwise, "again": again}


def failover(runs: dict[str, Any], *args: str) -> Any:
    ids = (runs["first"], runs["second"])
    out = invoke("failover", *ids, "--primary", "prim", "--db", str(runs["db"]), "--format", "json", *args).stdout
    return json.loads(out)


def test_ranking_pools_runs_flags_the_constant_answer_and_orders_ties_by_cost(runs: dict[str, Any]) -> None:
    doc = failover(runs)
    ranking = doc["ranking"]
    assert [e["target"] for e in ranking] == ["cheap", "good", "worse", "const"]
    assert [e["rank"] for e in ranking] == [1, 2, 3, 4]
    by = {e["target"]: e for e in ranking}
    for e in ranking:  # the output contract
        assert {"target", "rank", "mean_delta", "ci95", "quality_retained", "flags"} <= set(e)

    # the constant answer would be first on quality: it is flagged and demoted
    const = by["const"]
    assert const["mean_delta"] == 0.5 and const["expected_loss"] == -0.5
    assert const["ci95"][0] > 0  # better than the primary, for sure: on quality alone it would come first
    codes = [f["code"] for f in const["flags"]]
    assert "near_identical_outputs" in codes
    (near,) = [f for f in const["flags"] if f["code"] == "near_identical_outputs"]
    assert near["value"] == 1.0 and f"of {N} cases get the same answer" in near["message"]
    assert all(by[t]["flags"] == [] for t in ("cheap", "good", "worse"))
    assert doc["flags"]["prim"] == []

    # paired figures, from the judge's table
    assert by["good"]["mean_delta"] == pytest.approx(-1 / 12, abs=1e-4)
    assert by["cheap"]["mean_delta"] == pytest.approx(-2 / 12, abs=1e-4)
    assert by["worse"]["mean_delta"] == -3.0 and by["worse"]["ci95"] == [-3.0, -3.0]
    assert by["good"]["expected_loss_ci95"] == [-by["good"]["ci95"][1], -by["good"]["ci95"][0]]
    total = sum(PRIMARY)
    assert by["good"]["quality_retained"] == round(100 * (total - 1) / total, 2)
    assert by["worse"]["quality_retained"] == round(100 * (total - 3 * N) / total, 2)
    assert by["good"]["pass_agreement"] == round(11 / 12, 4)  # case 2 drops to 3
    assert by["cheap"]["pass_agreement"] == round(10 / 12, 4)  # cases 4 and 8 drop to 3
    assert by["worse"]["pass_agreement"] == 0.0
    for e in ranking:
        assert e["paired_responses"] == e["scored_pairs"] == N
        assert e["availability"] == 1.0 and e["error_rate"] == 0.0
        assert e["latency_ms_p50"] is not None and e["latency_ms_p95"] >= e["latency_ms_p50"]
    crit = by["worse"]["criteria"]["preciseness"]
    assert crit["n"] == N and crit["mean_delta"] == -3.0
    assert crit["wasserstein"] == 3.0 and crit["ks_statistic"] == 1.0 and crit["ks_p"] < 0.001
    assert by["good"]["criteria"]["preciseness"]["ks_statistic"] < 0.5

    # good and cheap tie (overlapping CIs): the cheaper first; worse stands alone; const is in the flagged part
    assert by["cheap"]["tie_group"] == by["good"]["tie_group"] == 1
    assert by["worse"]["tie_group"] == 2 and by["const"]["tie_group"] == 3
    assert by["cheap"]["usd_per_1000_cases"] < by["good"]["usd_per_1000_cases"]
    assert by["cheap"]["expected_loss"] > by["good"]["expected_loss"]
    assert by["const"]["usd_per_1000_cases"] is None
    assert doc["rule"] == RULE and doc["criteria"] == sorted(CRITERIA)
    assert [r["run_id"] for r in doc["runs"]] == [runs["first"], runs["second"]]


def test_a_price_override_reorders_the_tie_group_and_fills_the_cost_table(runs: dict[str, Any]) -> None:
    doc = failover(runs, "--price", "good=0.001:0.001", "--gpu-hour", "const=2.0")
    assert [e["target"] for e in doc["ranking"]] == ["good", "cheap", "worse", "const"]
    cost = {c["target"]: c for c in doc["cost"]}
    assert [c["target"] for c in doc["cost"]] == ["prim", "good", "cheap", "worse", "const"]
    good = cost["good"]
    assert good["basis"] == "tokens" and good["usd_per_1m_input"] == 0.001 and good["price_source"] == "--price"
    per_response = (good["tokens_in"] * 0.001 + good["tokens_out"] * 0.001) / 1e6 / good["responses"]
    assert good["usd_per_1000_cases"] == pytest.approx(1000 * per_response, abs=1e-6)  # rounded to 6 places
    assert cost["prim"]["usd_per_1m_output"] == 15.0 and "harness.yaml prices" in cost["prim"]["price_source"]
    const = cost["const"]
    assert const["basis"] == "gpu_hour" and const["usd_per_gpu_hour"] == 2.0
    tput = const["throughput_per_s"]
    assert tput and const["usd_per_1000_cases"] == pytest.approx(2.0 * 1000 / tput / 3600, rel=1e-3)
    out_tps = tput * const["tokens_out"] / const["responses"]
    assert const["usd_per_1m_output_tokens"] == pytest.approx(2.0 / 3600 / out_tps * 1e6, rel=1e-3)


def test_fallback_config_litellm_and_json(runs: dict[str, Any]) -> None:
    work: Path = runs["work"]
    doc = failover(runs, "--emit-config", str(work / "fallbacks.yaml"))
    cfg = doc["fallback_config"]
    assert cfg["json"]["primary"] == "prim"
    assert cfg["json"]["fallbacks"] == ["cheap", "good", "worse", "const"]
    assert cfg["json"]["rule"] == RULE and list(cfg["json"]["flagged"]) == ["const"]
    litellm = yaml.safe_load((work / "fallbacks.yaml").read_text(encoding="utf-8"))
    assert litellm == cfg["litellm"]
    assert litellm["router_settings"]["fallbacks"] == [{"prim": ["cheap", "good", "worse", "const"]}]
    models = {m["model_name"]: m["litellm_params"] for m in litellm["model_list"]}
    assert list(models) == ["prim", "cheap", "good", "worse", "const"]
    assert models["prim"]["model"] == "openai/model-prim"
    assert models["prim"]["api_key"] == "os.environ/FAKE_PRIM_KEY"
    assert models["cheap"]["api_base"].startswith("http://127.0.0.1:") and "api_key" not in models["cheap"]
    text = (work / "fallbacks.yaml").read_text(encoding="utf-8")
    assert "sk-do-not-leak" not in text and "# flagged: const: near_identical_outputs" in text

    invoke(
        "failover", runs["first"], runs["second"], "--primary", "prim", "--db", str(runs["db"]),
        "--exclude-flagged", "--emit-config", str(work / "fallbacks.json"), "-o", str(work / "out.txt"),
    )  # fmt: skip
    plain = json.loads((work / "fallbacks.json").read_text(encoding="utf-8"))
    assert plain["fallbacks"] == ["cheap", "good", "worse"] and plain["excluded"] == ["const"]
    assert "fallback chain: prim -> cheap -> good -> worse" in (work / "out.txt").read_text(encoding="utf-8")


def test_pairwise_ranking_by_win_rate_against_the_primary(runs: dict[str, Any]) -> None:
    doc = failover(runs, runs["pairwise"])  # the pairwise run's targets are already pooled: no clash
    pw = doc["pairwise_ranking"]
    assert [(e["target"], e["judge"], e["rank"]) for e in pw] == [("good", "judge", 1), ("const", "judge", 2)]
    good, const = pw
    assert (good["win_rate"], good["losses"], good["n"]) == (0.0, N, N)
    assert (const["win_rate"], const["wins"]) == (1.0, N)  # the judge loves it: still listed after good, flagged
    assert "near_identical_outputs" in [f["code"] for f in const["flags"]]
    assert good["standard_error"] == 0.0
    assert [e["target"] for e in doc["ranking"]] == ["cheap", "good", "worse", "const"]


def test_table_markdown_and_html_state_the_rule(runs: dict[str, Any]) -> None:
    base = ["failover", runs["first"], runs["second"], "--primary", "prim", "--db", str(runs["db"])]
    text = invoke(*base).stdout
    assert f"rule: {RULE}" in text
    assert "fallback chain: prim -> cheap -> good -> worse -> const" in text
    assert re.search(r"^4\s+const\s.*near_identical_outputs", text, re.M)
    assert "flag  const: near_identical_outputs: 100.0% of 12 cases get the same answer" in text

    md = invoke(*base, "--format", "md").stdout
    assert md.startswith("## Failover for `prim`") and RULE in md and "router_settings:" in md

    out = runs["work"] / "failover.html"
    invoke(*base, "--format", "html", "-o", str(out))
    html = out.read_text(encoding="utf-8")
    plotly = get_plotlyjs()
    assert html.count(plotly) == 1
    page = html.replace(plotly, "")
    assert RULE in page and 'id="failover-delta"' in page and 'id="failover-cost"' in page
    charts = json.loads(re.search(r'<script id="charts-data" type="application/json">(.*?)</script>', page).group(1))  # type: ignore[union-attr]
    (chart,) = charts
    assert chart["id"] == "failover-delta" and chart["traces"][0]["x"] == ["cheap", "good", "worse", "const"]
    assert chart["traces"][0]["y"][2] == -3.0


def test_errors_are_one_line(runs: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    db = str(runs["db"])
    code, err = harness_exit(capsys, "failover", runs["first"], "--primary", "nobody", "--db", db)
    assert code == 2 and err.count("\n") == 1
    assert "primary 'nobody' is not a target of the given runs (targets: good, prim)" in err
    code, err = harness_exit(capsys, "failover", runs["first"], runs["again"], "--primary", "prim", "--db", db)
    assert code == 2 and err.count("\n") == 1 and "target 'good' is in runs" in err
    code, err = harness_exit(capsys, "failover", "first", "--primary", "prim", "--price", "good=1", "--db", db)
    assert code == 2 and "expected NAME=IN:OUT" in err
    code, err = harness_exit(capsys, "failover", "first", "--primary", "prim", "--emit-config", "x.toml", "--db", db)
    assert code == 2 and ".yaml, .yml or .json" in err


def test_rank_rule_on_known_entries() -> None:
    def entry(
        target: str, loss: float | None, ci: list[float] | None, cost: float | None, p50: float, flags: int = 0
    ) -> dict[str, Any]:
        flag = [{"code": "x", "message": "", "value": 1, "threshold": 0}] * flags
        return {
            "target": target, "expected_loss": loss, "expected_loss_ci95": ci, "usd_per_1000_cases": cost,
            "latency_ms_p50": p50, "flags": flag,
        }  # fmt: skip

    ranked = rank_candidates(
        [
            entry("best-but-dear", 0.1, [0.0, 0.3], 9.0, 100),
            entry("close-cheap", 0.2, [0.1, 0.4], 1.0, 900),
            entry("close-cheap-fast", 0.25, [0.15, 0.35], 1.0, 50),
            entry("far-cheaper", 1.0, [0.8, 1.2], 0.01, 10),
            entry("no-scores", None, None, 0.0, 1),
            entry("flagged-perfect", -1.0, [-1.2, -0.8], 0.0, 1, flags=1),
        ]
    )
    assert [(e["target"], e["tie_group"]) for e in ranked] == [
        ("close-cheap-fast", 1),  # same cost as close-cheap, faster
        ("close-cheap", 1),
        ("best-but-dear", 1),
        ("far-cheaper", 2),  # cheaper, but its CI does not overlap the best's
        ("no-scores", 3),
        ("flagged-perfect", 4),
    ]
    assert [e["rank"] for e in ranked] == [1, 2, 3, 4, 5, 6]


def test_checks_only_runs_compare_pass_verdicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    suite = tmp_path / "checks.yaml"
    lines = ["suite: checks", "version: 1.0.0", "cases:"]
    for i in range(6):
        lines += [f"  - id: k{i}", f"    prompt: {json.dumps(f'[k{i}] Say OK and the number {i}.')}"]
        lines += ["    checks:", "      - regex: '^OK'"]
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def checks_policy(call: Call) -> Action:
        i = int(re.search(r"\[k(\d)\]", call.text).group(1))  # type: ignore[union-attr]
        ok = call.model == "model-prim" or i % 2 == 0
        return reply(f"{'OK' if ok else 'Nope'}, number {i} from {call.model}")

    db = tmp_path / "r.db"
    with FakeOpenAIServer(policy=checks_policy) as srv:
        args = ["run", str(suite), "--db", str(db), "--format", "json"]
        for t in ("prim", "half"):
            args += ["-t", f"{t}=openai:model-{t}@{srv.url}"]
        run_id = json.loads(invoke(*args).stdout)["run_id"]
    doc = json.loads(invoke("failover", run_id, "--primary", "prim", "--db", str(db), "--format", "json").stdout)
    assert doc["criteria"] == ["pass"]
    (half,) = doc["ranking"]
    assert half["mean_delta"] == -0.5 and half["quality_retained"] == 50.0 and half["pass_agreement"] == 0.5
    assert half["criteria"]["pass"]["n"] == 6
    assert "no judge scores in these runs: quality is the checks' verdict (pass 1, fail 0)" in doc["notes"]


def test_an_unknown_interval_never_claims_a_tie() -> None:
    from reports.failover import rank_candidates

    def entry(target: str, loss: float, ci: list[float] | None, cost: float) -> dict[str, Any]:
        return {
            "target": target,
            "flags": [],
            "expected_loss": loss,
            "expected_loss_ci95": ci,
            "usd_per_1000_cases": cost,
            "latency_ms_p50": 100.0,
        }

    ranked = rank_candidates(
        [entry("good", 0.05, [0.0, 0.1], 5.0), entry("one-pair", 3.0, None, 0.1), entry("mid", 0.5, [0.4, 0.6], 1.0)]
    )
    assert [e["target"] for e in ranked] == ["good", "mid", "one-pair"]
    ranked = rank_candidates([entry("best-n1", 0.0, None, 5.0), entry("bad", 2.5, [2.3, 2.7], 0.1)])
    assert [e["target"] for e in ranked] == ["best-n1", "bad"]
