# Every workflow of the course as a target. `make demo` and `make test` create .venv themselves.
SHELL := /bin/bash
PYTHON_BOOTSTRAP ?= python3
VENV := .venv
# USE_CURRENT_ENV=1 uses the active environment (for example the conda one) instead of .venv.
ifeq ($(USE_CURRENT_ENV),1)
PYTHON := python
ENVIRONMENT :=
else
PYTHON := $(VENV)/bin/python
ENVIRONMENT := $(VENV)/.installed
endif
# nbgrader runs `alembic` by name, so the environment's bin folder goes on PATH.
export PATH := $(abspath $(VENV))/bin:$(PATH)

SAMPLE_CLASS := course/sample_class
DEMO_REPORT := out/demo
# Short limits keep the sample infinite loop cheap: 4 interrupted cells of 10 s each.
DEMO_LIMITS := --cell-timeout 10 --notebook-timeout 120

.PHONY: help venv demo test release sample-class grade feedback lab weights bench-layers bench-grading bench-widgets screenshots clean distclean

help:
	@echo "make demo      create .venv, release the notebooks, grade the sample class, print the score table"
	@echo "make test      create .venv and run the test suite"
	@echo "make lab       start JupyterLab on a copy of the student notebooks (in student_work/); LAB_OPTIONS=... adds options"
	@echo "make release   regenerate course/release/ from course/source/"
	@echo "make sample-class  regenerate the sample submissions after a notebook changed"
	@echo "make grade SUBMISSIONS=DIR REPORT=OUT   grade DIR/<student>/<assignment>/<notebook>.ipynb"
	@echo "make feedback REPORT=OUT                regenerate the feedback pages of a grading run"
	@echo "make weights   retrain the notebooks' small models with solutions/ and rewrite course/source/cnn_rnn/weights/"
	@echo "make bench-layers  time the reference layers against PyTorch (which must be installed) and naive loops, see docs/benchmarks.md"
	@echo "make bench-grading time grading a generated class of STUDENTS (default 50): stock nbgrader, this pipeline, bare nbclient"
	@echo "make screenshots   rerun the browser test and rewrite the README's widget screenshots in docs/img/"
	@echo "make bench-widgets time a feature-map explorer update in JupyterLab and Chromium (needs chromium and playwright)"
	@echo "make clean     remove grading output and caches (keeps .venv and student_work/)"

$(VENV)/.installed: requirements.txt
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(ENVIRONMENT)

release: venv
	$(PYTHON) -m autograder release

sample-class: release
	$(PYTHON) $(SAMPLE_CLASS)/make_sample_class.py

demo: release
	$(PYTHON) -m autograder grade $(SAMPLE_CLASS)/submitted --report $(DEMO_REPORT) $(DEMO_LIMITS)
	$(PYTHON) -m autograder compare $(DEMO_REPORT)/grades.csv $(SAMPLE_CLASS)/expected_scores.csv

test: venv
	$(PYTHON) -m pytest tests

grade: venv
	@if [ -z "$(SUBMISSIONS)" ] || [ -z "$(REPORT)" ]; then \
	  echo "error: set both SUBMISSIONS and REPORT, for example: make grade SUBMISSIONS=path/to/submitted REPORT=out/week"; \
	  exit 2; fi
	$(PYTHON) -m autograder grade "$(SUBMISSIONS)" --report "$(REPORT)"

feedback: venv
	@if [ -z "$(REPORT)" ]; then echo "error: set REPORT to the folder of an earlier grading run, for example: make feedback REPORT=out/week"; exit 2; fi
	$(PYTHON) -m autograder feedback --report "$(REPORT)"

lab: venv
	@mkdir -p student_work
	@# Copy the release (notebooks and their helper package) without overwriting the student's files.
	@for assignment in course/release/*/; do cp -R -n "$$assignment". student_work/; done
	$(PYTHON) -m jupyterlab --notebook-dir=student_work --ip=127.0.0.1 --no-browser $(LAB_OPTIONS)

weights: venv
	$(PYTHON) course/make_weights.py

bench-layers: venv
	$(PYTHON) bench/layers.py

bench-grading: venv
	$(PYTHON) bench/grading.py --students $(or $(STUDENTS),50)

bench-widgets: venv
	$(PYTHON) bench/widgets.py

screenshots: venv
	UPDATE_SCREENSHOTS=1 $(PYTHON) -m pytest tests/test_browser.py

clean:
	rm -rf out course/submitted course/autograded course/feedback course/gradebook.db course/.nbgrader.log .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
