# Two entry points: `make demo` (main job on bundled defaults) and `make test`.
PYTHON ?= python3
VENV ?= .venv
# CPU build by default so a CPU machine does not pull a multi-GB CUDA build.
# Override e.g. `make test TORCH_SPEC='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124'`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev
DEMO_DIR ?= demo
PY := $(VENV)/bin/python

.PHONY: demo test install lint clean

$(VENV)/.installed-$(EXTRAS): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

demo: install
	$(PY) -m velocitygan.demo --out $(DEMO_DIR)

test: install
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache
