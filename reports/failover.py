"""Failover ranking: which target should take over when the primary is down, from stored runs alone.

Pooling. Responses of several runs are pooled by target name; a target name must come from one run (two runs
with the same target name are refused: name targets apart with NAME=PROVIDER:MODEL). A run judged pairwise
contributes its pairwise verdicts, and its responses only for targets no other given run has (its responses are
usually cached copies of theirs). Candidates are paired with the primary on (suite, case_id, sample); when a
suite's content differs between runs, cases still pair by id and a note says so.

Per candidate, over the pairs where both responses were scored on a criterion:
  mean_delta, ci95       mean of the per-pair deltas (candidate - primary, averaged over the criteria both were
                         scored on) with its bootstrap 95% CI; per criterion the same, beside the Wasserstein distance
                         and the two-sample KS test between the two score distributions (over the paired responses)
  expected_loss          -mean_delta (points on the judge's scale); its CI is the delta's, negated
  quality_retained       100 x the candidate's mean paired score / the primary's (percent, on the judge's 1-5 scale)
  pass_agreement         the share of the primary's passing responses whose paired candidate response also passes
                         (None when nothing was judged or checked: every verdict would be a vacuous pass)
  availability, error_rate, blocked_rate, unscored_rate, latency p50 / p95 (ok responses), cost per 1,000 cases
Errors, blocked and unscored responses are not folded into the delta: they show as rates and raise flags.
With no judge scores at all (a checks-only run), the quality measure is the verdict of responses that had checks
(pass 1, fail 0); with neither, there is no quality comparison and every candidate is in the last tie group.

The ranking rule is RULE below, printed with every ranking. Flags: reports/anomalies.py.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from harness.errors import UserError
from harness.store import Store
from reports.anomalies import Flag, flag_codes, target_flags
from reports.cost import CostTally
from reports.pairwise import pairwise_table
from reports.stats import distribution_distance, intervals_overlap, mean_ci, percentile
from reports.summary import case_rows

PASS_CRITERION = "pass"
RULE = (
    "Unflagged candidates rank above flagged ones (every flag is shown). Within each part, candidates are sorted "
    "by expected quality loss = -(mean paired score delta against the primary, averaged over criteria), lowest "
    "first; a candidate whose 95% CI of the loss overlaps that of the best candidate of its group joins that tie "
    "group, and a tie group is ordered by cost per 1,000 cases (cheapest first, unknown cost last), then p50 "
    "latency (fastest first). Candidates without paired scores come last."
)
PAIRWISE_RULE = (
    "Win rate against the primary (ties count half), highest first, per judge; unflagged candidates above flagged."
)
LITELLM_PARAMS = ("temperature", "top_p", "max_tokens", "seed")
Key = tuple[str, str, int]


@dataclass
class Pool:
    """Rows of the given runs pooled by target, with what each target's run recorded about it."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    specs: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    pairwise: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _slim(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("suite", "case_id", "sample", "target", "status", "verdict", "text", "latency_ms", "tokens_in")
    out = {k: row[k] for k in keep}
    out |= {k: row[k] for k in ("tokens_out", "from_cache", "created_at")}
    out["scores"] = {c: (s["score"] if s["status"] == "scored" else None) for c, s in row["scores"].items()}
    out["checked"] = bool(row["checks"])
    return out


def pool_runs(store: Store, run_ids: Sequence[str]) -> Pool:
    """Resolve the runs (ids or names) and pool their responses by target name; see the module docstring."""
    pool = Pool()
    resolved: list[dict[str, Any]] = []
    for rid in run_ids:
        run = store.run(rid)
        if all(r["run_id"] != run["run_id"] for r in resolved):
            resolved.append(run)
    take: dict[str, list[str]] = defaultdict(list)
    pairwise_runs = []
    for run in resolved:
        config = run["config"]
        mode = (config.get("judge_method") or {}).get("mode") if config.get("judge") else None
        pool.runs.append({"run_id": run["run_id"], "name": run["name"], "judge_mode": mode})
        if mode == "pairwise":
            pairwise_runs.append(run)
            continue
        for spec in config.get("targets", []):
            name = spec["name"]
            if name in pool.source:
                raise UserError(
                    f"target '{name}' is in runs {pool.source[name]} and {run['run_id']}: targets are pooled by name, "
                    "so give the runs distinct target names (NAME=PROVIDER:MODEL) or pass one of them",
                    field="RUN_ID",
                )
            _adopt(pool, run, spec, take)
    for run in pairwise_runs:
        for spec in run["config"].get("targets", []):
            if spec["name"] not in pool.source:
                _adopt(pool, run, spec, take)
    for run in resolved:
        if take.get(run["run_id"]):
            wanted = set(take[run["run_id"]])
            for row in case_rows(store, run["run_id"]):
                if row["target"] in wanted:
                    pool.rows[row["target"]].append(_slim(row))
        pool.pairwise.extend(store.pairwise(run["run_id"]))
    hashes: dict[str, set[str]] = defaultdict(set)
    for run in resolved:
        for s in run["config"].get("suites", []):
            hashes[s["suite"]].add(f"{s['version']}/{s['hash'][:12]}")
    for suite, seen in sorted(hashes.items()):
        if len(seen) > 1:
            pool.notes.append(f"suite {suite} differs between the runs ({', '.join(sorted(seen))}): cases pair by id")
    return pool


def _adopt(pool: Pool, run: dict[str, Any], spec: dict[str, Any], take: dict[str, list[str]]) -> None:
    name = spec["name"]
    pool.source[name] = run["run_id"]
    pool.specs[name] = spec
    pool.prices[name] = (run["config"].get("prices") or {}).get(name)
    pool.rows[name] = []
    take[run["run_id"]].append(name)


def _pairwise_rows(pairs: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Response rows rebuilt from pairwise verdicts' texts (for flags on targets known only from pairwise data)."""
    seen: dict[tuple[str, str, str, int], dict[str, Any]] = {}
    for p in pairs:
        for side in ("a", "b"):
            key = (p[f"model_{side}"], p["suite"], p["case_id"], int(p["sample"]))
            text = p.get(f"response_{side}")
            if key not in seen and text is not None:
                seen[key] = {"target": key[0], "suite": key[1], "case_id": key[2], "sample": key[3]}
                seen[key] |= {"status": "ok", "verdict": None, "text": text}
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in seen.values():
        out[row["target"]].append(row)
    return out


# comparison -----------------------------------------------------------------------------------------------------
def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _score(row: dict[str, Any], criterion: str) -> float | None:
    if criterion == PASS_CRITERION:
        return {"pass": 1.0, "fail": 0.0}.get(str(row["verdict"])) if row.get("checked") else None
    value = row["scores"].get(criterion)
    return None if value is None else float(value)


def _negated(ci: list[float] | None) -> list[float] | None:
    return None if ci is None else [round(-ci[1], 4), round(-ci[0], 4)]


def compare(
    primary: Sequence[dict[str, Any]], candidate: Sequence[dict[str, Any]], criteria: Sequence[str]
) -> dict[str, Any]:
    """The paired comparison of one candidate with the primary (fields: module docstring)."""
    index: dict[Key, dict[str, Any]] = {(r["suite"], r["case_id"], int(r["sample"])): r for r in primary}
    per: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in criteria}
    pair_deltas: list[float] = []
    pair_p: list[float] = []
    pair_c: list[float] = []
    paired = primary_passes = both_pass = 0
    for c_row in candidate:
        p_row = index.get((c_row["suite"], c_row["case_id"], int(c_row["sample"])))
        if p_row is None:
            continue
        paired += 1
        if p_row["verdict"] == "pass":
            primary_passes += 1
            both_pass += c_row["verdict"] == "pass"
        common = []
        for crit in criteria:
            ps, cs = _score(p_row, crit), _score(c_row, crit)
            if ps is not None and cs is not None:
                per[crit][0].append(ps)
                per[crit][1].append(cs)
                common.append((ps, cs))
        if common:
            pair_p.append(statistics.fmean(p for p, _ in common))
            pair_c.append(statistics.fmean(c for _, c in common))
            pair_deltas.append(pair_c[-1] - pair_p[-1])
    mean_delta = statistics.fmean(pair_deltas) if pair_deltas else None
    ci = mean_ci(pair_deltas)
    return {
        "paired_responses": paired,
        "scored_pairs": len(pair_deltas),
        "mean_delta": _r(mean_delta),
        "ci95": ci,
        "expected_loss": _r(-mean_delta) if mean_delta is not None else None,
        "expected_loss_ci95": _negated(ci),
        "quality_retained": _retained(pair_p, pair_c),
        "pass_agreement": _r(both_pass / primary_passes) if primary_passes and criteria else None,
        "primary_passes": primary_passes,
        "criteria": {crit: _criterion(*per[crit]) for crit in criteria},
    }


def _retained(primary: list[float], candidate: list[float]) -> float | None:
    total = sum(primary)
    return round(100.0 * sum(candidate) / total, 2) if primary and total > 0 else None


def _criterion(primary: list[float], candidate: list[float]) -> dict[str, Any]:
    deltas = [c - p for p, c in zip(primary, candidate, strict=True)]
    return {
        "n": len(deltas),
        "primary_mean": _r(statistics.fmean(primary)) if primary else None,
        "candidate_mean": _r(statistics.fmean(candidate)) if candidate else None,
        "mean_delta": _r(statistics.fmean(deltas)) if deltas else None,
        "ci95": mean_ci(deltas),
        "quality_retained": _retained(primary, candidate),
        **distribution_distance(primary, candidate),
    }


def operations(rows: Sequence[dict[str, Any]], price: dict[str, Any] | None) -> dict[str, Any]:
    """Availability, error / blocked / unscored rates, latency p50 / p95 and cost of one target's responses."""
    n = len(rows)
    status: dict[str, int] = defaultdict(int)
    tally = CostTally()
    latencies = []
    for r in rows:
        status[r["status"]] += 1
        tally.add(r)
        if r["status"] == "ok" and r["latency_ms"] is not None:
            latencies.append(float(r["latency_ms"]))
    cost = tally.result(price)
    unscored = sum(1 for r in rows if r["verdict"] == "unscored")
    return {
        "responses": n,
        "availability": _r((status["ok"] + status["blocked"]) / n) if n else None,
        "error_rate": _r(status["error"] / n) if n else None,
        "blocked_rate": _r(status["blocked"] / n) if n else None,
        "unscored_rate": _r(unscored / n) if n else None,
        "latency_ms_p50": percentile(latencies, 50),
        "latency_ms_p95": percentile(latencies, 95),
        "usd_per_1000_cases": cost["usd_per_1000_cases"],
        "cost": cost,
        "tokens_in": tally.tokens_in,
        "tokens_out": tally.tokens_out,
        "ok": status["ok"],
    }


# ranking --------------------------------------------------------------------------------------------------------
def _tie_key(e: dict[str, Any]) -> tuple[Any, ...]:
    cost, p50, loss = e.get("usd_per_1000_cases"), e.get("latency_ms_p50"), e.get("expected_loss")
    return (cost is None, cost or 0.0, p50 is None, p50 or 0.0, loss if loss is not None else 0.0, e["target"])


def rank_candidates(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order candidates by RULE; sets `rank` (1 = first fallback) and `tie_group` on each entry (a new list).

    Each entry needs target, flags, expected_loss, expected_loss_ci95, usd_per_1000_cases, latency_ms_p50."""
    out: list[dict[str, Any]] = []
    group_no = 0
    for part in ([e for e in entries if not e["flags"]], [e for e in entries if e["flags"]]):
        scored = sorted(
            (e for e in part if e["expected_loss"] is not None), key=lambda e: (e["expected_loss"], e["target"])
        )
        groups: list[list[dict[str, Any]]] = []
        for e in scored:
            lead, ci = (groups[-1][0]["expected_loss_ci95"], e["expected_loss_ci95"]) if groups else (None, None)
            if lead is not None and ci is not None and intervals_overlap(lead, ci):  # unknown CI: no tie claimed
                groups[-1].append(e)
            else:
                groups.append([e])
        unscored = [e for e in part if e["expected_loss"] is None]
        if unscored:
            groups.append(unscored)
        for group in groups:
            group_no += 1
            out.extend({**e, "tie_group": group_no} for e in sorted(group, key=_tie_key))
    for n, e in enumerate(out, start=1):
        e["rank"] = n
    return out


def pairwise_ranking(pairs: list[dict[str, Any]], primary: str, flags: dict[str, list[Flag]]) -> list[dict[str, Any]]:
    """Candidates by win rate against the primary, from pairwise verdicts (per judge), flagged ones last."""
    entries = [
        {
            "target": e["model"],
            "judge": e["judge"],
            "win_rate": e["win_rate"],
            "standard_error": e["standard_error"],
            "wins": e["wins"],
            "losses": e["losses"],
            "ties": e["ties"],
            "n": e["n"],
            "unscored": e["unscored"],
            "flags": flags.get(e["model"], []),
        }
        for e in pairwise_table(pairs)
        if e["opponent"] == primary and e["model"] != primary
    ]
    entries.sort(
        key=lambda e: (e["judge"], bool(e["flags"]), e["win_rate"] is None, -(e["win_rate"] or 0.0), e["target"])
    )
    ranks: dict[str, int] = defaultdict(int)
    for e in entries:
        ranks[e["judge"]] += 1
        e["rank"] = ranks[e["judge"]]
    return entries


# cost -----------------------------------------------------------------------------------------------------------
def cost_row(target: str, ops: dict[str, Any]) -> dict[str, Any]:
    """A cost-table row: tokens, price basis, cost per 1,000 cases, and per 1M output tokens (a GPU-hour price
    turned into it from the measured throughput and mean output tokens per response)."""
    cost, price = ops["cost"], ops["cost"]["price"] or {}
    ok = ops["ok"]
    out_per_response = ops["tokens_out"] / ok if ok else None
    per_m_out = None
    if "gpu_hour" in price:
        tput = cost["throughput_per_s"]
        if tput and out_per_response:
            per_m_out = price["gpu_hour"] / 3600.0 / (tput * out_per_response) * 1e6
    elif "output" in price:
        per_m_out = float(price["output"])
    return {
        "target": target,
        "responses": ops["responses"],
        "tokens_in": ops["tokens_in"],
        "tokens_out": ops["tokens_out"],
        "tokens_in_per_response": _r(ops["tokens_in"] / ok, 1) if ok else None,
        "tokens_out_per_response": _r(out_per_response, 1),
        "basis": "gpu_hour" if "gpu_hour" in price else ("tokens" if "input" in price else None),
        "usd_per_1m_input": price.get("input"),
        "usd_per_1m_output": price.get("output"),
        "usd_per_gpu_hour": price.get("gpu_hour"),
        "throughput_per_s": cost["throughput_per_s"],
        "usd_per_1000_cases": cost["usd_per_1000_cases"],
        "usd_per_1m_output_tokens": _r(per_m_out, 6),
        "price_source": price.get("source"),
    }


# fallback config ------------------------------------------------------------------------------------------------
def litellm_model(spec: dict[str, Any]) -> dict[str, Any] | None:
    """A LiteLLM `model_list` entry for a recorded target spec; keys only as `os.environ/NAME` references."""
    provider, model = spec.get("provider"), spec.get("model")
    params: dict[str, Any]
    if provider == "openai":
        params = {"model": f"openai/{model}"}
        if spec.get("base_url"):
            params["api_base"] = spec["base_url"]
    elif provider == "gemini":
        params = {"model": f"gemini/{model}"}
    elif provider == "vllm":  # a managed server: its URL is only known while it runs
        options = (spec.get("params") or {}).get("vllm") or {}
        served = options.get("adapter") or next(iter(options.get("lora") or {}), None) or model
        params = {"model": f"hosted_vllm/{served}", "api_base": "os.environ/VLLM_API_BASE"}
    else:
        return None
    if spec.get("api_key_env"):
        params["api_key"] = f"os.environ/{spec['api_key_env']}"
    for key in LITELLM_PARAMS:
        value = (spec.get("params") or {}).get(key)
        if isinstance(value, (int, float, str)):
            params[key] = value
    return {"model_name": spec["name"], "litellm_params": params}


def fallback_config(
    primary: str,
    ranking: Sequence[dict[str, Any]],
    specs: dict[str, dict[str, Any]],
    exclude_flagged: bool = False,
) -> dict[str, Any]:
    """The chain as plain JSON and as a LiteLLM proxy / Router config (a dict and its YAML text)."""
    chain = [e["target"] for e in ranking if not (exclude_flagged and e["flags"])]
    flagged = {e["target"]: flag_codes(e["flags"]) for e in ranking if e["flags"]}
    plain = {
        "primary": primary,
        "fallbacks": chain,
        "rule": RULE,
        "flagged": flagged,
        "excluded": [t for t in flagged if t not in chain],
    }
    models = [m for m in (litellm_model(specs[t]) for t in [primary, *chain] if t in specs) if m is not None]
    litellm = {"model_list": models, "router_settings": {"fallbacks": [{primary: chain}]}}
    header = [
        f"# LiteLLM fallbacks from `harness failover`: primary {primary}, then {', '.join(chain) or 'nothing'}.",
        "# Ranking rule: " + RULE,
        *[f"# flagged: {t}: {', '.join(codes)}" for t, codes in flagged.items()],
        "# Keys are read from the environment (os.environ/NAME); none is written here.",
    ]
    if any(m["litellm_params"].get("api_base") == "os.environ/VLLM_API_BASE" for m in models):
        header.append("# Set VLLM_API_BASE to the managed vLLM server's /v1 URL.")
    text = "\n".join(header) + "\n" + yaml.safe_dump(litellm, sort_keys=False, default_flow_style=False)
    return {"json": plain, "litellm": litellm, "litellm_yaml": text}


# the document ---------------------------------------------------------------------------------------------------
def failover(
    store: Store,
    run_ids: Sequence[str],
    primary: str,
    prices: dict[str, dict[str, Any]] | None = None,
    exclude_flagged: bool = False,
) -> dict[str, Any]:
    """The failover document: ranking, pairwise ranking, cost table, flags and the fallback config.

    `prices` override the recorded price of a target ({input, output} per 1M tokens, or {gpu_hour})."""
    pool = pool_runs(store, run_ids)
    pair_rows = _pairwise_rows(pool.pairwise)
    known = set(pool.rows) | set(pair_rows)
    if primary not in known:
        listed = ", ".join(sorted(known)) or "none"
        raise UserError(f"primary '{primary}' is not a target of the given runs (targets: {listed})", field="--primary")
    for name, price in (prices or {}).items():
        if name not in known:
            raise UserError(f"price for '{name}', which is not a target of the given runs", field="--price")
        pool.prices[name] = price
    flag_rows = {t: pool.rows.get(t) or pair_rows.get(t, []) for t in sorted(known)}
    flags = target_flags(flag_rows, primary)
    scored = {c for rows in pool.rows.values() for r in rows for c, v in r["scores"].items() if v is not None}
    checked = any(r.get("checked") for rows in pool.rows.values() for r in rows)
    criteria = sorted(scored) or ([PASS_CRITERION] if checked else [])
    primary_rows = pool.rows.get(primary, [])
    entries = []
    for target, rows in pool.rows.items():
        if target == primary:
            continue
        ops = operations(rows, pool.prices.get(target))
        entry = {"target": target, "run_id": pool.source[target], **compare(primary_rows, rows, criteria)}
        entry |= {k: v for k, v in ops.items() if k not in ("cost", "ok")}
        entry["flags"] = flags[target]
        entry["_ops"] = ops
        entries.append(entry)
    ranking = rank_candidates(entries)
    costs = []
    if primary in pool.rows:
        costs.append(cost_row(primary, operations(primary_rows, pool.prices.get(primary))))
    costs += [cost_row(e["target"], e["_ops"]) for e in ranking]
    for e in ranking:
        del e["_ops"]
    primary_ops = operations(primary_rows, pool.prices.get(primary)) if primary_rows else None
    notes = list(pool.notes)
    if not primary_rows:
        notes.append(f"the primary '{primary}' has no responses in these runs (pairwise verdicts only)")
    if criteria == [PASS_CRITERION]:
        notes.append("no judge scores in these runs: quality is the checks' verdict (pass 1, fail 0)")
    elif not criteria:
        notes.append("no judge scores and no checks in these runs: no quality comparison, ranking by cost and latency")
    notes += [f"{e['target']}: no scored case in common with the primary" for e in ranking if not e["scored_pairs"]]
    trust = judge_trust(store, pool.runs)
    for run_id, t in trust.items():
        if t is not None and not t["trusted"] and criteria != [PASS_CRITERION]:
            why = "; ".join(r for j in t["judges"].values() for r in j["reasons"]) or "no canary scored"
            notes.append(
                f"NOT TRUSTWORTHY: the judge of run {run_id} failed its canaries ({why}): the score deltas of this "
                "ranking are not evidence; compare the candidates' deterministic checks instead"
            )
    return {
        "schema": "judge-harness/failover@1",
        "primary": primary,
        "runs": pool.runs,
        "criteria": criteria,
        "rule": RULE,
        "primary_summary": {
            "target": primary,
            "run_id": pool.source.get(primary),
            **({k: v for k, v in primary_ops.items() if k not in ("cost", "ok")} if primary_ops else {}),
            "flags": flags.get(primary, []),
        },
        "ranking": ranking,
        "pairwise_rule": PAIRWISE_RULE,
        "pairwise_ranking": pairwise_ranking(pool.pairwise, primary, flags),
        "cost": costs,
        "flags": flags,
        "fallback_config": fallback_config(primary, ranking, pool.specs, exclude_flagged),
        "notes": notes,
        "judge_trust": trust,
    }


def judge_trust(store: Store, runs: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Per pooled run, its judge canary verdict (None when it scored none)."""
    from reports.compare import run_trust

    return {str(r["run_id"]): run_trust(store, store.run(str(r["run_id"]))) for r in runs}
