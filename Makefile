# Two commands do everything on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: demo test lint synth deploy destroy bench clean

$(STAMP): requirements.txt requirements-dev.txt functions/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## Full local rehearsal of a fleet patching run (no AWS account, no Docker).
demo: $(STAMP)
	$(VENV)/bin/autopatch rehearse scenarios/demo.yaml --approve auto

## ruff, mypy, then the unit, integration, infra and e2e tests.
test: $(STAMP) lint
	$(VENV)/bin/pytest -n 2 --dist loadfile tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

synth: $(STAMP)
	$(PY) app.py

deploy: $(STAMP)
	npx --yes aws-cdk@2 deploy --app "$(PY) app.py" --require-approval broadening

destroy: $(STAMP)
	npx --yes aws-cdk@2 destroy --app "$(PY) app.py"

bench: $(STAMP)
	$(PY) bench/watcher.py
	$(PY) bench/drain.py

clean:
	rm -rf $(VENV) cdk.out build .pytest_cache .mypy_cache .ruff_cache
