# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint setup clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev,tensorboard,eval,physics,app,rl,text]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/hfmat demo

# The app's browser test drives Debian's Chromium: installed here when missing and we are root.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium; \
	else echo "note: $(CHROMIUM) is missing and this is not root: the browser test will be skipped (apt-get install chromium)"; fi

test: $(STAMP) $(CHROMIUM)
	OMP_NUM_THREADS=2 $(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests training benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
