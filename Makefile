# The two quick-start commands: `make demo` and `make test`. Both create the environment first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The suite runs on both cores, one test file per worker at a time (`--dist loadfile`), so that
# a module's service, lab or site build is made once, by one worker. Each worker is its own
# pytest session with its own Temporal dev server and lab. PYTEST_WORKERS= runs it serially.
PYTEST_WORKERS ?= -n 2 --dist loadfile

.PHONY: demo test lint typecheck docs serve bench clean setup

setup: $(STAMP)

# The project is byte-compiled as pip does for the packages it installs: an editable install is
# compiled on first import, and never where PYTHONDONTWRITEBYTECODE is set, which made every
# `runbook` start and site build compile the parser from source (0.2 s).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[lab,site,service,test,bench]'
	$(BIN)/python -m runner.shell_kernel install
	$(BIN)/python -m compileall -q runner plugins
	touch $(STAMP)

# The main job, end to end: start the lab on a free loopback port with a fresh token, run the
# compromised-endpoint runbook unattended (its two approval gates pre-approved on the command
# line, as an operator would), write the post-incident report, stop the lab.
DEMO_RUNBOOK ?= runbooks/compromised-endpoint.md
demo: $(STAMP)
	$(BIN)/runbook check runbooks/
	@set -e; mkdir -p .runbook/lab; \
	port=$$($(BIN)/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	export RUNBOOK_LAB_TOKEN=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(24))'); \
	$(BIN)/runbook lab --reset --port $$port --db .runbook/lab/demo.db & lab=$$!; \
	trap 'kill $$lab 2>/dev/null; wait $$lab 2>/dev/null || true' EXIT; \
	for i in $$(seq 100); do curl -fsS http://127.0.0.1:$$port/health >/dev/null 2>&1 && break; sleep 0.1; done; \
	RUNBOOK_INPUT_API_TOKEN=$$RUNBOOK_LAB_TOKEN $(BIN)/runbook run $(DEMO_RUNBOOK) --yes \
	  -i base_url=http://127.0.0.1:$$port --approve isolate --approve reimage --operator demo; \
	$(BIN)/runbook report last --format html; \
	$(BIN)/runbook verify last

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

serve: $(STAMP)
	$(BIN)/mkdocs serve

# By hand, on a quiet machine; figures go into docs/performance.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_parse.py
	$(BIN)/python benchmarks/bench_route.py
	$(BIN)/python benchmarks/bench_service.py
	$(BIN)/python benchmarks/bench_shell_kernel.py
	$(BIN)/python benchmarks/bench_runner.py
	$(BIN)/python benchmarks/bench_journal.py
	$(BIN)/python benchmarks/bench_site.py

clean:
	rm -rf $(VENV) site .runbook
