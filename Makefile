# loaxa: `make demo` runs the system locally, `make test` runs the tests.
# Both set up everything they need on a fresh Debian/Ubuntu machine (run as root), idempotently.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# openssl: the TLS tests make a throwaway PKI; tzdata: zoneinfo Asia/Ho_Chi_Minh (not in every minimal image)
APT_PACKAGES := mosquitto mosquitto-clients influxdb gcc make openssl tzdata

.PHONY: help setup system-deps venv test lint demo faults bench clean

help:
	@echo "make demo   - start a local broker, a simulated controller and an agent (Ctrl-C stops)"
	@echo "make test   - install what is needed, lint, run the test suite (real Mosquitto/InfluxDB)"
	@echo "make faults - the long fault-injection suite"
	@echo "make bench  - benchmarks (figures printed and written to bench/results/)"

setup: system-deps venv

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; }

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

lint: venv
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/pytest -q -m "not slow"

faults: setup
	$(BIN)/pytest -q -m slow

bench: setup
	@for b in bench/bench_*.py; do [ -e "$$b" ] && $(BIN)/python $$b || true; done

demo: setup
	$(BIN)/loaxa demo

clean:
	rm -rf $(VENV) build *.egg-info firmware_protocol/c/build var
