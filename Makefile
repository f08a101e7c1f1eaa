# eboxd — everything a fresh Debian machine needs, from two commands: `make run` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVICES := scripts/services

.PHONY: help venv run test lint services-start services-stop clean

help:
	@echo "make run   - the daemon, a worker and the sandbox on embedded SQLite and a local RabbitMQ"
	@echo "make test  - the whole suite on SQLite and PostgreSQL against a real RabbitMQ"
	@echo "make lint  - ruff"

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py daemon/banking/coda/_scan.c \
		plugins/zip/pyproject.toml plugins/exact/pyproject.toml plugins/yuki/pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "needs Python >= 3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv; }
	@# a C compiler and Python's headers build the CODA scanner (daemon/banking/coda/_scan.c)
	@$(PYTHON) -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
		&& command -v cc >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc python3-dev; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]' -e plugins/zip -e plugins/exact -e plugins/yuki
	touch $(STAMP)

run: venv
	scripts/run-local.sh

test: venv
	scripts/test.sh $(ARGS)

lint: venv
	$(BIN)/ruff check .

services-start:
	$(SERVICES)/rabbitmq.sh start
	$(SERVICES)/postgres.sh start

services-stop:
	$(SERVICES)/rabbitmq.sh stop
	$(SERVICES)/postgres.sh stop

clean: services-stop
	rm -rf $(VENV) .services var

# Install (or upgrade) eboxd under systemd from this checkout: /opt/eboxd, /etc/eboxd, the units.
.PHONY: install
install:
	deploy/install.sh
