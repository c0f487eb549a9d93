"""A stored run as tidy tables (pandas DataFrames), written as CSV or Parquet. Reads the store only.

One observation per row, one variable per column; every table carries the keys
(run_id, response_id, suite, case_id, target, sample), so tables join on response_id:

  responses  one row per response: status, verdict (pass | fail | unscored | error), latency, tokens, cache, the
             response text (and its length in characters) or the error
  scores     one row per response x judged criterion: the score after combining every verdict for it (judge panel
             and judge samples, by the run's aggregate), the logprob-weighted score when known, status
             (scored | unscored | error), the first scoring judge and its rationale
  verdicts   one row per single judge verdict (response x criterion x judge x judge sample), before combining
  checks     one row per response x deterministic check: passed, the IFEval loose outcome (empty for others),
             detail

Column names and types are in `SCHEMA` (pandas dtypes: nullable integers, floats, booleans and strings); an
empty table still has every column. Missing values are NA, written to CSV as an empty field (so an empty text
reads back as NA); `read_table` reads either format back with these dtypes, and keeps a text such as "NA" or
"null" as text. pandas is imported inside the functions: `harness run` never pays
for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.store import Store
from reports.summary import case_rows

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("csv", "parquet")
KEYS = {
    "run_id": "string",
    "response_id": "Int64",
    "suite": "string",
    "case_id": "string",
    "target": "string",
    "sample": "Int64",
}
SCHEMA: dict[str, dict[str, str]] = {
    "responses": {
        **KEYS,
        "status": "string",
        "verdict": "string",
        "threshold": "Int64",
        "latency_ms": "Float64",
        "tokens_in": "Int64",
        "tokens_out": "Int64",
        "from_cache": "boolean",
        "attempts": "Int64",
        "finish_reason": "string",
        "error": "string",
        "text": "string",
        "text_chars": "Int64",
        "tags": "string",  # the case's tags, comma-separated (tags are slugs)
        "created_at": "Float64",  # Unix time
    },
    "scores": {
        **KEYS,
        "criterion": "string",
        "score": "Float64",
        "weighted_score": "Float64",
        "status": "string",
        "reason": "string",
        "judge": "string",
        "verdicts": "Int64",
        "unscored_verdicts": "Int64",
        "rationale": "string",
    },
    "verdicts": {
        **KEYS,
        "criterion": "string",
        "judge": "string",
        "judge_sample": "Int64",
        "score": "Float64",
        "weighted_score": "Float64",
        "status": "string",
        "reason": "string",
        "template": "string",
        "rationale": "string",
    },
    "checks": {
        **KEYS,
        "check": "string",
        "passed": "boolean",
        "loose": "boolean",
        "detail": "string",
    },
}
TABLES = tuple(SCHEMA)


def table_records(store: Store, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """The run's tables as plain records (lists of dicts with SCHEMA's columns), one pass over the store."""
    resolved = str(store.run(run_id)["run_id"])  # a run name resolves to its id
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    for row in case_rows(store, resolved):
        keys = {
            "run_id": resolved,
            "response_id": row["response_id"],
            "suite": row["suite"],
            "case_id": row["case_id"],
            "target": row["target"],
            "sample": row["sample"],
        }
        text = row["text"]
        out["responses"].append(
            keys
            | {
                "status": row["status"],
                "verdict": row["verdict"],
                "threshold": row["threshold"],
                "latency_ms": row["latency_ms"],
                "tokens_in": row["tokens_in"],
                "tokens_out": row["tokens_out"],
                "from_cache": row["from_cache"],
                "attempts": row["attempts"],
                "finish_reason": row["finish_reason"],
                "error": row["error"],
                "text": text,
                "text_chars": None if text is None else len(text),
                "tags": ",".join(row["tags"]) or None,
                "created_at": row["created_at"],
            }
        )
        for criterion, s in row["scores"].items():
            out["scores"].append(
                keys
                | {
                    "criterion": criterion,
                    "score": s["score"],
                    "weighted_score": s["weighted"],
                    "status": s["status"],
                    "reason": s["reason"],
                    "judge": s["judge"],
                    "verdicts": len(s["verdicts"]),
                    "unscored_verdicts": s["unscored_verdicts"],
                    "rationale": s["rationale"],
                }
            )
            for v in s["verdicts"]:
                out["verdicts"].append(
                    keys
                    | {
                        "criterion": criterion,
                        "judge": v["judge"],
                        "judge_sample": v["sample"],
                        "score": v["score"],
                        "weighted_score": v["weighted"],
                        "status": v["status"],
                        "reason": v["reason"],
                        "template": v["template"],
                        "rationale": v["rationale"],
                    }
                )
        for check in row["checks"]:
            out["checks"].append(
                keys
                | {
                    "check": check["check"],
                    "passed": check["passed"],
                    "loose": check.get("loose"),
                    "detail": check.get("detail"),
                }
            )
    return out


def frame(name: str, records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """A table's records as a DataFrame with SCHEMA's columns, in order, and dtypes."""
    import pandas as pd

    schema = SCHEMA[name]
    df = pd.DataFrame.from_records(list(records), columns=list(schema))
    return df.astype(schema)


def tables(store: Store, run_id: str) -> dict[str, pd.DataFrame]:
    """Every table of the run, by name (responses, scores, verdicts, checks)."""
    return {name: frame(name, records) for name, records in table_records(store, run_id).items()}


def write_tables(store: Store, run_id: str, out_dir: Path, fmt: str = "csv") -> list[Path]:
    """Write `<out_dir>/<table>.csv` (UTF-8, a header row, RFC 4180 quoting) or `<out_dir>/<table>.parquet`
    (pyarrow) for every table; returns the paths written, in TABLES order."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r} (one of {', '.join(FORMATS)})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, df in tables(store, run_id).items():
        path = out_dir / f"{name}.{fmt}"
        if fmt == "csv":
            df.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
        else:
            df.to_parquet(path, index=False, engine="pyarrow")
        paths.append(path)
    return paths


def read_table(path: Path) -> pd.DataFrame:
    """A table written by `write_tables`, with SCHEMA's dtypes (the table is named by the file's stem)."""
    import pandas as pd

    path = Path(path)
    schema = SCHEMA[path.stem]
    if path.suffix == ".parquet":
        return pd.read_parquet(path, engine="pyarrow").astype(schema)
    return pd.read_csv(path, dtype=schema, keep_default_na=False, na_values=[""], encoding="utf-8")
