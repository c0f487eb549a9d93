"""Judge canaries in real CLI runs against the loopback fake OpenAI server: every judge scores the good and the bad
response of every canary (one call each, recorded in the store's canary_judgments table), `--no-canaries` asks
none, the cache and a resumed run ask nothing twice, a reply that does not parse is recorded unscored with its
reason, `--canaries FILE` / `--canary-floor` pick the set and the bar, and `harness gate` turns an untrusted judge
into exit 3 for judge-based conditions while check-based ones still decide by the checks alone."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fake_openai_server import Action, Call, FakeOpenAIServer, not_json, reply, server_error, verdict
from scipy.stats import binomtest
from store_rows import rows

from harness.cli import cli, main
from harness.store import Store
from judges.canaries import DEFAULT_CANARIES, load_canaries

SHIPPED = load_canaries(DEFAULT_CANARIES)


def _user_prompt(messages: list[dict[str, str]]) -> str:
    return [m["content"] for m in messages if m["role"] == "user"][-1]


# (last user message, response) -> side: one response text can be good for one canary and bad for another
SHIPPED_SIDES = {
    (_user_prompt(item.messages), item.response(side).strip()): side
    for item in SHIPPED.items
    for side in ("good", "bad")
}
MARK = "(checked)"  # the good responses of the test canary sets carry it; the sharp judge looks for it
GARBLE = "GARBLE"  # the judge answers prose, not JSON, to a response carrying it
FAILCALL = "FAILCALL"  # the judge endpoint answers HTTP 500 to a response carrying it
JUDGED = re.compile(r"<<<RESPONSE (\w+)>>>\n(.*?)\n<<<END RESPONSE \1>>>", re.S)
CASES = [f"c{i}" for i in range(6)]  # c0-c2 answer "OK" and pass their check; c3-c5 fail it


def prompt_of(cid: str) -> str:
    return f"[{cid}] Start your reply with OK."


def judged_response(call: Call) -> str:
    found = JUDGED.search(call.text)
    assert found is not None, call.text[-400:]
    return found.group(2).strip()


def shipped_side(call: Call, text: str) -> str | None:
    """Which side of a shipped canary the judge is shown, found by its prompt and response."""
    sides = {side for (prompt, response), side in SHIPPED_SIDES.items() if response == text and prompt in call.text}
    assert len(sides) <= 1, text
    return sides.pop() if sides else None


def policy(call: Call) -> Action | None:
    """Targets: OK for c0-c2, Nope for c3-c5. Judges by model id: `flat` scores everything 4; `sharp` scores a
    canary's good response 5 and its bad one 1, a run response 5 when it says OK and 2 otherwise."""
    if not call.is_judge:
        cid = re.search(r"\[(c\d)\]", call.text)
        assert cid is not None
        return reply(f"{'OK' if int(cid.group(1)[1]) < 3 else 'Nope'}: answer to [{cid.group(1)}]")
    text = judged_response(call)
    if GARBLE in text:
        return not_json()
    if FAILCALL in text:
        return server_error(500)
    if call.model == "flat":
        return verdict(4, "flat")
    if shipped_side(call, text) == "good" or MARK in text or text.startswith("OK:"):
        return verdict(5, "sharp: good")
    return verdict(2 if text.startswith("Nope:") else 1, "sharp: bad")


def write_suite(path: Path) -> Path:
    lines = ["suite: canary-run", "version: 1.0.0", "defaults:", "  criteria: [preciseness]", "cases:"]
    for cid in CASES:
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}", "    checks: [{regex: '^OK'}]"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_canaries(path: Path, n: int, *, tie: int = 0, extra: list[dict[str, str]] | None = None) -> Path:
    """A canary set of n items k00..; the last `tie` items' good responses lack the mark (the sharp judge then
    scores both sides 1: a tie); `extra` items are appended as given."""
    items = [
        {
            "id": f"k{i:02d}",
            "kind": "wrong_fact",
            "prompt": f"What is {i} plus one?",
            "good": f"{i + 1} {MARK}" if i < n - tie else f"{i + 1}",
            "bad": f"{i + 2}",
        }
        for i in range(n)
    ]
    doc: dict[str, Any] = {"canaries": "test-canaries", "version": "1.0.0", "defaults": {"criteria": ["preciseness"]}}
    doc["items"] = [*items, *(extra or [])]
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")  # JSON is YAML
    return path


def invoke(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def invoke_json(*args: Any) -> Any:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def run_args(suite: Path, db: Path, server: FakeOpenAIServer, judges: dict[str, str], *extra: Any) -> list[Any]:
    args: list[Any] = ["run", suite, "-t", f"m=openai:target@{server.url}"]
    for name, model in judges.items():
        args += ["--judge", f"{name}=openai:{model}@{server.url}"]
    return [*args, "--max-attempts", "1", "--db", db, "--format", "json", *extra]


def harness_exit(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def groups(canary_rows: list[dict[str, Any]]) -> Counter[str]:
    """Canary calls per judge: distinct (judge, canary, side)."""
    return Counter(judge for judge, _, _ in {(r["judge"], r["canary_id"], r["side"]) for r in canary_rows})


def report(db: Path, run_id: str) -> dict[str, Any]:
    return invoke_json("report", run_id, "--db", db, "--format", "json")  # type: ignore[no-any-return]


# (a) every judge, every canary, both sides; --no-canaries; the cache and resume ----------------------------------
def test_the_fake_judge_can_tell_the_shipped_sides_apart() -> None:
    """The sharp judge finds a shipped canary's side by its prompt and response: no pair is both good and bad."""
    assert len(SHIPPED.items) == 58 and len(SHIPPED_SIDES) == 2 * 58


def test_each_judge_scores_both_responses_of_every_canary_once(tmp_path: Path) -> None:
    suite, db = write_suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    with FakeOpenAIServer(policy=policy) as server:
        args = run_args(suite, db, server, {"j1": "sharp", "j2": "flat"})
        run_id = invoke_json(*args)["run_id"]
        asked = server.calls(judge=True)
        # 6 responses x 2 judges, and 2 calls per canary per judge
        assert len(asked) == 6 * 2 + 2 * 58 * 2
        assert Counter(c.model for c in asked) == {"sharp": 6 + 116, "flat": 6 + 116}
        shown = Counter((c.model, judged_response(c)) for c in asked)
        for item in SHIPPED.items:
            for model in ("sharp", "flat"):
                assert shown[(model, item.good.strip())] >= 1 and shown[(model, item.bad.strip())] >= 1

        # the same command again: a new run, every call (canaries included) served from the cache
        before = len(server.calls())
        again = invoke_json(*args)["run_id"]
        assert again != run_id and len(server.calls()) == before

    store = Store(db)
    canary_rows = store.canary_judgments(run_id)
    assert groups(canary_rows) == {"j1": 116, "j2": 116}
    criteria_rows = sum(len(item.criteria) for item in SHIPPED.items) * 2  # one row per criterion, per side
    assert len(canary_rows) == 2 * criteria_rows
    assert max(Counter((r["judge"], r["canary_id"], r["side"], r["criterion"]) for r in canary_rows).values()) == 1
    assert {r["canary_set"] for r in canary_rows} == {"judge-canaries"}
    assert {(r["status"], r["from_cache"]) for r in canary_rows} == {("scored", 0)}
    by_item = {item.id: item for item in SHIPPED.items}
    for r in canary_rows:
        assert r["kind"] == by_item[r["canary_id"]].kind and r["criterion"] in by_item[r["canary_id"]].criteria
        expected = 4.0 if r["judge"] == "j2" else (5.0 if r["side"] == "good" else 1.0)
        assert r["score"] == expected and r["reason"] is None
    full = store.canary_judgments(run_id, full=True)
    assert all(r["template"] == "rubric_v1" and r["raw"] and r["prompt"] for r in full)

    config = store.run(run_id)["config"]
    assert config["canaries"] == {**SHIPPED.identity(), "floor": None}

    cached = store.canary_judgments(again)
    assert groups(cached) == {"j1": 116, "j2": 116} and all(r["from_cache"] == 1 for r in cached)
    key = ("judge", "canary_id", "side", "criterion")
    assert sorted((tuple(r[k] for k in key), r["score"]) for r in cached) == sorted(
        (tuple(r[k] for k in key), r["score"]) for r in canary_rows
    )

    # the report: one verdict per judge, the run untrusted because of j2
    judging = report(db, run_id)["judging"]
    assert judging["canaries"]["set"]["canaries"] == "judge-canaries"
    assert {j: b["trusted"] for j, b in judging["canaries"]["judges"].items()} == {"j1": True, "j2": False}
    assert judging["trusted"] is False and judging["canaries"]["trusted"] is False
    # canary calls count in the judge cost beside the run's own judge calls
    assert {j: c["calls"] for j, c in judging["cost"].items()} == {"j1": 6 + 116, "j2": 6 + 116}


def test_no_canaries_asks_none_and_records_none(tmp_path: Path) -> None:
    suite, db = write_suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    with FakeOpenAIServer(policy=policy) as server:
        run_id = invoke_json(*run_args(suite, db, server, {"j": "sharp"}, "--no-canaries"))["run_id"]
        assert server.count(judge=True) == 6
    store = Store(db)
    assert store.canary_judgments(run_id) == []
    assert store.run(run_id)["config"]["canaries"] is None
    judging = report(db, run_id)["judging"]
    assert "canaries" not in judging and judging["trusted"] is None


def test_a_run_without_a_judge_scores_no_canaries(tmp_path: Path) -> None:
    suite, db = write_suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    with FakeOpenAIServer(policy=policy) as server:
        run_id = invoke_json(*run_args(suite, db, server, {}))["run_id"]
        assert server.count(judge=True) == 0
    assert Store(db).run(run_id)["config"]["canaries"] is None and Store(db).canary_judgments(run_id) == []


def test_a_resumed_run_asks_only_the_canaries_it_has_not_recorded(tmp_path: Path) -> None:
    suite, db = write_suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    with FakeOpenAIServer(policy=policy) as server:
        args = run_args(suite, db, server, {"j": "sharp"})
        run_id = invoke_json(*args)["run_id"]
        # as if the run had been killed before five canary calls were recorded
        store = Store(db)
        missing = [item.id for item in SHIPPED.items[:5]]
        store.db.execute(
            f"DELETE FROM canary_judgments WHERE run_id = ? AND side = 'bad' AND canary_id IN ({','.join('?' * 5)})",
            (run_id, *missing),
        )
        store.commit()
        store.set_run_status(run_id, "interrupted")
        before = server.count(judge=True)
        out = invoke_json(*args, "--no-cache")  # no cache: whatever is asked reaches the server
        assert out["run_id"] == run_id and out["resumed"] is True
        asked = server.calls(judge=True)[before:]
    assert sorted(judged_response(c) for c in asked) == sorted(SHIPPED.item(cid).bad.strip() for cid in missing)
    canary_rows = Store(db).canary_judgments(run_id)
    assert groups(canary_rows) == {"j": 116}
    assert max(Counter((r["canary_id"], r["side"], r["criterion"]) for r in canary_rows).values()) == 1
    assert Store(db).run(run_id)["status"] == "complete"


def test_harness_judge_scores_the_canaries_too(tmp_path: Path) -> None:
    suite, db = write_suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    custom = write_canaries(tmp_path / "t.canaries.yaml", 4)
    with FakeOpenAIServer(policy=policy) as server:
        source = invoke_json(*run_args(suite, db, server, {}))["run_id"]
        judge = ["--judge", f"j=openai:sharp@{server.url}", "--db", db, "--format", "json"]
        rejudged = invoke_json("judge", source, *judge, "--canaries", custom)["run_id"]
        assert server.count(judge=True) == 6 + 2 * 4
        plain = invoke_json("judge", source, *judge, "--no-canaries")["run_id"]
        assert server.count(judge=True) == 6 + 2 * 4  # its responses' verdicts come from the cache
    store = Store(db)
    assert groups(store.canary_judgments(rejudged)) == {"j": 8}
    assert store.run(rejudged)["config"]["canaries"]["canaries"] == "test-canaries"
    assert store.canary_judgments(plain) == [] and store.run(plain)["config"]["canaries"] is None


# (c) --canaries FILE, accuracy with its Wilson interval, --canary-floor ---------------------------------------
@pytest.fixture(scope="module")
def custom_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs judged by the sharp judge on a small canary set: perfect (12 of 12, with a floor of 0.99), one tie in
    12 (without and with the floor), and the shipped set judged by the flat judge."""
    work = tmp_path_factory.mktemp("canaries")
    suite, db = write_suite(work / "s.yaml"), work / "r.db"
    perfect = write_canaries(work / "perfect.canaries.yaml", 12)
    tie = write_canaries(work / "tie.canaries.yaml", 12, tie=1)
    out: dict[str, Any] = {"db": db, "perfect_file": perfect}
    with FakeOpenAIServer(policy=policy) as server:
        sharp = {"sharp": "sharp"}
        out["perfect"] = invoke_json(*run_args(suite, db, server, sharp, "--canaries", perfect, "--canary-floor", 0.99))
        out["tie"] = invoke_json(*run_args(suite, db, server, sharp, "--canaries", tie))
        out["tie_floor"] = invoke_json(*run_args(suite, db, server, sharp, "--canaries", tie, "--canary-floor", 0.99))
        out["flat"] = invoke_json(*run_args(suite, db, server, {"flat": "flat"}))
    return out


def test_a_judge_that_tells_good_from_bad_is_trusted_with_a_wilson_interval(custom_runs: dict[str, Any]) -> None:
    db, run_id = custom_runs["db"], custom_runs["perfect"]["run_id"]
    config = Store(db).run(run_id)["config"]
    assert config["canaries"]["canaries"] == "test-canaries" and config["canaries"]["items"] == 12
    assert config["canaries"]["path"] == str(custom_runs["perfect_file"]) and config["canaries"]["floor"] == 0.99
    canaries = report(db, run_id)["judging"]["canaries"]
    assert canaries["floor"] == 0.99 and canaries["trusted"] is True
    judge = canaries["judges"]["sharp"]
    assert judge["trusted"] is True and judge["reasons"] == []
    block = judge["criteria"]["preciseness"]
    assert (block["n"], block["wins"], block["ties"], block["losses"]) == (12, 12, 0, 0)
    assert block["accuracy"] == 1.0 and block["mean_gap"] == 4.0 and block["failed"] == []
    wilson = binomtest(12, 12).proportion_ci(method="wilson")
    assert block["ci95"] == pytest.approx([wilson.low, wilson.high], abs=1e-4)
    assert block["ci95"][0] > 0.5
    assert judge["by_kind"] == {"wrong_fact": {"n": 12, "accuracy": 1.0}}


def test_a_tie_lowers_the_accuracy_and_the_floor_can_make_it_untrusted(custom_runs: dict[str, Any]) -> None:
    db = custom_runs["db"]
    tie = report(db, custom_runs["tie"]["run_id"])["judging"]
    block = tie["canaries"]["judges"]["sharp"]["criteria"]["preciseness"]
    assert (block["wins"], block["ties"], block["losses"], block["failed"]) == (11, 1, 0, ["k11"])
    assert block["accuracy"] == round(11.5 / 12, 4) and block["mean_gap"] == round(44 / 12, 4)
    assert tie["trusted"] is True and tie["canaries"]["floor"] is None

    floored = report(db, custom_runs["tie_floor"]["run_id"])["judging"]
    assert floored["trusted"] is False and floored["canaries"]["floor"] == 0.99
    (reason,) = floored["canaries"]["judges"]["sharp"]["reasons"]
    assert reason.startswith("preciseness: canary accuracy 0.96") and "below the floor 0.99" in reason
    assert "not above chance" not in reason


def test_a_constant_judge_is_not_trusted_and_says_why(custom_runs: dict[str, Any]) -> None:
    judging = report(custom_runs["db"], custom_runs["flat"]["run_id"])["judging"]
    assert judging["trusted"] is False
    judge = judging["canaries"]["judges"]["flat"]
    assert set(judge["criteria"]) == {"preciseness", "instruction_following"}
    for criterion, block in judge["criteria"].items():
        assert block["accuracy"] == 0.5 and block["wins"] == block["losses"] == 0 and block["ties"] == block["n"]
        assert block["trusted"] is False
        assert any(r.startswith(f"{criterion}: ") and "not above chance" in r for r in judge["reasons"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--canaries", "missing.canaries.yaml"], "missing.canaries.yaml"),
        (["--canaries", "x.canaries.yaml", "--no-canaries"], "not both"),
        (["--canary-floor", "1.5"], "--canary-floor"),
    ],
)
def test_bad_canary_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    suite, db = write_suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    (tmp_path / "x.canaries.yaml").write_text("canaries: x\n", encoding="utf-8")
    code, err = harness_exit(
        capsys, "run", suite, "-t", "m=openai:target@http://127.0.0.1:9/v1", "--judge", "j=openai:j@http://127.0.0.1:9/v1",
        "--db", db, *[str(tmp_path / a) if a.endswith(".yaml") else a for a in args],
    )  # fmt: skip
    assert code == 2 and message in err


# (d) the gate ---------------------------------------------------------------------------------------------------
def gate(runs: dict[str, Any], run: str, *args: Any) -> Result:
    return invoke("gate", runs[run]["run_id"], "--db", runs["db"], *args)


def test_an_untrusted_judge_makes_judge_based_conditions_exit_3(custom_runs: dict[str, Any]) -> None:
    res = gate(custom_runs, "flat", "--min-pass-rate", "0.5", "--format", "json")
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    failed = {c["name"]: c for c in doc["failed"]}
    assert set(failed) == {"min_pass_rate", "judge_canaries"}
    assert all(c["kind"] == "trust" for c in failed.values())
    message = failed["judge_canaries"]["message"]
    assert message.startswith("judge flat: ") and "not above chance" in message
    first = sorted(item.id for item in SHIPPED.items)[:8]
    assert f"canaries failed: {', '.join(first)} and 50 more" in message
    assert "not trustworthy, judge-based: judge flat" in failed["min_pass_rate"]["message"]
    # the table names them too
    table = gate(custom_runs, "flat", "--min-pass-rate", "0.5", "--min-mean", "preciseness=1")
    assert table.exit_code == 3 and "judge flat:" in table.stdout and first[0] in table.stdout
    assert "min_mean" in table.stdout and "judge_canaries" in table.stdout


def test_check_conditions_gate_by_the_checks_alone_beside_an_untrusted_judge(custom_runs: dict[str, Any]) -> None:
    res = gate(custom_runs, "flat", "--min-check-pass-rate", "0.5", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    by_name = {c["name"]: c for c in doc["conditions"]}
    check = by_name["min_check_pass_rate"]
    assert (check["kind"], check["ok"], check["actual"]) == ("quality", True, 0.5)
    assert check["message"] == "checks pass rate 0.500 (3/6; min 0.5)"
    note = by_name["judge_canaries"]
    assert note["kind"] == "note" and note["ok"] is True
    assert note["message"].startswith("judge flat: ") and "the deterministic checks alone decided" in note["message"]
    # a floor the checks miss: 1, a quality failure, not 3
    res = gate(custom_runs, "flat", "--min-check-pass-rate", "0.9", "--format", "json")
    assert res.exit_code == 1, res.output
    (failed,) = json.loads(res.stdout)["failed"]
    assert (failed["name"], failed["kind"]) == ("min_check_pass_rate", "quality")
    # per suite, and a suite the run does not have
    res = gate(custom_runs, "flat", "--min-check-pass-rate-suite", "canary-run=0.5", "--format", "json")
    assert res.exit_code == 0, res.output
    res = gate(custom_runs, "flat", "--min-check-pass-rate-suite", "other=0.5", "--format", "json")
    assert res.exit_code == 1
    (failed,) = json.loads(res.stdout)["failed"]
    assert failed["scope"] == "suite other" and "no response of m with deterministic checks" in failed["message"]


def test_a_trusted_judge_gates_normally_and_min_canary_accuracy_raises_the_bar(custom_runs: dict[str, Any]) -> None:
    res = gate(custom_runs, "tie", "--min-pass-rate", "0.5", "--format", "json")
    assert res.exit_code == 0, res.output
    assert "judge_canaries" not in {c["name"] for c in json.loads(res.stdout)["conditions"]}
    assert gate(custom_runs, "tie", "--min-pass-rate", "0.5", "--min-canary-accuracy", "0.9").exit_code == 0
    res = gate(custom_runs, "tie", "--min-pass-rate", "0.5", "--min-canary-accuracy", "0.99", "--format", "json")
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    assert doc["rules"]["min_canary_accuracy"] == 0.99
    (canaries,) = [c for c in doc["failed"] if c["name"] == "judge_canaries"]
    assert "below the floor 0.99" in canaries["message"] and "(canaries failed: k11)" in canaries["message"]
    # the run's own --canary-floor gives the same verdict without the flag
    assert gate(custom_runs, "tie_floor", "--min-pass-rate", "0.5").exit_code == 3
    # the perfect judge passes even a bar of 1
    assert gate(custom_runs, "perfect", "--min-pass-rate", "0.5", "--min-canary-accuracy", "1").exit_code == 0


def test_min_canary_accuracy_must_be_a_share(custom_runs: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, err = harness_exit(
        capsys, "gate", custom_runs["tie"]["run_id"], "--db", custom_runs["db"], "--min-canary-accuracy", "1.5"
    )
    assert code == 2 and "min_canary_accuracy" in err


# (e) a reply that does not parse, a call that fails ------------------------------------------------------------
def test_an_unparsable_or_failed_canary_reply_is_recorded_unscored_with_its_reason(tmp_path: Path) -> None:
    suite, db = write_suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    extra = [
        {"id": "garbled", "kind": "wrong_fact", "prompt": "What is 2 plus 2?", "good": f"4 {GARBLE}", "bad": "5"},
        {"id": "down", "kind": "wrong_fact", "prompt": "What is 3 plus 3?", "good": f"6 {MARK}", "bad": FAILCALL},
    ]
    custom = write_canaries(tmp_path / "e.canaries.yaml", 2, extra=extra)
    with FakeOpenAIServer(policy=policy) as server:
        args = run_args(suite, db, server, {"j": "sharp"}, "--canaries", custom)
        run_id = invoke_json(*args)["run_id"]
        assert server.count(prompt=GARBLE, judge=True) == 2  # asked once more after the first reply did not parse
        assert server.count(prompt=FAILCALL, judge=True) == 1  # --max-attempts 1
        again = invoke_json(*args)["run_id"]
        # neither an unparsed reply nor an error is cached: asked again; the scored ones come from the cache
        assert server.count(prompt=GARBLE, judge=True) == 4 and server.count(prompt=FAILCALL, judge=True) == 2
        assert server.count(prompt=f"1 {MARK}", judge=True) == 1

    by_side = {(r["canary_id"], r["side"]): r for r in Store(db).canary_judgments(run_id, full=True)}
    garbled = by_side[("garbled", "good")]
    assert (garbled["status"], garbled["score"], garbled["rationale"]) == ("unscored", None, None)
    assert garbled["reason"] and "attempt 1" in garbled["reason"] and "attempt 2" in garbled["reason"]
    assert garbled["raw"] == "I would rate this response quite highly overall."
    down = by_side[("down", "bad")]
    assert (down["status"], down["score"], down["raw"]) == ("error", None, None)
    assert "500" in down["reason"]
    assert by_side[("garbled", "bad")]["status"] == by_side[("down", "good")]["status"] == "scored"
    stored = rows(db, "SELECT status, score FROM canary_judgments WHERE run_id = ? AND status != 'scored'", run_id)
    assert len(stored) == 2 and all(r["score"] is None for r in stored)

    block = report(db, run_id)["judging"]["canaries"]["judges"]["j"]["criteria"]["preciseness"]
    assert (block["n"], block["unscored_pairs"], block["wins"]) == (2, 2, 2)
    assert "garbled" not in block["failed"] and "down" not in block["failed"]
    assert groups(Store(db).canary_judgments(again)) == {"j": 8}


def test_a_judge_that_scores_no_canary_is_not_trusted_and_the_report_still_renders(tmp_path: Path) -> None:
    suite, db = write_suite(tmp_path / "s.yaml"), tmp_path / "r.db"
    extra = [{"id": "garbled", "kind": "refusal", "prompt": "Say hi.", "good": f"hi {GARBLE}", "bad": f"no {GARBLE}"}]
    custom = write_canaries(tmp_path / "u.canaries.yaml", 0, extra=extra)
    with FakeOpenAIServer(policy=policy) as server:
        run_id = invoke_json(*run_args(suite, db, server, {"j": "sharp"}, "--canaries", custom))["run_id"]
    assert {r["status"] for r in Store(db).canary_judgments(run_id)} == {"unscored"}
    judging = report(db, run_id)["judging"]
    block = judging["canaries"]["judges"]["j"]["criteria"]["preciseness"]
    assert (block["n"], block["unscored_pairs"], block["accuracy"], block["ci95"]) == (0, 1, None, None)
    assert judging["trusted"] is False
    assert judging["canaries"]["judges"]["j"]["reasons"] == [
        "preciseness: no canary was scored on both its good and its bad response (1 unscored), so nothing shows "
        "the judge tells them apart"
    ]
    for fmt in ("md", "html"):
        assert "NOT TRUSTWORTHY" in invoke("report", run_id, "--db", db, "--format", fmt).stdout
    assert invoke("gate", run_id, "--db", db, "--min-pass-rate", "0").exit_code == 3
