# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make book   build the HTML book into _build/html (creates .venv first)
#   make test   lint, library tests, pair sync check, prose checks, nbval (strict),
#               warnings-as-errors build, glued numbers, every page in headless Chromium
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHAPTERS := $(wildcard book/*.md)
# Chapters run on the CPU path with one thread: the stored outputs are those of that path,
# and small-tensor loops slow down many times when OpenMP threads compete for busy cores.
# TQDM_DISABLE=1 keeps training progress bars (shown when a chapter runs interactively)
# out of the stored outputs, so that nbval compares every text output.
# PORTABLE_NUMERICS pins the numerical libraries' code paths, so that the stored outputs
# reproduce bit for bit on any x86-64 processor with AVX2, Intel or AMD: PyTorch's kernels
# at AVX2, MKL's cross-vendor branch for its matrix products, OpenBLAS's Haswell kernels,
# NumPy's SIMD at x86-64-v3. MKL's vector math (exp, log, sqrt of whole tensors) ignores
# MKL_CBWR on AMD, so the categorical VAE's trained models reproduce only where its
# fingerprint matches. The chapter *Reproducibility* explains each setting, checks that
# they are in effect and prints that fingerprint.
PORTABLE_NUMERICS := ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=COMPATIBLE OPENBLAS_CORETYPE=Haswell \
	NPY_ENABLE_CPU_FEATURES=X86_V3 ONEDNN_MAX_CPU_ISA=AVX2
CHAPTER_ENV := GUMBEL_DEVICE=cpu OMP_NUM_THREADS=1 TQDM_DISABLE=1 $(PORTABLE_NUMERICS)

.PHONY: venv book test lint unit pairs prose glued nbval execute bench bench-vocab bench-smoke clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)

## The book, built from the executed notebooks (execution is off in _config.yml).
book: $(STAMP)
	$(BIN)/jupyter-book build . --builder html -n -W --keep-going

## Everything CI checks, in order: the same build as `make book`, then every page of it
## opened in a browser.
test: lint unit pairs prose nbval book glued browser

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check gumbel_lib tests benchmarks
	$(BIN)/python -m mypy gumbel_lib

unit: $(STAMP)
	$(BIN)/python -m pytest tests gumbel_lib --doctest-modules -q -p no:cacheprovider

## Each book/<slug>.md must be what jupytext writes from book/<slug>.ipynb, and every
## code cell of every notebook must have been executed, in order, without error. Every
## chapter's first code cell is the launch cell (tests/launch_cell.py).
pairs: $(STAMP)
	$(BIN)/python tests/check_pairs.py book
	$(BIN)/python tests/launch_cell.py --check book

## No hand-typed result in the prose: every decimal number is glued from the cell that
## computed it, or on the chapter's short allow-list (tests/check_prose_numbers.py).
## Every gumbel_lib function a chapter's code uses is linked to its API entry where the
## prose first names it (tests/check_api_links.py). Every Summary bullet names the theorem,
## section or test that backs it: the claim register (tests/check_summary_claims.py).
prose: $(STAMP)
	$(BIN)/python tests/check_prose_numbers.py book
	$(BIN)/python tests/check_api_links.py book
	$(BIN)/python tests/check_summary_claims.py book

## After the build: every glued number appears, formatted, in its built page.
glued: $(STAMP)
	$(BIN)/python tests/check_prose_numbers.py book --html _build/html

## nbval in strict mode: re-run every chapter and compare each text output. Introduction is
## the exception: `make unit` runs it, under nbval, in a fresh environment without the
## repository on its path (tests/test_launch.py), which is its one execution here.
nbval: $(STAMP)
	$(CHAPTER_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider --nbval --nbval-current-env \
		--nbval-cell-timeout=600 --nbval-sanitize-with tests/nbval_sanitize.cfg \
		$(filter-out book/intro.ipynb,$(wildcard book/*.ipynb))

## Every page of _build/html in headless Chromium (the system package, /usr/bin/chromium),
## served on 127.0.0.1: fails on console errors, failed or outside requests, images not
## loaded, broken links or anchors, untypeset math, cut-off tables. Screenshots in
## _build/screenshots. Run `make book` first (`make test` does).
.PHONY: browser chromium
browser: $(STAMP) chromium
	$(BIN)/python tests/browser_check.py _build/html --screenshots _build/screenshots

## Debian's Chromium, installed with apt-get (as root, or through sudo) when it is missing.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
		export DEBIAN_FRONTEND=noninteractive; \
		$$sudo apt-get update -qq && \
		$$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

## Refresh the stored outputs after editing chapters: `make execute` (all) or
## `make execute CHAPTERS=book/location-shift.md` (one).
execute: $(STAMP)
	for md in $(CHAPTERS); do \
		$(CHAPTER_ENV) $(BIN)/jupytext --to ipynb --execute "$$md" || exit 1; \
		$(BIN)/python tests/merge_streams.py "$${md%.md}.ipynb" || exit 1; \
		$(BIN)/jupytext --to md:myst "$${md%.md}.ipynb" -o "$$md" || exit 1; \
	done

## Benchmarks (never part of the tests' pass/fail): full runs write benchmarks/results/.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.numerics
	$(BIN)/python -m benchmarks.tokens
	$(BIN)/python -m benchmarks.tricks

## The vocabulary-scale chapter's stored results (long: about 15 and 45 minutes).
bench-vocab: $(STAMP)
	$(BIN)/python -m benchmarks.vocab_precision
	$(BIN)/python -m benchmarks.vocab_tail

## The categorical VAE trained ten times longer than in its chapter (tens of minutes).
bench-vae: $(STAMP)
	$(CHAPTER_ENV) nice -n 10 $(BIN)/python -m benchmarks.vae_long

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks.run --smoke --out _build/bench-smoke
	$(BIN)/python -m benchmarks.numerics --smoke --out _build/bench-smoke
	$(BIN)/python -m benchmarks.tokens --smoke --out _build/bench-smoke
	$(BIN)/python -m benchmarks.tricks --smoke --out _build/bench-smoke
	$(BIN)/python -m benchmarks.vocab_precision --smoke --out _build/bench-smoke
	$(BIN)/python -m benchmarks.vocab_tail --smoke --out _build/bench-smoke
	$(BIN)/python -m benchmarks.vae_long --smoke --out _build/bench-smoke --estimators gumbel-softmax

clean:
	rm -rf _build
