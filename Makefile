# make run   - start one server on the embedded defaults (installs what it needs first)
# make test  - the whole suite (installs what it needs first)
# make lint  - ruff and mypy over app, tests and bench (settings in pyproject.toml)
# make bench - the benchmarks under bench/

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages run test lint bench clean

setup: system-packages $(VENV)/.installed node_modules/.installed

# redis-server (the tests start their own), node/npm (the JS Socket.IO client tests),
# chromium with a font (the browser tests drive Debian's chromium through playwright-core) and
# nginx (the topology test starts its own master on deploy/nginx.conf; the package's service
# is not needed). nginx is looked for at its Debian path: /usr/sbin is not on every user's PATH.
system-packages:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	[ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	[ -d /usr/share/fonts/truetype/dejavu ] || missing="$$missing fonts-dejavu-core"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	$(BIN)/python -m app

test: setup
	$(BIN)/python -m pytest

# Both run, so that one pass shows every finding; it fails if either found something.
lint: setup
	@status=0; $(BIN)/ruff check . || status=1; $(BIN)/mypy || status=1; exit $$status

bench: setup
	$(BIN)/python bench/completions.py

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis .mypy_cache .ruff_cache
