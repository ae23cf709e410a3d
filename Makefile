# `make run` starts the whole system (embedded: SQLite, one process); `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run` is for development: DEBUG on (simulators, GraphiQL) unless DEBUG=0 is given.
DEBUG ?= 1

.PHONY: run test install migrate lint schema messages clean bench graphiql-assets react-portal

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

# Seeds the demo operator once (with DEBUG or SIMULATORS_ENABLED on), prints its login and the URLs,
# then serves everything from one process: API, portal, simulators and background jobs.
run: migrate
	DEBUG=$(DEBUG) PORT=$(PORT) $(BIN)/python manage.py seed_demo --if-simulators
	@# With DEBUG off static files are served hashed, from what collectstatic gathered.
	if [ "$(DEBUG)" != "1" ]; then DEBUG=0 $(BIN)/python manage.py collectstatic --noinput -v0; fi
	@echo "Starting on http://$(HOST):$(PORT)/ (start there: links to everything; Ctrl-C stops)"
	DEBUG=$(DEBUG) PORT=$(PORT) $(BIN)/daphne -b $(HOST) -p $(PORT) project.asgi:application

test: install
	mkdir -p var
	$(BIN)/pytest $(PYTEST_ARGS)

# Every benchmark of tests/benchmarks/ (a few minutes on 2 cores; needs PostgreSQL and Redis), tables on stdout.
bench: install
	$(BIN)/python tests/benchmarks/run_all.py $(BENCH_ARGS)

lint: install
	$(BIN)/ruff check .

schema: install
	$(BIN)/python manage.py export_schema project.schema:schema --path schema.graphql

# Swahili catalogues of the apps that have a locale/ folder: extract the marked strings into their
# .po files, translate what is new there, then run it again to compile the .mo files (committed:
# machines without gettext's tools still serve Swahili). Needs GNU gettext (apt install gettext).
LOCALE_APPS := $(patsubst %/locale,%,$(wildcard */locale))
messages: install
	for app in $(LOCALE_APPS); do \
		(cd $$app && ../$(BIN)/python ../manage.py makemessages -l sw --add-location file --no-obsolete \
			&& ../$(BIN)/python ../manage.py compilemessages -l sw) || exit 1; \
	done

# Refresh the vendored GraphiQL build (project/static/graphiql/) from the npm registry; needs npm.
graphiql-assets:
	bash scripts/vendor_graphiql.sh

# The reference React portal's production build (node >= 20.19 and npm), for tests/e2e/test_react_portal.py.
react-portal:
	cd examples/react-portal && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) var examples/react-portal/node_modules examples/react-portal/dist
