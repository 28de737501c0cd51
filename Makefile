# Two commands on a fresh machine: `make book` (build the report) and `make test` (run the tests).
# Each creates the virtual environment it needs in .venv the first time.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: book test paper benchmarks clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch comes first and pinned: these builds lie on local disk here (see README)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e ".[book,test]"
	# the kernel that papermill and Jupyter Book execute notebooks with, inside the venv
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (underspec)" >/dev/null
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

paper: $(STAMP)
	$(VENV)/bin/underspec train --paper --dataset mnist-5k --out runs/paper-mnist-5k

book: $(STAMP)
	$(VENV)/bin/jupyter-book build book --all -W -n --keep-going

benchmarks: $(STAMP)
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf book/_build runs/cache
