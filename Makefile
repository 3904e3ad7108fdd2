# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEBIAN_PACKAGES := mosquitto prometheus prometheus-alertmanager zstd faketime

.PHONY: run test test-deps lint bench clean dashboards

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: the monitor on its embedded default, replaying the bundled sample stream
## (two days of posts at 600x real time), metrics on http://127.0.0.1:9464/metrics
run: $(STAMP)
	$(BIN)/monitor run --source 'replay:samples/stream.jsonl?speed=600x'

## test-deps: the real brokers the tests start (Debian packages; installed when root)
test-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (install them, or run as root)"; fi; \
	fi

## test: install what the tests need and run the whole suite
test: $(STAMP) test-deps
	$(BIN)/ruff check monitor tests grafana
	$(BIN)/python -m pytest -q -p no:cacheprovider

## dashboards: regenerate grafana/dashboards/*.json from the code in grafana/
## (the tests fail when the checked-in JSON differs: python -m grafana.build --check)
dashboards: $(STAMP)
	$(BIN)/python -m grafana.build

## bench: the full pipeline against the floor on 100,000 synthetic posts (README, Benchmarks)
bench: $(STAMP)
	$(BIN)/monitor bench --posts 100000

lint: $(STAMP)
	$(BIN)/ruff check monitor tests grafana

clean:
	rm -rf $(VENV) archive state .pytest_cache
