# raycheck: `make test` (the project's own tests), `make sandbox` (the suite against a local
# Ray head, DNS server and the seed scenario) and `make bench` (benchmarks/results.json and
# docs/BENCHMARKS.md; BENCH_ARGS="--runs 9" for more runs). All create .venv/ from the pinned
# lock when it is missing or stale, with this checkout installed editable into it: the
# `raycheck` command and the pytest plugin's entry point.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# Two workers, a test file each at a time: most tests wait on a real Ray head, DNS server or API
# stand-in, so two keep both cores busy (17 min serial, under 12 in two). XDIST= runs serially.
XDIST ?= -n 2 --dist loadfile
BENCH_ARGS ?=

.PHONY: test sandbox venv bench wheel clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q -r requirements.lock
	$(VENV)/bin/python -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/python -m pytest tests suites/capacity/test_properties.py --hypothesis-profile=ci $(XDIST) $(PYTEST_ARGS)

sandbox: $(STAMP)
	$(VENV)/bin/raycheck sandbox -- $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)

wheel: $(STAMP)
	rm -rf build
	$(VENV)/bin/python -m pip wheel --disable-pip-version-check -q --no-deps --no-build-isolation -w dist .

clean:
	rm -rf $(VENV) dist build *.egg-info reports/*.json reports/*.md reports/*.html reports/*.xml reports/*.prom
