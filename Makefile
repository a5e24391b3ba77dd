# The two commands (see README): `make run` and `make test`. Both bootstrap .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: run test test-fuzz test-localstack test-browser web lint typecheck preview bundle bench clean

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	# synapse-s3-storage-provider, the deployed homeserver's media store, which the messaging
	# restore drill runs against the emulator's S3: without its dependencies, because it
	# requires psycopg2 (for its own upload script, not the module Synapse loads; that needs
	# boto3, Twisted, six and Synapse, all installed above), and psycopg2 builds from source
	# with PostgreSQL's headers, which a fresh machine does not have.
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt synapse-s3-storage-provider
	rm -f $(VENV)/.installed-*
	touch $@

# Options for `hub local up`: make run ARGS="--port 5310 --api-port 8310 --state-dir /tmp/hub"
run: $(STAMP)
	$(BIN)/hub local up $(ARGS)

# The suite runs on pytest-xdist workers, one per core and at most 4 (each builds its own
# session servers: moto, the gateways, Synapse, all on free ports), a whole file to a
# worker so module fixtures are built once. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= auto
test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile

# The fuzz tier (tests/app/test_api_fuzz.py, docs/api.md): schemathesis sends every
# operation of /openapi.json, valid and invalid requests, through the local API gateway
# with a real token; a fixed, derandomized budget (about 4 minutes on 2 cores).
test-fuzz: $(STAMP)
	$(BIN)/python -m pytest -q -m fuzz tests/app/test_api_fuzz.py

# The aws_integration tier against LocalStack 4.14 started on this host (needs Python >= 3.13;
# its venv is cached under ~/.cache/hub). With Docker or a running LocalStack instead:
# HUB_LOCALSTACK_ENDPOINT=... or plain `pytest -m aws_integration --aws-backend=localstack`.
test-localstack: $(STAMP)
	$(BIN)/python scripts/localstack_host.py -- \
		$(BIN)/python -m pytest -q -m aws_integration --aws-backend=localstack

# The web client (web/): npm ci from the committed lock file, then Vite builds web/dist,
# the site the program declares (stage key webBundle) and the platforms serve.
web:
	cd web && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent

# The browser tier: Debian's Chromium (and CJK fonts) driven by Playwright, which never
# downloads a browser of its own. Installs what is missing (apt-get as root), builds the
# web client, runs its Node tests, then the walk-throughs (pytest -m browser).
test-browser: $(STAMP)
	@scripts/browser_prerequisites.sh
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,browser]'
	$(MAKE) web
	cd web && npm test --silent
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/python -m pytest -q -m browser tests/browser

# lint-imports: the import contract of app/ (pyproject [tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check infra app hubclient tests scripts benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

preview: $(STAMP)
	$(BIN)/hub preview

bundle: $(STAMP)
	$(BIN)/python scripts/build_lambda_bundle.py

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .hub build web/dist web/node_modules
