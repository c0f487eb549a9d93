"""pytest plugin (entry point `pytest11`): prompt suites run as ordinary tests.

    pytest prompt_suites/ --harness-target base=openai:gpt-4o-mini [--harness-judge judge=openai:gpt-4o]

Every suite file (a YAML file whose top level has a `suite:` key) is collected as one test per case and target,
named `CASE[TARGET]`, with the case's tags, the suite's name and the target's name as keywords, so `-k` selects by
case id or tag. The cases of a file are run through the harness runner (targets called concurrently, checks,
judge, results stored) the first time one of its tests runs, for the tests this process will run; each test
then asserts its response's verdict:

  pass      the test passes
  fail      the test fails, showing every check, every judged score with its rationale, and the response
  error     the test fails as an endpoint error (the target gave no response): not a quality failure
  unscored  the test fails: the judge gave no usable score, with the reason, or nothing evaluated the response
            (a case with no check run without a judge)

Without --harness-judge (or a `judge` in harness.yaml) only the deterministic checks decide. Under pytest-xdist
each worker runs the cases of the tests it is given (those queued to it when the first one starts).

Without --harness-target the plugin does nothing: it collects no YAML file and imports nothing of the harness
(it is loaded into every pytest session of an environment where the package is installed).
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from harness.runner.engine import RunOptions
    from harness.store import Store
    from harness.suites.models import Case, Suite
    from harness.targets.spec import TargetSpec

_SUITE_KEY = re.compile(rb"^suite[ \t]*:", re.M)
_SUFFIXES = (".yaml", ".yml")
_NOT_SUITES = ("harness.yaml", "harness.yml")  # harness.suites.loader.NOT_SUITES, without importing it
TEXT_LIMIT = 1500  # characters of a response shown in a failure (all of it with -vv)


@dataclass
class _Harness:
    """What the options ask for, parsed once per process; the results store is opened at the first run."""

    targets: list[TargetSpec]
    judges: list[TargetSpec]
    options: RunOptions
    db: Path | None
    worker: str | None
    _store: Store | None = None
    _tmp: str | None = None
    runs: list[str] = field(default_factory=list)

    @property
    def store(self) -> Store:
        from harness.store import Store

        if self._store is None:
            if self.db is None:
                self._tmp = tempfile.mkdtemp(prefix="harness-pytest-")
                self._store = Store(Path(self._tmp) / "results.db")
            else:
                self._store = Store(self.db)
        return self._store

    def run(self, suite: Suite, cases: list[Case], targets: list[str]) -> tuple[str, list[dict[str, Any]]]:
        """Run these cases of the suite against these targets; the run's id and its per-response rows."""
        import asyncio

        from harness.runner.engine import Runner
        from reports.summary import case_rows

        specs = [t for t in self.targets if t.name in targets]
        runner = Runner(self.store, [_subset(suite, cases)], specs, self.judges, self.options)
        run_id = asyncio.run(runner.run())
        self.runs.append(run_id)
        return run_id, list(case_rows(self.store, run_id))

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


_KEY = pytest.StashKey[_Harness]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "judge harness: prompt suites as tests")
    group.addoption(
        "--harness-target",
        action="append",
        default=[],
        metavar="SPEC",
        help="Run the suite files among the collected paths against this target: NAME=PROVIDER:MODEL[@BASE_URL] "
        "or a target named in harness.yaml. Repeatable: one test per case and target. Without it the harness "
        "plugin does nothing.",
    )
    group.addoption(
        "--harness-judge",
        action="append",
        default=[],
        metavar="SPEC",
        help="Judge (spec, a harness.yaml name, or one of the targets' names); repeat for a panel. Default: "
        "harness.yaml `judge`; with none, only the deterministic checks decide.",
    )
    group.addoption(
        "--harness-judge-mode",
        choices=("rubric", "reference"),
        default="rubric",
        help="rubric: criteria scored 1-5; reference: graded against the case's references (default rubric).",
    )
    group.addoption(
        "--harness-samples",
        type=int,
        default=1,
        metavar="N",
        help="Responses per case and target; a test passes only when every one does (default 1).",
    )
    group.addoption(
        "--harness-db",
        default=None,
        metavar="PATH",
        help="SQLite results store to keep the runs in (default: harness.yaml `db`, else a temporary store "
        "removed at the end of the session).",
    )
    group.addoption("--harness-config", default=None, metavar="PATH", help="harness.yaml (default: ./harness.yaml).")
    group.addoption(
        "--harness-no-cache",
        action="store_true",
        default=False,
        help="Call the endpoints even where the store holds an identical request.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.getoption("harness_target", None):
        return
    from harness.errors import UserError

    try:
        config.stash[_KEY] = _configure(config)
    except UserError as exc:
        raise pytest.UsageError(f"harness: {exc.render()}") from None
    config.addinivalue_line("markers", "harness: a prompt-suite case run by the judge harness (harness.pytest_plugin)")


def _configure(config: pytest.Config) -> _Harness:
    from harness.config import load_config
    from harness.errors import UserError
    from harness.runner.engine import RunOptions
    from harness.runner.judging import JudgeSettings
    from harness.targets import parse_target_spec

    cfg = load_config(config.getoption("harness_config"))
    targets = [parse_target_spec(t, cfg.targets, "--harness-target") for t in config.getoption("harness_target")]
    if len({t.name for t in targets}) != len(targets):
        raise UserError("two targets share a name; name them: NAME=PROVIDER:MODEL[@BASE_URL]", field="--harness-target")
    named = {**cfg.targets, **{t.name: t for t in targets}}
    judge_names = config.getoption("harness_judge") or ([cfg.data.judge] if cfg.data.judge else [])
    judges = [parse_target_spec(j, named, "--harness-judge") for j in judge_names]
    if len({j.name for j in judges}) != len(judges):
        raise UserError("two judges share a name; name them: NAME=PROVIDER:MODEL[@BASE_URL]", field="--harness-judge")
    samples = config.getoption("harness_samples")
    if not 1 <= samples <= 1000:
        raise UserError("expected 1 to 1000 responses per case", field="--harness-samples")
    worker = getattr(config, "workerinput", {}).get("workerid")
    settings = JudgeSettings(
        mode=config.getoption("harness_judge_mode"), judge_format=cfg.data.judge_format or "json_schema"
    )
    options = RunOptions(
        samples=samples,
        no_cache=config.getoption("harness_no_cache"),
        name=f"pytest {worker}" if worker else "pytest",  # xdist workers never resume each other's runs
        judging=settings,
        prices={model: p.model_dump() for model, p in cfg.data.prices.items()},
    )
    db = config.getoption("harness_db") or cfg.data.db
    return _Harness(targets, judges, options, Path(db) if db else None, worker)


def pytest_unconfigure(config: pytest.Config) -> None:
    harness = config.stash.get(_KEY, None)
    if harness is not None:
        harness.close()
        del config.stash[_KEY]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    harness = config.stash.get(_KEY, None)
    if harness is None:
        return None
    judges = ", ".join(j.name for j in harness.judges) or "none (checks only)"
    store = str(harness.db) if harness.db else "temporary"
    return [f"harness: targets {', '.join(t.name for t in harness.targets)}; judge {judges}; store {store}"]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    if _KEY not in parent.config.stash:
        return None
    if file_path.suffix not in _SUFFIXES or file_path.name in _NOT_SUITES:
        return None
    try:
        with file_path.open("rb") as handle:
            head = handle.read(1 << 20)
    except OSError:
        return None
    if not _SUITE_KEY.search(head):
        return None  # other YAML (CI configs, harness.yaml) is not a suite
    suite_file: SuiteFile = SuiteFile.from_parent(parent, path=file_path)
    return suite_file


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    harness = config.stash.get(_KEY, None)
    if harness is None or harness.db is None:
        return
    runs = f" (runs {', '.join(harness.runs)})" if harness.runs else ""
    terminalreporter.write_line(f"harness: results stored in {harness.db}{runs}; see `harness runs --db {harness.db}`")


class SuiteLoadError(Exception):
    """A suite file that does not load: shown as its one-line UserError, not as a traceback."""


class SuiteFile(pytest.File):
    """One suite file: one test per case and target; runs its cases the first time one of its tests runs."""

    suite: Suite
    cases: dict[str, Case]

    def collect(self) -> Iterator[CaseItem]:
        from harness.errors import UserError
        from harness.suites.loader import iter_cases, load_suite

        try:
            self.suite = load_suite(self.path)
            self.cases = {c.id: c for c in _raw_cases(self.suite)}
            resolved = list(iter_cases(self.suite))
        except UserError as exc:
            raise SuiteLoadError(exc.render()) from None
        self.outcomes: dict[tuple[str, str], Outcome] = {}
        harness = self.config.stash[_KEY]
        for case in resolved:
            for target in harness.targets:
                item: CaseItem = CaseItem.from_parent(
                    self, name=f"{case.id}[{target.name}]", case_id=case.id, target=target.name
                )
                item.extra_keyword_matches.update({*case.tags, self.suite.name, target.name})
                item.add_marker("harness")
                yield item

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SuiteLoadError):
            return f"harness: {excinfo.value}"
        return super().repr_failure(excinfo)

    def outcome(self, item: CaseItem) -> Outcome:
        """The item's outcome, running its case (and those of the tests queued after it here) when not yet run."""
        key = (item.case_id, item.target)
        if key not in self.outcomes:
            batch = [item, *(i for i in _queued_after(item) if isinstance(i, CaseItem) and i.parent is self)]
            self._run([i for i in batch if (i.case_id, i.target) not in self.outcomes])
        return self.outcomes[key]

    def _run(self, items: list[CaseItem]) -> None:
        harness = self.config.stash[_KEY]
        case_ids = list(dict.fromkeys(i.case_id for i in items))
        targets = list(dict.fromkeys(i.target for i in items))
        try:
            run_id, rows = harness.run(self.suite, [self.cases[c] for c in case_ids], targets)
        except Exception as exc:  # a crash of the run fails its tests, with the cause
            from harness.errors import UserError

            reason = exc.render() if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            for i in items:
                self.outcomes[(i.case_id, i.target)] = Outcome("", [], crash=reason)
            return
        by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in rows:
            by_key.setdefault((row["case_id"], row["target"]), []).append(row)
        for case_id in case_ids:
            for target in targets:
                found = sorted(by_key.get((case_id, target), []), key=lambda r: int(r["sample"]))
                self.outcomes[(case_id, target)] = Outcome(run_id, found)


@dataclass(frozen=True)
class Outcome:
    """The stored rows (one per sample) of one case and target, or why the run crashed."""

    run_id: str
    rows: list[dict[str, Any]]
    crash: str | None = None

    @property
    def passed(self) -> bool:
        return self.crash is None and bool(self.rows) and all(r["verdict"] == "pass" for r in self.rows)


class CaseFailed(Exception):
    """A case that did not pass; the message is the whole report shown by pytest."""


class CaseItem(pytest.Item):
    """One case of a suite against one target."""

    def __init__(self, *, case_id: str, target: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case_id = case_id
        self.target = target

    def runtest(self) -> None:
        parent = self.parent
        assert isinstance(parent, SuiteFile)
        outcome = parent.outcome(self)
        if not outcome.passed:
            db = self.config.stash[_KEY].db
            raise CaseFailed(failure_text(parent.suite, self.case_id, self.target, outcome, self._verbose(), db))

    def _verbose(self) -> bool:
        return int(self.config.getoption("verbose", 0) or 0) > 1

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        parent = self.parent
        suite = parent.suite.name if isinstance(parent, SuiteFile) else "?"
        return self.path, None, f"{suite}::{self.case_id}[{self.target}]"


def _queued_after(item: pytest.Item) -> list[pytest.Item]:
    """The tests this process will run after `item`, as far as known now: the rest of the session's tests, or
    under pytest-xdist the tests queued to this worker so far (more may be sent later; their cases then run
    when the first of them starts)."""
    session = item.session
    if not hasattr(item.config, "workerinput"):
        return list(session.items)
    for plugin in item.config.pluginmanager.get_plugins():
        queue = getattr(plugin, "torun", None)
        if queue is None or not hasattr(queue, "lock"):
            continue
        try:
            with queue.lock() as pending:
                indices = [getattr(plugin, "nextitem_index", None), *pending]
            return [session.items[i] for i in indices if isinstance(i, int) and 0 <= i < len(session.items)]
        except Exception:  # xdist internals changed: fall back to running each test's case on its own
            return []
    return []


def _raw_cases(suite: Suite) -> list[Case]:
    """The suite's cases as written (inline, then its JSONL file), before defaults are applied."""
    from harness.suites.loader import jsonl_models
    from harness.suites.models import Case

    cases = list(suite.inline_cases)
    if suite.cases_file is not None:
        cases.extend(case for _, case in jsonl_models(suite.cases_file, Case, "one case"))
    return cases


def _subset(suite: Suite, cases: list[Case]) -> Suite:
    """The suite limited to these cases, with the content hash of exactly those (the suite's own hash when they
    are all of its cases, in order)."""
    import dataclasses
    import hashlib

    import orjson

    from harness.suites.models import resolve

    digest = hashlib.sha256()
    for case in cases:
        digest.update(orjson.dumps(resolve(case, suite.name, suite.defaults).normalised(), option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
    return dataclasses.replace(
        suite, inline_cases=list(cases), cases_file=None, content_hash=digest.hexdigest(), case_count=len(cases)
    )


# the failure report -------------------------------------------------------------------------------------------
def _clip(text: str, full: bool) -> str:
    if full or len(text) <= TEXT_LIMIT:
        return text
    return text[:TEXT_LIMIT] + f"... [{len(text) - TEXT_LIMIT} more characters; -vv shows all]"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines() or [""])


def failure_text(
    suite: Suite, case_id: str, target: str, outcome: Outcome, full: bool = False, db: Path | None = None
) -> str:
    """What pytest shows for a case that did not pass: the cause first (its first line is pytest's short summary),
    then per sample the checks, the scores with their rationales, and the response."""
    from reports.render import why

    where = f"suite {suite.name} {suite.version}, case {case_id}, target {target}"
    if outcome.crash is not None:
        return f"harness error: the run could not complete: {outcome.crash}\n{where}"
    if not outcome.rows:
        return f"harness error: the run recorded no response for this case\n{where}"
    failing = [r for r in outcome.rows if r["verdict"] == "fail"]
    errors = [r for r in outcome.rows if r["verdict"] == "error"]

    def of(n: int) -> str:
        return f" ({n} of {len(outcome.rows)} samples)" if len(outcome.rows) > 1 else ""

    if failing:
        title = f"quality failure{of(len(failing))}: {why(failing[0])}"
    elif errors:
        cause = "no response, so nothing was checked or judged; not a quality failure"
        title = f"endpoint error{of(len(errors))} ({cause}): {errors[0]['error']}"
    else:
        row = next(r for r in outcome.rows if r["verdict"] != "pass")
        reason = why(row).removeprefix("unscored: ")
        cause = "the checks passed, the judge gave no usable score" if row["scores"] else "no check, no judge"
        title = f"unscored ({cause}): {reason}"
    lines = [title, where]
    first = outcome.rows[0]
    prompt = next((m["content"] for m in reversed(first.get("messages") or []) if m["role"] == "user"), None)
    if prompt is not None:
        lines.append("prompt:")
        lines.append(_indent(_clip(str(prompt), full), "    "))
    several = len(outcome.rows) > 1
    for row in outcome.rows:
        lines.extend(_row_lines(row, several, full))
    store = f"harness report {outcome.run_id} --db {db}" if db else "a temporary store: keep it with --harness-db PATH"
    lines.append(f"run {outcome.run_id} ({store})")
    return "\n".join(lines)


def _row_lines(row: dict[str, Any], several: bool, full: bool) -> list[str]:
    pad = "  " if several else ""
    lines = [f"sample {row['sample']}: {row['verdict']}"] if several else []
    if row["status"] != "ok":
        lines.append(
            f"{pad}endpoint: status {row['status']} after {row.get('attempts') or 0} attempt(s): {row['error']}"
        )
        return lines
    if row["checks"]:
        lines.append(f"{pad}checks:")
        for check in row["checks"]:
            mark = "pass" if check["passed"] else "FAIL"
            detail = f" -- {check['detail']}" if check.get("detail") else ""
            lines.append(f"{pad}  [{mark}] {check['check']}{detail}")
    if row["scores"]:
        lines.append(f"{pad}scores (threshold {row['threshold']}):")
        for criterion in sorted(row["scores"]):
            score = row["scores"][criterion]
            if score["status"] != "scored":
                lines.append(f"{pad}  [{str(score['status']).upper()}] {criterion}: {score.get('reason')}")
                continue
            mark = "pass" if score["score"] >= row["threshold"] else "FAIL"
            judge = f" (judge {score['judge']})" if score.get("judge") else ""
            lines.append(f"{pad}  [{mark}] {criterion} = {score['score']:g}{judge}: {score.get('rationale') or ''}")
    text = row.get("text")
    if text is not None:
        lines.append(f"{pad}response ({len(text)} characters):")
        lines.append(_indent(_clip(text, full), pad + "    "))
    return lines
