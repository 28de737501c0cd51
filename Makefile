# Two commands on a fresh machine: `make book` (build the report) and `make test` (run the tests).
# Each creates the virtual environment it needs in .venv the first time.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: book test lint lab pytest browser-check paper results benchmarks clean

$(STAMP): pyproject.toml Makefile jupyter/labconfig/default_setting_overrides.json
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch comes first and pinned: these builds lie on local disk here (see README)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[book,test,lab]"
	# the kernel that papermill and Jupyter Book execute notebooks with, inside the venv
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (underspec)" >/dev/null
	# JupyterLab opens the chapters (.md) as notebooks: the project's default-viewer setting, in the venv
	mkdir -p $(VENV)/etc/jupyter/labconfig
	cp jupyter/labconfig/default_setting_overrides.json $(VENV)/etc/jupyter/labconfig/
	# full-size Fashion-MNIST offline: Debian's dataset-fashion-mnist (load_dataset("fashion-mnist") reads it)
	test -d /usr/share/datasets/fashion-mnist || ! command -v apt-get >/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) || \
	  echo "note: could not install dataset-fashion-mnist; load_dataset('fashion-mnist') will need the internet"
	touch $(STAMP)

# The book: every chapter executed with the default parameters (the paper's grid on mnist-5k), no warning.
# Executed notebooks are cached by their own code only, so the cache is dropped when the package changes.
book: $(STAMP)
	@code=$$(find underspec book -name '*.py' -not -path '*/_build/*' | sort | xargs cat | sha256sum | cut -c1-16); \
	if [ "$$(cat book/_build/.code-hash 2>/dev/null)" != "$$code" ]; then rm -rf book/_build/.jupyter_cache; fi; \
	$(VENV)/bin/jupyter-book build book --all -W -n --keep-going || { \
	  echo "book build failed; building once more (a lost kernel reply, papermill issue 711, is the usual cause)"; \
	  $(VENV)/bin/jupyter-book build book --all -W -n --keep-going; } && echo $$code > book/_build/.code-hash

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
lab: $(STAMP)
	$(VENV)/bin/jupyter lab book/

# The heavy studies of results/ (each a sweep; resumes where it stopped): see scripts/results.py
results: $(STAMP)
	$(PY) scripts/results.py

paper: $(STAMP)
	$(VENV)/bin/underspec train --paper --dataset mnist-5k --out runs/paper-mnist-5k

benchmarks: $(STAMP)
	cd benchmarks && ../$(PY) train_speed.py && ../$(PY) paper_grid.py && ../$(PY) metrics_speed.py

clean:
	rm -rf book/_build runs/cache
