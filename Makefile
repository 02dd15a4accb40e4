# The lguest Drivers, executable: set up, build, test and run the book.
#
#   make book      venv + vendored assets, then build the book (prints where it is)
#   make test      the same set-up plus chromium and tshark, then every test (build -W, pytest, nbval)
#   make lab       JupyterLab on book/
#   make outputs   re-execute the chapters in place, storing their outputs (NB=FILE: just one)
#   make bench     the benchmarks (one JSON line per figure)
#   make fuzz      the whole-machine fuzzer: N=50000 sequences, SEED=S to repeat a run, JOBS=2 for both cores
#   make student   the student edition: chapters without solutions, and its book (_build/student)
#   make grade SUBMISSIONS=DIR SECRET=S   grade DIR/<student id>/*.ipynb into _build/grades.csv
#   make clean     remove _build/   (make distclean also removes .venv and the vendored assets)
#
# Each recipe runs as one bash script (.ONESHELL) with -eu -o pipefail, so any failing
# command fails the target.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.ONESHELL:
.DELETE_ON_ERROR:
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# Third-party browser assets: fetched with `npm pack` into an ignored cache, and only the files
# the pages load are copied into the ignored _static_vendor/ (html_static_path in _config.yml).
HTML_MANAGER_VERSION := 1.0.15
MATHJAX_VERSION := 3.2.2
CACHE := .vendor_cache
VENDOR := _static_vendor
HTML_MANAGER_TGZ := $(CACHE)/jupyter-widgets-html-manager-$(HTML_MANAGER_VERSION).tgz
MATHJAX_TGZ := $(CACHE)/mathjax-$(MATHJAX_VERSION).tgz
VENDORED := $(VENDOR)/VERSIONS.txt

CHROMIUM := /usr/bin/chromium
TSHARK := /usr/bin/tshark
HTML := _build/html
TIMINGS := _build/timings.txt
LAB_PORT ?= 8888

# Root needs no sudo (and JupyterLab needs --allow-root); anyone else uses sudo for apt-get.
ifeq ($(shell id -u),0)
SUDO :=
ALLOW_ROOT := --allow-root
else
SUDO := sudo
ALLOW_ROOT :=
endif

# The venv's tools first; the venv's python3 kernelspec before any user-level one.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export JUPYTER_PREFER_ENV_PATH := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export DEBIAN_FRONTEND := noninteractive

# $(call took,STAGE): print and record the seconds since $$t0 (set at the recipe's start).
define took
t1=$$(date +%s.%N); secs=$$(awk -v a="$$t0" -v b="$$t1" 'BEGIN { printf "%.1f", b - a }')
echo "==> [time] $(1): $${secs}s"
mkdir -p _build && echo "$(1): $${secs}s" >> $(TIMINGS)
endef

# $(call apt_package,NAME,PROGRAM): apt-get install NAME unless PROGRAM is already there.
define apt_package
if [ -x $(2) ]; then
  echo "==> $(1): $(2) present"
else
  t0=$$(date +%s.%N)
  echo "==> $(1): apt-get install -y $(1)"
  $(SUDO) apt-get update -q
  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(1)
  $(call took,$(1))
fi
endef

.PHONY: help book test lab outputs bench fuzz student grade clean distclean setup vendor chromium tshark npm

help:
	@sed -n '2,12p' Makefile | sed 's/^# \{0,1\}//'

# ---------------------------------------------------------------------------------------------
# Set-up: the venv (re-installed only when requirements.txt or pyproject.toml change)

$(INSTALLED): requirements.txt pyproject.toml
	@t0=$$(date +%s.%N)
	if [ ! -x $(BIN)/python ]; then
	  echo "==> install: creating $(VENV) with $(PYTHON)"
	  $(PYTHON) -m venv $(VENV)
	fi
	echo "==> install: pip install -r requirements.txt"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@
	$(call took,install)

# ---------------------------------------------------------------------------------------------
# Vendored assets: @jupyter-widgets/html-manager (widgets) and MathJax (math), served locally

npm:
	@$(call apt_package,npm,$$(command -v npm || echo /usr/bin/npm))

$(HTML_MANAGER_TGZ) $(MATHJAX_TGZ) &: | npm
	@t0=$$(date +%s.%N)
	mkdir -p $(CACHE)
	echo "==> vendor: npm pack @jupyter-widgets/html-manager@$(HTML_MANAGER_VERSION) mathjax@$(MATHJAX_VERSION)"
	(cd $(CACHE) && npm pack --loglevel=error \
	  @jupyter-widgets/html-manager@$(HTML_MANAGER_VERSION) mathjax@$(MATHJAX_VERSION) >/dev/null)
	test -s $(HTML_MANAGER_TGZ) && test -s $(MATHJAX_TGZ)
	$(call took,npm pack)

$(VENDORED): $(HTML_MANAGER_TGZ) $(MATHJAX_TGZ) Makefile
	@echo "==> vendor: copying widgets/embed.js and MathJax into $(VENDOR)/"
	rm -rf $(VENDOR) $(CACHE)/unpacked
	mkdir -p $(CACHE)/unpacked/html-manager $(CACHE)/unpacked/mathjax
	tar -xzf $(HTML_MANAGER_TGZ) -C $(CACHE)/unpacked/html-manager
	tar -xzf $(MATHJAX_TGZ) -C $(CACHE)/unpacked/mathjax
	hm=$(CACHE)/unpacked/html-manager/package
	mj=$(CACHE)/unpacked/mathjax/package
	# widgets: the self-contained embed.js (no require.js) and the font files its CSS names,
	# found next to the script at run time
	mkdir -p $(VENDOR)/widgets
	cp $$hm/dist/embed.js $$hm/dist/embed.js.LICENSE.txt $(VENDOR)/widgets/
	cp $$hm/dist/*.woff $$hm/dist/*.woff2 $$hm/dist/*.ttf $$hm/dist/*.eot $$hm/dist/*.svg $(VENDOR)/widgets/
	# MathJax: the combined component, its CHTML fonts, and the TeX extensions it autoloads
	# (\color, \cancel, \boldsymbol, ...), all resolved relative to the script's own folder
	mkdir -p $(VENDOR)/mathjax/output/chtml/fonts $(VENDOR)/mathjax/input/tex
	cp $$mj/es5/tex-mml-chtml.js $$mj/LICENSE $(VENDOR)/mathjax/
	cp -r $$mj/es5/output/chtml/fonts/woff-v2 $(VENDOR)/mathjax/output/chtml/fonts/
	cp -r $$mj/es5/input/tex/extensions $(VENDOR)/mathjax/input/tex/
	rm -rf $(CACHE)/unpacked
	printf '%s\n' "Fetched by the Makefile with npm pack; not committed." \
	  "@jupyter-widgets/html-manager $(HTML_MANAGER_VERSION)" "mathjax $(MATHJAX_VERSION)" > $@

vendor: $(VENDORED)

setup: $(INSTALLED) $(VENDORED)

# ---------------------------------------------------------------------------------------------
# Debian packages the tests need: chromium for the browser tests (Playwright never downloads a
# browser here) and tshark, which decodes the pcap captures of the network tests.

chromium:
	@$(call apt_package,chromium,$(CHROMIUM))

tshark:
	@$(call apt_package,tshark,$(TSHARK))

# ---------------------------------------------------------------------------------------------
# The book

# The build runs every chapter afresh. Its kernels report an error as the stored outputs do,
# by its last line alone (IPython's Minimal mode, from a profile made here): a traceback would
# show the package's source, wider than the book's column, and this machine's paths.
BUILD_IPYTHONDIR := _build/ipython

book: setup
	@t0=$$(date +%s.%N)
	mkdir -p $(BUILD_IPYTHONDIR)/profile_default
	echo 'c.InteractiveShell.xmode = "Minimal"' > $(BUILD_IPYTHONDIR)/profile_default/ipython_kernel_config.py
	echo "==> build: jupyter-book build -W --keep-going --all ."
	IPYTHONDIR=$(CURDIR)/$(BUILD_IPYTHONDIR) $(BIN)/jupyter-book build -W --keep-going --all .
	$(call took,build)
	echo "==> The book is at $(HTML)/index.html"

# Order: set-up and chromium, then the book build (with -W: a warning or a failing cell fails
# it), then ONE pytest run over tests/ (unit, property, notebook checks, and the browser test,
# which loads the _build/html that was just built) and book/ (strict nbval).
test:
	@rm -f $(TIMINGS)
	t_all=$$(date +%s.%N)
	$(MAKE) --no-print-directory chromium tshark book
	t0=$$(date +%s.%N)
	echo "==> test: pytest --nbval --nbval-current-env tests book"
	rc=0
	$(BIN)/python -m pytest --nbval --nbval-current-env -ra --durations=10 tests book || rc=$$?
	$(call took,pytest)
	t0=$$t_all
	$(call took,total)
	echo "==> timings:"; sed 's/^/      /' $(TIMINGS)
	if [ $$rc -eq 5 ]; then
	  echo "==> FAILED: pytest ran no tests (exit status 5: nothing collected, or all deselected)." >&2
	  exit 1
	fi
	if [ $$rc -ne 0 ]; then echo "==> FAILED: pytest exited with status $$rc" >&2; fi
	exit $$rc

# ---------------------------------------------------------------------------------------------
# Working on the book

lab: $(INSTALLED)
	@# JupyterLab asks before starting a kernel for a notebook it does not trust
	$(BIN)/jupyter trust book/*.ipynb >/dev/null
	echo "==> JupyterLab on book/ at http://127.0.0.1:$(LAB_PORT)/lab (the token is printed below; Ctrl-C stops it)"
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --port=$(LAB_PORT) \
	  --ServerApp.root_dir=book $(ALLOW_ROOT)

define TIDY_OUTPUTS
import sys, nbformat
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                out.traceback = [f"{out.ename}: {out.evalue}"]
    nbformat.write(nb, path)
endef
export TIDY_OUTPUTS

# Runs each chapter top to bottom in a fresh python3 kernel from the venv, in book/ as the
# working directory, and stores the outputs (and widget state) in the notebook itself, without
# timestamps. NB=book/d200_io.ipynb re-runs just that chapter.
outputs: $(INSTALLED)
	@t0=$$(date +%s.%N)
	if [ -n "$(NB)" ]; then nbs=($(NB)); else
	  mapfile -t nbs < <(find book -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort)
	fi
	echo "==> outputs: executing $${#nbs[@]} notebook(s) in place"
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.kernel_name=python3 --ExecutePreprocessor.timeout=120 \
	  --ExecutePreprocessor.record_timing=False "$${nbs[@]}"
	# Drop per-cell timestamps, so a re-run diffs only real changes; and cut stored tracebacks
	# to their last line, which would otherwise record this machine's file paths (nbval
	# compares the exception's name and message, never the traceback).
	$(BIN)/python -c "$$TIDY_OUTPUTS" "$${nbs[@]}"
	$(call took,outputs)

bench: $(INSTALLED)
	@$(BIN)/python bench/run.py

# tests/fuzz_machine.py, not derandomized: N sequences (default 50000) seeded by SEED (default:
# the clock, printed so the run can be repeated), in JOBS processes. It prints sequences, steps
# and seconds at the end, and fails on the first broken invariant, showing the shrunk sequence.
fuzz: $(INSTALLED)
	@$(BIN)/python bench/fuzz.py -n "$(or $(N),50000)" --jobs "$(or $(JOBS),1)" $(if $(SEED),--seed "$(SEED)")

# The classroom (book/teachers.md): nbgrader makes the student edition and grades submissions.
student: setup
	@t0=$$(date +%s.%N)
	$(BIN)/python -m lguest.classroom student
	$(call took,student)

grade: $(INSTALLED)
	@if [ -z "$(SUBMISSIONS)" ] || [ -z "$(SECRET)" ]; then
	  echo "usage: make grade SUBMISSIONS=DIR SECRET=COURSE_SECRET [OUT=FILE.csv] [TIMEOUT=SECONDS]" >&2; exit 2
	fi
	$(BIN)/python -m lguest.classroom grade "$(SUBMISSIONS)" --secret "$(SECRET)" \
	  --out "$(or $(OUT),_build/grades.csv)" --timeout "$(or $(TIMEOUT),60)"

clean:
	@rm -rf _build

distclean: clean
	@rm -rf $(VENV) $(VENDOR) $(CACHE)
