"""Run suites against targets: generate, check, judge, record. Resumable after a crash or kill -9.

A run is identified by a fingerprint of what it asks (suite versions and hashes, targets, judges, judge
method, samples, name). Running the same command again while the last such run is unfinished continues that
run: outcomes it recorded are kept and not requested again. Identical requests are also served from the
store's call cache across runs unless `no_cache` is set.

Re-judging (`rejudge_of`) makes a new run that copies another run's cases and responses and judges them
again (another judge, template or mode) without calling the targets.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import harness
from harness.checks import run_checks
from harness.pricing import resolve_price
from harness.runner.canaries import judge_canaries
from harness.runner.endpoint import CallResult, Endpoint
from harness.runner.judging import JudgeSettings, judge_pair, judge_response
from harness.store import Store, StoredResponse
from harness.suites.loader import iter_cases
from harness.suites.models import DEFAULT_THRESHOLD, ResolvedCase, Suite
from harness.targets.spec import TargetSpec, fingerprint
from judges.canaries import CanarySet
from judges.criteria import SCALE_MAX, SCALE_MIN


@dataclass
class RunOptions:
    samples: int = 1
    no_cache: bool = False
    name: str | None = None
    judging: JudgeSettings = field(default_factory=JudgeSettings)
    rejudge_of: str | None = None  # a run id: judge its stored responses again, call no target
    criteria: list[str] | None = None  # re-judging: judge on these criteria instead of each case's own
    prices: dict[str, dict[str, float]] = field(default_factory=dict)  # harness.yaml `prices:` per model id
    canaries: CanarySet | None = None  # judge canaries every judge also scores (None: none, --no-canaries)
    canary_floor: float | None = None  # minimum canary accuracy a judge must reach to be trusted (besides chance)


def rejudge_overrides(case: dict[str, Any], criteria: list[str]) -> dict[str, Any]:
    """What re-judging on other criteria changes in a recorded case: the criteria, and a pass threshold outside
    the judges' 1-5 scale (e.g. MT-Bench's 8 of 10) becomes the default."""
    threshold = case.get("threshold", DEFAULT_THRESHOLD)
    return {"criteria": criteria, "threshold": threshold if SCALE_MIN <= threshold <= SCALE_MAX else DEFAULT_THRESHOLD}


class Runner:
    def __init__(
        self,
        store: Store,
        suites: list[Suite],
        targets: list[TargetSpec],
        judges: list[TargetSpec],
        options: RunOptions,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.suites = suites
        self.targets = targets
        self.judges = judges
        self.options = options
        self.progress = progress
        self.resumed = False
        self._source: dict[str, Any] | None = store.run(options.rejudge_of) if options.rejudge_of else None

    @property
    def total_items(self) -> int:
        """Progress units: one per target response (with its judging), one per canary judge call."""
        if self._source is not None:
            units = len(self.store.cases(self._source["run_id"])) * self.options.samples * len(self.targets)
        else:
            units = sum(s.case_count for s in self.suites) * self.options.samples * len(self.targets)
        return units + self.canary_calls

    @property
    def canary_calls(self) -> int:
        canaries = self.options.canaries
        return 0 if canaries is None or not self.judges else 2 * len(canaries.items) * len(self.judges)

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "suites": [s.identity() for s in self.suites],
            "targets": [t.public() for t in self.targets],
            "judge": self.judges[0].public() if self.judges else None,
            "judges": [j.public() for j in self.judges],
            "judge_method": self.options.judging.identity() if self.judges else None,
            "samples": self.options.samples,
            "name": self.options.name,
            "canaries": self._canary_config(),
            "prices": {
                t.name: resolve_price(t.model, t.price, t.gpu_hour, self.options.prices)
                for t in [*self.targets, *self.judges]
            },
        }
        if self._source is not None:
            config["rejudge_of"] = self._source["run_id"]
            config["suites"] = self._source["config"]["suites"]
            if self.options.criteria is not None:
                config["criteria"] = self.options.criteria
        return config

    def fingerprint(self) -> str:
        """What the run asks, without runtime knobs (concurrency, timeouts, attempts): the same command with
        another --concurrency still continues an unfinished run."""
        config = self.config()
        config["suites"] = [{k: s[k] for k in ("suite", "version", "hash")} for s in config["suites"]]
        config["targets"] = [t.identity() for t in self.targets]
        config["judge"] = None
        config["judges"] = [j.identity() for j in self.judges]
        config.pop("prices")  # accounting, not what the run asks
        if config["canaries"] is not None:
            config["canaries"] = {k: v for k, v in config["canaries"].items() if k != "floor"}  # analysis only
        return fingerprint(config)

    async def run(self) -> str:
        fp = self.fingerprint()
        run_id = self.store.resumable_run(fp)
        self.resumed = run_id is not None
        if run_id is None:
            run_id = self.store.create_run(self.options.name, fp, harness.__version__, self.config())
            if self._source is not None:
                self.store.copy_responses(
                    self._source["run_id"],
                    run_id,
                    None
                    if self.options.criteria is None
                    else partial(rejudge_overrides, criteria=self.options.criteria),
                )
        else:
            self.store.set_run_status(run_id, "running")
        self.run_id = run_id
        self._recorded = self.store.recorded_responses(run_id)
        self._judge_calls = self.store.recorded_judge_calls(run_id)
        self._pairs = self.store.recorded_pairs(run_id)
        self._cases_recorded: set[tuple[str, str]] = {(k[0], k[1]) for k in self._recorded}
        endpoints = {} if self._source is not None else {t.name: Endpoint(t) for t in self.targets}
        judge_eps: list[Endpoint] = []
        for spec in self.judges:
            same = endpoints.get(spec.name)
            judge_eps.append(same if same is not None and same.spec == spec else Endpoint(spec))
        try:
            for ep in {id(e): e for e in [*endpoints.values(), *judge_eps]}.values():
                await ep.prepare()
            canaries = self._canary_task(judge_eps)
            try:
                await self._run_all(endpoints, judge_eps)
            except BaseException:
                if canaries is not None:
                    canaries.cancel()
                raise
            if canaries is not None:
                await canaries
        except BaseException:
            self.store.set_run_status(run_id, "interrupted")
            raise
        finally:
            for ep in {id(e): e for e in [*endpoints.values(), *judge_eps]}.values():
                await ep.aclose()
        self.store.set_run_status(run_id, "complete")
        return run_id

    def _canary_config(self) -> dict[str, Any] | None:
        canaries = self.options.canaries
        if canaries is None or not self.judges:
            return None
        return {**canaries.identity(), "floor": self.options.canary_floor}

    def _canary_task(self, judge_eps: list[Endpoint]) -> asyncio.Task[None] | None:
        """The judge canaries, scored beside the run's own calls (the judges' endpoints bound the concurrency)."""
        canaries = self.options.canaries
        if canaries is None or not judge_eps:
            return None
        progress = self.progress
        return asyncio.create_task(
            judge_canaries(
                self.store,
                self.run_id,
                self.options.judging,
                judge_eps,
                canaries,
                self.options.no_cache,
                None if progress is None else lambda: progress(1),
            )
        )

    def _cases(self) -> Iterator[ResolvedCase]:
        if self._source is None:
            for suite in self.suites:
                yield from iter_cases(suite)
        else:
            for row in self.store.cases(self._source["run_id"]):
                if self.options.criteria is not None:
                    row = {**row, **rejudge_overrides(row, self.options.criteria)}
                yield ResolvedCase.from_normalised(row["suite"], {"id": row["case_id"], **row})

    async def _run_all(self, endpoints: dict[str, Endpoint], judge_eps: list[Endpoint]) -> None:
        total_concurrency = (
            sum(e.spec.concurrency for e in {id(e): e for e in [*endpoints.values(), *judge_eps]}.values()) or 8
        )
        gate = asyncio.Semaphore(max(2, 2 * total_concurrency // max(1, len(self.targets))))
        tasks: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        def done(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            gate.release()
            if not task.cancelled() and task.exception() is not None:
                failures.append(task.exception())  # type: ignore[arg-type]
            if self.progress is not None:
                self.progress(len(self.targets))

        try:
            for case in self._cases():
                for sample in range(self.options.samples):
                    await gate.acquire()
                    if failures:
                        raise failures[0]
                    task = asyncio.create_task(self._unit(case, sample, endpoints, judge_eps))
                    tasks.add(task)
                    task.add_done_callback(done)
            while tasks:
                await asyncio.wait(set(tasks))
            if failures:
                raise failures[0]
        finally:
            for task in tasks:
                task.cancel()

    async def _unit(
        self, case: ResolvedCase, sample: int, endpoints: dict[str, Endpoint], judge_eps: list[Endpoint]
    ) -> None:
        """One case and sample: every target's response, then the judging that needs them."""
        responses = await asyncio.gather(*(self._response(case, t.name, sample, endpoints) for t in self.targets))
        ok = [(t.name, r) for t, r in zip(self.targets, responses, strict=True) if r is not None and r.status == "ok"]
        if not judge_eps or not case.criteria:
            return
        settings = self.options.judging
        jobs = []
        if settings.mode == "pairwise":
            for (a, b), ep, first in itertools.product(itertools.combinations(ok, 2), judge_eps, ("a", "b")):
                if (case.suite, case.id, sample, a[0], b[0], ep.spec.name, first) not in self._pairs:
                    jobs.append(
                        judge_pair(
                            self.store, self.run_id, settings, ep, case, sample, a, b, first, self.options.no_cache
                        )
                    )
        else:
            groups: list[tuple[list[str], str | None]] = (
                [([c], c) for c in case.criteria] if settings.per_criterion else [(case.criteria, None)]
            )
            for (_, stored), ep, k, (criteria, one) in itertools.product(
                ok, judge_eps, range(settings.samples), groups
            ):
                if (stored.id, ep.spec.name, k, one) not in self._judge_calls:
                    jobs.append(
                        judge_response(
                            self.store,
                            self.run_id,
                            settings,
                            ep,
                            case,
                            stored,
                            sample,
                            k,
                            criteria,
                            one,
                            self.options.no_cache,
                        )
                    )
        await asyncio.gather(*jobs)

    async def _response(
        self, case: ResolvedCase, target: str, sample: int, endpoints: dict[str, Endpoint]
    ) -> StoredResponse | None:
        stored = self._recorded.get((case.suite, case.id, target, sample))
        if stored is not None:
            return stored
        ep = endpoints.get(target)
        return None if ep is None else await self._generate(case, ep, sample)  # re-judging calls no target

    async def _generate(self, case: ResolvedCase, ep: Endpoint, sample: int) -> StoredResponse:
        params = {**case.params, **ep.spec.params}
        key = fingerprint([ep.spec.endpoint_identity(), params, case.messages, sample])
        hit = None if self.options.no_cache else self.store.cache_get(key)
        result = CallResult(hit, None, 0, hit.latency_ms) if hit else await ep.call(case.messages, params)
        checks: list[dict[str, Any]] = []
        if result.reply is not None:
            checks = [c.as_dict() for c in run_checks(case.checks, result.reply.text, case.references)]
        response_id = self.store.add_response(
            self.run_id,
            case.suite,
            case.id,
            ep.spec.name,
            sample,
            reply=result.reply,
            error=result.error,
            latency_ms=result.latency_ms,
            attempts=result.attempts,
            from_cache=hit is not None,
            cache_key=key,
            checks=checks,
            case_data=self._case_data(case),
            status=result.status,
        )
        return StoredResponse(response_id, result.status, result.reply.text if result.reply else None)

    def _case_data(self, case: ResolvedCase) -> dict[str, Any] | None:
        """The case as recorded with the run, the first time one of its responses is recorded."""
        key = (case.suite, case.id)
        if key in self._cases_recorded:
            return None
        self._cases_recorded.add(key)
        return case.normalised()
