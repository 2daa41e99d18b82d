# The two commands of the README: `make demo` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: all venv debian-deps lint format typecheck test demo screenshots dashboards rules config-docs bench soak clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

debian-deps:
	./scripts/ensure-debian-packages.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -q -r exporter

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: venv
	$(BIN)/mypy

test: venv debian-deps lint typecheck
	$(BIN)/pytest

dashboards: venv
	$(BIN)/python -m dashboards.generate

# The JSON Schemas, docs/configuration.md's reference and the chart's config schema, from the models.
# `make config-docs CHECK=1` writes nothing and fails naming each file that drifted. GNU make takes
# `make config-docs --check` for its own --check-symlink-times (-L, which nothing here needs): that checks too.
CONFIG_DOCS_CHECK = $(if $(CHECK)$(findstring L,$(filter-out -%,$(firstword $(MAKEFLAGS)))),--check)
config-docs: venv
	$(BIN)/python scripts/config_docs.py $(CONFIG_DOCS_CHECK)

rules: venv
	$(BIN)/python -m alerts.rules
	$(BIN)/python -m alerts.cutover_cases
	promtool check rules alerts/recording_rules.yaml alerts/prometheus_alerts.yaml
	promtool test rules $(wildcard alerts/tests/*_test.yaml)

demo: venv
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

# The README's picture of the status page, from the demo's data (needs Debian's chromium).
screenshots: venv
	$(BIN)/python scripts/screenshots.py docs/images/status.png

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache *.egg-info

bench: venv
	$(BIN)/python -m benchmarks.bench --write docs/performance.md
	$(BIN)/python -m benchmarks.startup --write docs/performance.md
	$(BIN)/python -m benchmarks.statuspage --write docs/performance.md
	$(BIN)/python -m benchmarks.sharding --write docs/performance.md
	$(BIN)/python -m benchmarks.api_cost --write docs/performance.md

soak: venv
	$(BIN)/python -m benchmarks.soak --write docs/reliability.md
