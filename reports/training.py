"""Training logs of fine-tunes (`training_log.json`, written beside a LoRA adapter by harness/smoke/train_lora.py),
attached to a run report with `harness report --training-log TARGET=PATH`: loss per step, drawn as curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from harness.errors import UserError

KEPT = ("steps", "validation", "settings", "train_examples", "val_examples", "epochs", "seconds", "base_model")


def read_training_log(path: Path) -> dict[str, Any]:
    """The log's figures (no paths beyond the base model's); one UserError naming the file when it is not a log.
    A folder means its training_log.json."""
    if path.is_dir():
        path = path / "training_log.json"
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise UserError(f"cannot read the training log ({exc.strerror})", file=path) from None
    except orjson.JSONDecodeError as exc:
        raise UserError(f"the training log is not JSON ({exc})", file=path) from None
    if not isinstance(data, dict):
        raise UserError("the training log is not a JSON object", file=path)
    for key, field in (("steps", "train_loss"), ("validation", "val_loss")):
        rows = data.get(key)
        if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("step"), int) and isinstance(r.get(field), int | float)
            for r in rows
        ):
            raise UserError(f"expected a list of {{step, {field}}} objects", file=path, field=key)
    return {k: data[k] for k in KEPT if k in data}


def loss_charts(training: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One line chart per fine-tune: training loss per step and validation loss at its evaluation steps."""
    charts = []
    for n, (target, log) in enumerate(sorted(training.items()), start=1):
        traces = [
            {
                "type": "scatter",
                "mode": "lines",
                "name": "training loss",
                "x": [r["step"] for r in log["steps"]],
                "y": [r["train_loss"] for r in log["steps"]],
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "validation loss (held out)",
                "x": [r["step"] for r in log["validation"]],
                "y": [r["val_loss"] for r in log["validation"]],
            },
        ]
        layout = {
            "title": {"text": f"{target}: fine-tune loss per step"},
            "xaxis": {"title": {"text": "step"}},
            "yaxis": {"title": {"text": "loss (mean token cross-entropy)"}},
        }
        charts.append({"id": f"chart-loss-{n}", "criterion": None, "traces": traces, "layout": layout})
    return charts
