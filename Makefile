# Two commands do everything from a fresh clone:  `make book`  and  `make test`.
# Both create the virtual environment, install pinned Python packages and (as root on
# Debian/Ubuntu) the system parts the labs use, then build or test.

VENV    ?= .venv
PY      := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
BOOK_FLAGS ?= -W -n --keep-going
# the interpreter the venv is made from (a new Debian 12 has its own 3.11.2)
PYTHON  ?= python3

.PHONY: setup system book teacher-book test lint lab diagrams bench gc clean fresh-check

setup: $(VENV)/.installed $(VENV)/.launcher system

# labkit is installed editable in compat mode: a plain .pth path entry instead of setuptools'
# import finder, which cost every `labkit` command ~15 ms at start (benchmarks/README.md)
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || { echo "no venv: on Debian/Ubuntu, apt-get install python3-venv"; exit 1; }
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e . --config-settings editable_mode=compat
	bash scripts/link-dot.sh $(VENV)
	touch $@

# pip's `labkit` script starts Python with site and imports re first (~9 ms of every command);
# labkit writes its own launcher over it (python -S, site loaded only when click is needed)
$(VENV)/.launcher: $(VENV)/.installed labkit/cli/fastpath/launcher.py
	$(PY) -m labkit.cli.fastpath.launcher --venv $(VENV)
	touch $@

system:
	bash scripts/setup-system.sh

# scripts/build-book.py runs jupyter-book build and fails while any page's execution has failed,
# incremental rebuilds included (see the script)
book: setup
	$(PY) scripts/build-book.py . $(BOOK_FLAGS)
	@echo "The book is in _build/html/index.html"

# the teacher's edition: the same pages (from the student build's execution cache) plus the answer key
teacher-book: book
	$(PY) -m labkit.practice.teacher .
	$(PY) scripts/build-book.py . --toc teacher/_toc.yml --config teacher/_config.yml --path-output _build/teacher $(BOOK_FLAGS)
	@echo "The teacher's edition is in _build/teacher/_build/html/index.html"

test: book
	$(VENV)/bin/ruff check labkit tests benchmarks
	# Cluster tests converge real processes on a 2-core machine: a test that fails is run once more
	# (the summary line counts reruns, and -rR names each in "rerun test summary info": a test listed there
	# is flaky and gets fixed), so one slow moment does not fail the run, and a real bug still does.
	# After the run, tests/conftest.py fails it if anything labkit made is left on the host.
	# --durations: the log names the 30 slowest tests, so CI time can be watched where it is spent
	$(PY) -m pytest -raR --reruns 1 --reruns-delay 2 --durations=30 tests

lint: setup
	$(VENV)/bin/ruff check labkit tests benchmarks

lab: setup
	$(PY) -m pip install -q --disable-pip-version-check jupyterlab jupytext
	$(VENV)/bin/jupyter lab --notebook-dir=. labs

diagrams: setup
	$(PY) -m labkit.view.diagrams --out images

bench: setup
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

gc: setup
	$(VENV)/bin/labkit gc

# What a new machine does: purge the book's Debian packages, stop its services, clone into a
# mktemp -d folder and run the README's two commands (root only; see scripts/fresh-check.sh)
fresh-check:
	bash scripts/fresh-check.sh

clean:
	rm -rf _build
