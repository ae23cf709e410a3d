# `make run` starts the whole system (embedded: SQLite, one process); `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install migrate lint schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

migrate: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput

run: migrate
	@echo "GraphiQL: http://$(HOST):$(PORT)/graphql/   admin: http://$(HOST):$(PORT)/admin/"
	$(BIN)/daphne -b $(HOST) -p $(PORT) project.asgi:application

test: install
	mkdir -p var
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

schema: install
	$(BIN)/python manage.py export_schema project.schema:schema --path schema.graphql

clean:
	rm -rf $(VENV) var
