# The two commands of the README's Quickstart, and the steps they are made of.
# Everything runs inside .venv/ at the repository root, created on first use.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check

.DEFAULT_GOAL := help
.PHONY: help serve test lint typecheck pytest bench proto clean

help:  ## List the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python >= 3.11 is required (found: $$($(PYTHON) --version))." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

# One stamp per extra: reinstall when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PIP_INSTALL) -e ".[$*]"
	@touch $@

serve: $(VENV)/.installed-train  ## Set up .venv, build the default model if missing, run the service.
	$(PY) -m training quickstart-model --repository models
	$(PY) -m service --model-repository models

test: $(VENV)/.installed-test lint typecheck pytest  ## Set up .venv and run lint, types and the whole test suite.

lint: $(VENV)/.installed-test  ## ruff: lint and formatting.
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(VENV)/.installed-test  ## mypy (strict on service/ and training/).
	$(PY) -m mypy

pytest: $(VENV)/.installed-test  ## The test suite alone.
	$(PY) -m pytest

bench: $(VENV)/.installed-test  ## Benchmarks (prints Markdown tables; REST needs models/, see make serve).
	$(PY) -m bench.losses
	$(PY) -m training quickstart-model --repository models
	$(PY) -m bench.serving --model-repository models
	$(PY) -m bench.evaluation --model-repository models

proto: $(VENV)/.installed-test  ## Regenerate service/_generated/ from proto/ (commit the result).
	$(PY) scripts/generate_proto.py

clean:  ## Remove the virtual environment and caches.
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
