# raycheck: `make test` (the project's own tests), `make sandbox` (the suite against a local
# Ray head, DNS server and the seed scenario) and `make bench` (benchmarks/results.json and
# docs/BENCHMARKS.md; BENCH_ARGS="--runs 9" for more runs). All create .venv/ from the pinned
# lock when it is missing or stale.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: test sandbox venv bench clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements.lock
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest tests suites/capacity/test_properties.py $(PYTEST_ARGS)

sandbox: $(STAMP)
	$(VENV)/bin/python -m raycheck.sandbox -- $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) reports/*.json reports/*.md reports/*.xml
