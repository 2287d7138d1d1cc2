# carddaemon: the two set-up commands are `make run` and `make test`.
# Both install whatever is missing (Debian packages, a .venv with the project) and are quick
# when nothing is missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.carddaemon-installed
DEBS := pcscd vsmartcard-vpcd libpcsclite-dev swig pcsc-tools fonts-wqy-zenhei postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run demo test lint types proto proto-gen pytest bench debs venv node receipt-png clean systemd

# the daemon on the simulated store, in the foreground until Ctrl-C (it prints its sockets and
# commands to try from another terminal); a store folder of your own: make run RUN_ARGS="--folder DIR"
run: debs venv node
	$(BIN)/carddaemon-demo serve $(RUN_ARGS)

# the scripted story: a technician's look at a card, a member paying, a receipt, the scanner
demo: debs venv
	$(BIN)/carddaemon-demo story

test: debs venv node lint types proto systemd pytest node-test

lint: venv
	$(BIN)/ruff check daemon sim demo proto tests bench
	$(BIN)/ruff format --check daemon sim demo proto tests bench

types: venv
	$(BIN)/mypy

# the gRPC contract: buf lint, no breaking change against main (v1 has landed: field numbers,
# names and types are kept), and the generated Python code must be what proto/ generates
proto: venv node
	npx --no-install buf lint
	npx --no-install buf breaking --against '.git#branch=main'
	$(BIN)/python proto/generate.py --check

# the systemd unit: `systemd-analyze verify` with no warning, `security` exposure <= 1.5
systemd: venv
	systemd/check.sh systemd/carddaemon.service $(BIN)/carddaemon

proto-gen: venv
	$(BIN)/python proto/generate.py

# npm packages for buf and the Node.js POS test client (Node.js and npm from Debian if missing)
node: node_modules/.carddaemon-installed

node_modules/.carddaemon-installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "installing Debian packages: nodejs npm"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# the Node.js POS client (tests/node/) against `carddaemon-demo serve` as a real process, over
# the POS socket; its output is the node test runner's summary
.PHONY: node-test
node-test: venv node
	node --test tests/node/

pytest: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider \
	  --cov=daemon --cov=sim --cov-report=term \
	  $(PYTEST_ARGS)
	$(BIN)/python -m coverage report --fail-under=95 --include='daemon/mifare/*,daemon/readers/apdu.py,daemon/readers/dialects.py,daemon/readers/status.py,daemon/readers/trace.py,daemon/readers/storage.py,daemon/readers/fallback.py'

# every benchmark runs (a missed target exits non-zero but does not stop the others)
bench: debs venv
	@failed=""; for b in bench/*.py; do $(BIN)/python $$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "benchmarks that missed a target or failed:$$failed"; exit 1; fi

# Debian packages: installed only when one is missing.
debs:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,sim]'
	@touch $(STAMP)

receipt-png: debs venv
	$(BIN)/python -m demo.render_sample docs/sample-receipt.png

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .coverage build *.egg-info
