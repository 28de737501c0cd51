# Two commands on a fresh machine: `make book` (build the report) and `make test` (run the tests).
# Each creates the virtual environment it needs in .venv the first time.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# How the package's processes share a machine (underspec/training/threads.py): idle OpenMP threads sleep instead
# of spinning, so a training whose cores another process also wants slows down by that share, not by 2-16x.
# And glibc gives freed blocks of 1 MiB and up back to the system at once (its rising threshold otherwise keeps
# the tens of megabytes a wide network's metrics free again, and a chapter's kernel grows past 1 GB:
# benchmarks/RESULTS.md, "Chapter memory"). The book's kernels get both through their kernel spec.
export OMP_WAIT_POLICY := PASSIVE
KERNEL_ENV := --env OMP_WAIT_POLICY PASSIVE --env MALLOC_MMAP_THRESHOLD_ 1048576

.PHONY: book runs test lint lab pytest browser-check paper results benchmarks clean

$(STAMP): pyproject.toml Makefile jupyter/labconfig/default_setting_overrides.json
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch comes first and pinned: these builds lie on local disk here (see README)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[book,test,lab]"
	# the kernel that papermill and Jupyter Book execute notebooks with, inside the venv
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (underspec)" $(KERNEL_ENV) >/dev/null
	# JupyterLab opens the chapters (.md) as notebooks: the project's default-viewer setting, in the venv
	mkdir -p $(VENV)/etc/jupyter/labconfig
	cp jupyter/labconfig/default_setting_overrides.json $(VENV)/etc/jupyter/labconfig/
	# full-size Fashion-MNIST offline: Debian's dataset-fashion-mnist (load_dataset("fashion-mnist") reads it)
	test -d /usr/share/datasets/fashion-mnist || ! command -v apt-get >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) || \
	  echo "note: could not install dataset-fashion-mnist; load_dataset('fashion-mnist') will need the internet"
	touch $(STAMP)

# The book: first its runs, trained in one announced step with progress bars (scripts/book_runs.py; cached in
# runs/cache, so a second build trains nothing), then every chapter executed with the default parameters, no
# warning, the explorers in their static view (the pages drop the live one; see report/widgets.py STATIC_ENV).
# Executed notebooks are cached by their own code only, so that cache is dropped when the package changes.
book: runs
	@code=$$(find underspec book -name '*.py' -not -path '*/_build/*' | sort | xargs cat | sha256sum | cut -c1-16); \
	if [ "$$(cat book/_build/.code-hash 2>/dev/null)" != "$$code" ]; then rm -rf book/_build/.jupyter_cache; fi; \
	UNDERSPEC_STATIC_EXPLORERS=1 $(VENV)/bin/jupyter-book build book --all -W -n --keep-going && \
	  echo $$code > book/_build/.code-hash

runs: $(STAMP)
	$(PY) scripts/book_runs.py --results-dir runs/cache

# The tests: lint, the package and every chapter with tiny parameters, then the full book in a real browser.
test: lint pytest book browser-check

# ruff's pyflakes rules (F) over the package, tests, benchmarks, scripts and every chapter's code cells
lint: $(STAMP)
	$(PY) scripts/lint.py

pytest: $(STAMP)
	$(PY) -m pytest

# Headless Chromium over every built page (Debian's chromium + chromium-driver; installed here if missing).
browser-check: $(STAMP)
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null)
	$(PY) scripts/check_book.py

# JupyterLab on the book: a click on a chapter opens it as a notebook, with the project's kernel
# (as root, in a container or on CI, JupyterLab needs --allow-root; LAB_ARGS: more of its options)
lab: $(STAMP)
	$(VENV)/bin/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) $(LAB_ARGS) book/

# The heavy studies of results/ (each a sweep; resumes where it stopped): see scripts/results.py
results: $(STAMP)
	$(PY) scripts/results.py

paper: $(STAMP)
	$(VENV)/bin/underspec train --paper --dataset mnist-5k --out runs/paper-mnist-5k

benchmarks: $(STAMP)
	cd benchmarks && ../$(PY) train_speed.py && ../$(PY) paper_grid.py && ../$(PY) metrics_speed.py

clean:
	rm -rf book/_build runs/cache
