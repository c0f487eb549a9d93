"""Judge canaries: every judge of a run also scores a shipped set of known-good and known-bad responses.

One judge call per canary response (its good one and its bad one), on the criteria the canary names, with the
run's judge method (rubric, or reference-guided when the canary has references; the same template, format and
fencing as the run's own judging). Calls go through the judge's Endpoint and the call cache like any judge call,
and each is recorded in the store's `canary_judgments` table with its prompt and raw reply; a reply that does
not parse is recorded as unscored with its reason, never as a score. The statistics (canary accuracy with its
interval, mean gap, trust) are computed from the store by reports/canaries.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from harness.runner.endpoint import Endpoint
from harness.runner.judging import DEFAULT_TEMPLATES, LOGPROB_PARAMS, JudgeSettings, _ask
from harness.store import Store
from harness.targets.spec import fingerprint
from judges.canaries import CanaryItem, CanarySet
from judges.rubric import JudgeRequest, RubricJudge

SIDES = ("good", "bad")


def canary_template(settings: JudgeSettings, item: CanaryItem) -> str:
    """The template a canary is judged with: the run's; in reference mode the plain rubric when it has none."""
    if settings.mode == "pairwise":
        return DEFAULT_TEMPLATES["rubric"]  # pairwise runs: canaries are scored one response at a time
    if settings.template is not None:
        return settings.template
    if settings.mode == "reference" and not item.references:
        return DEFAULT_TEMPLATES["rubric"]
    return DEFAULT_TEMPLATES[settings.mode]


async def judge_canary(
    store: Store,
    run_id: str,
    settings: JudgeSettings,
    ep: Endpoint,
    canaries: CanarySet,
    item: CanaryItem,
    side: str,
    no_cache: bool,
) -> None:
    """Score one canary response (`side`: good or bad) with one judge; record one row per criterion."""
    text = item.good if side == "good" else item.bad
    rubric = RubricJudge(canary_template(settings, item), settings.judge_format)
    request = JudgeRequest(item.messages, list(item.references), text, list(item.criteria))
    params: dict[str, Any] = {
        "temperature": 0,
        "max_tokens": 512,
        **(LOGPROB_PARAMS if settings.logprobs else {}),
        **ep.spec.params,
        **rubric.request_params(list(item.criteria)),
    }
    key = fingerprint([ep.spec.endpoint_identity(), params, rubric.identity, request.fingerprint(), "canary"])
    status, verdict, reply, prompt, attempts, from_cache, reason = await _ask(
        store,
        ep,
        lambda: rubric.build(request),
        params,
        key,
        no_cache,
        lambda raw: rubric.parse(raw, list(item.criteria)),
    )
    rows = []
    for criterion in item.criteria:
        score = verdict.scores[criterion] if status == "scored" else None
        rows.append(
            {
                "criterion": criterion,
                "score": float(score.score) if score is not None else None,
                "rationale": score.rationale if score is not None else None,
            }
        )
    store.add_canary_judgments(
        run_id,
        judge=ep.spec.name,
        canary_set=canaries.name,
        canary_id=item.id,
        kind=item.kind,
        side=side,
        status=status,
        reason=reason,
        prompt=prompt,
        raw=reply.text if reply else None,
        reply=reply,
        attempts=attempts,
        from_cache=from_cache,
        cache_key=key,
        template=rubric.template.name,
        rows=rows,
    )


async def judge_canaries(
    store: Store,
    run_id: str,
    settings: JudgeSettings,
    judge_eps: list[Endpoint],
    canaries: CanarySet,
    no_cache: bool,
    progress: Callable[[], None] | None = None,
) -> None:
    """Every judge on every canary response not yet recorded for this run (a resumed run asks only the rest);
    `progress` is called once per canary call, recorded or skipped."""

    async def one(ep: Endpoint, item: CanaryItem, side: str) -> None:
        if (ep.spec.name, item.id, side) not in done:
            await judge_canary(store, run_id, settings, ep, canaries, item, side, no_cache)
        if progress is not None:
            progress()

    done = store.recorded_canaries(run_id)
    await asyncio.gather(*(one(ep, item, side) for ep in judge_eps for item in canaries.items for side in SIDES))
