"""The lm-evaluation-harness bridge behind `harness bench`: standard benchmarks (and local tasks) run by lm-eval
against a harness target's OpenAI-compatible endpoint, their metrics stored beside the judge scores.

include.py  makes a task folder's relative data paths absolute (lm-eval reads them against the working directory)
endpoint.py a harness target spec -> lm-eval model type and arguments (no secret recorded)
runner.py   the offline environment, the task checks, simple_evaluate and the metric rows

lm_eval is imported only by runner.py, and only when a benchmark runs: `harness run` never pays for it."""
