"""Read suite files: YAML with line numbers for errors, JSONL cases streamed, content hash computed."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import UserError
from harness.suites.models import Case, ResolvedCase, Suite, SuiteFile, resolve

try:  # the C loader is several times faster; fall back where libyaml is missing
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)
SUITE_SUFFIXES = (".yaml", ".yml")
NOT_SUITES = {"harness.yaml", "harness.yml"}
CANARY_SUFFIXES = (".canaries.yaml", ".canaries.yml")  # judge canary sets (judges/canaries.py), not suites


def is_canary_file(path: str | Path) -> bool:
    """A judge canary set (`*.canaries.yaml`), which lives beside the suites but is not one."""
    return Path(path).name.endswith(CANARY_SUFFIXES)


def _index_lines(node: yaml.Node, path: Loc, out: dict[Loc, int], file: Path) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, str(key.value))
            if sub in out:
                raise UserError(
                    f"duplicate key '{key.value}' (first at line {out[sub]})",
                    file=file,
                    line=key.start_mark.line + 1,
                    field=_field_name(sub),
                )
            out[sub] = key.start_mark.line + 1
            _index_lines(value, sub, out, file)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, (*path, i), out, file)


def load_yaml_with_lines(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse a YAML file; return the data and a map from each key path to its line (1-based)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read the file ({exc.strerror})", file=path) from None
    except UnicodeDecodeError:
        raise UserError("the file is not UTF-8 text", file=path) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise UserError(f"invalid YAML: {exc.problem or exc.context}", file=path, line=line) from None
    except yaml.YAMLError as exc:
        raise UserError(f"invalid YAML: {exc}", file=path) from None
    finally:
        loader.dispose()
    lines: dict[Loc, int] = {}
    if node is not None:
        _index_lines(node, (), lines, path)
    return data, lines


def load_yaml_model(path: Path, model: type[M], not_a_mapping: str, empty_ok: bool = False) -> tuple[M, dict[Loc, int]]:
    """Parse a YAML file into a pydantic model; any problem is one UserError naming file, line and field."""
    data, lines = load_yaml_with_lines(path)
    if data is None and empty_ok:
        data = {}
    if not isinstance(data, dict):
        raise UserError(not_a_mapping, file=path, line=1)
    try:
        return model.model_validate(data), lines
    except ValidationError as exc:
        raise validation_error(exc, path, lines) from None


def _line_for(loc: Sequence[str | int], lines: dict[Loc, int]) -> int | None:
    for end in range(len(loc), -1, -1):
        hit = lines.get(tuple(loc[:end]))
        if hit is not None:
            return hit
    return None


def _field_name(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validation_error(
    exc: ValidationError,
    file: Path,
    lines: dict[Loc, int] | None = None,
    base_line: int | None = None,
    prefix: Loc = (),
) -> UserError:
    """Turn the first pydantic error into one UserError naming file, line, field and expectation."""
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    full = (*prefix, *loc)
    line = base_line if base_line is not None else (_line_for(full, lines) if lines else None)
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "missing":
        msg = "is required but missing"
    elif err["type"] == "extra_forbidden":
        msg = "is not a known field"
    return UserError(msg, file=file, line=line, field=_field_name(full) or None)


def jsonl_models(
    path: Path, model: type[M], what: str, lines: Iterable[bytes] | None = None
) -> Iterator[tuple[int, M]]:
    """Stream a JSONL file (or the given lines of it) as validated models, with their line numbers; the first bad
    line is one UserError naming the file, the line and the field. `what` names one line's content."""
    if lines is None:
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise UserError(f"cannot read the file ({exc.strerror})", file=path) from None
        with handle:
            yield from jsonl_models(path, model, what, handle)
        return
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UserError(f"invalid JSON at column {exc.colno}: {exc.msg}", file=path, line=number) from None
        if not isinstance(obj, dict):
            raise UserError(f"each line must be a JSON object ({what})", file=path, line=number)
        try:
            yield number, model.model_validate(obj)
        except ValidationError as exc:
            raise validation_error(exc, path, base_line=number) from None


def _read_jsonl_cases(path: Path) -> Iterator[tuple[int, Case]]:
    return jsonl_models(path, Case, "one case")


def _located_cases(suite: Suite, lines: dict[Loc, int]) -> Iterator[tuple[Path, int | None, str, Case]]:
    for i, case in enumerate(suite.inline_cases):
        yield suite.path, _line_for(("cases", i, "id"), lines), f"cases[{i}].id", case
    if suite.cases_file is not None:
        for number, case in _read_jsonl_cases(suite.cases_file):
            yield suite.cases_file, number, "id", case


def iter_cases(suite: Suite) -> Iterator[ResolvedCase]:
    """Yield every case of the suite with defaults applied; JSONL cases are streamed line by line."""
    for case in suite.inline_cases:
        yield resolve(case, suite.name, suite.defaults)
    if suite.cases_file is not None:
        for _, case in _read_jsonl_cases(suite.cases_file):
            yield resolve(case, suite.name, suite.defaults)


def load_suite(path: str | Path) -> Suite:
    """Load and validate a suite fully (one streaming pass over JSONL cases) and compute its hash."""
    path = Path(path)
    parsed, lines = load_yaml_model(
        path, SuiteFile, "a suite file must be a YAML mapping with 'suite', 'version' and 'cases'"
    )
    cases_file = None
    if parsed.cases_file is not None:
        cases_file = (path.parent / parsed.cases_file).resolve()
        if not cases_file.is_file():
            raise UserError(
                f"cases file not found: {cases_file}", file=path, line=lines.get(("cases_file",)), field="cases_file"
            )
    suite = Suite(
        path=path,
        name=parsed.suite,
        version=parsed.version,
        description=parsed.description,
        defaults=parsed.defaults,
        inline_cases=parsed.cases,
        cases_file=cases_file,
    )
    seen: dict[str, str] = {}
    digest = hashlib.sha256()
    count = 0
    for file, line, field, case in _located_cases(suite, lines):
        if case.id in seen:
            raise UserError(
                f"duplicate case id '{case.id}' (first at {seen[case.id]})", file=file, line=line, field=field
            )
        seen[case.id] = f"{Path(file).name}:{line}"
        digest.update(orjson.dumps(resolve(case, suite.name, suite.defaults).normalised(), option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
        count += 1
    suite.content_hash = digest.hexdigest()
    suite.case_count = count
    return suite


def discover_suite_files(paths: Sequence[str | Path], empty_ok: bool = False) -> list[Path]:
    """Expand directories into the suite files below them (sorted; judge canary sets and harness.yaml left out);
    files are taken as given. No suite file at all is a UserError unless `empty_ok`."""
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(
                sorted(
                    f
                    for f in p.rglob("*")
                    if f.suffix in SUITE_SUFFIXES and f.name not in NOT_SUITES and not is_canary_file(f)
                )
            )
        elif p.is_file():
            found.append(p)
        else:
            raise UserError("no such file or directory", file=p)
    if not found and not empty_ok:
        raise UserError("no suite files (*.yaml) found", file=", ".join(str(p) for p in paths))
    return found
