# rawlab: two set-up commands, `make demo` and `make test`; both create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?= -n 2 -q

.PHONY: demo test tools bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || { $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	  || { echo "rawlab needs Python 3.11 or newer; $(PYTHON) is older (set PYTHON=...)"; exit 1; }; \
	  $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@touch $(STAMP)

# Develop the built-in sample: demo/sample.dng -> demo/sample.jpg
demo: $(STAMP)
	$(PY) -m rawlab sample -o demo/sample.dng
	$(PY) -m rawlab develop demo/sample.dng -o demo
	@echo "demo: wrote demo/sample.jpg"

# Debian tools the tests use as validators and peers (installed when missing and root).
tools:
	@missing=""; \
	command -v exiftool >/dev/null || missing="$$missing libimage-exiftool-perl"; \
	command -v darktable-cli >/dev/null || missing="$$missing darktable"; \
	command -v rawtherapee-cli >/dev/null || missing="$$missing rawtherapee"; \
	command -v dcraw >/dev/null || missing="$$missing dcraw"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; } \
	      || { echo "make tools: apt-get could not install$$missing"; exit 1; }; \
	  else echo "warning: missing$$missing (run as root or install them; tests needing them will fail)"; fi; \
	fi

test: $(STAMP) tools
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench_develop.py

clean:
	rm -rf demo .pytest_cache build *.egg-info
