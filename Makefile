# Two commands on a fresh machine: `make train` (the default experiment) and `make test`.
# A virtual environment in .venv is created on first use; TORCH pins the CPU wheel for dev/CI.
VENV  ?= .venv
PY    := $(VENV)/bin/python
TORCH ?= torch==2.13.0
ARGS  ?=
# pytest-xdist workers of make test and test-fast: one a core (JOBS=0: the tests in this process)
JOBS  ?= auto

.PHONY: install install-test train test test-fast lint figures arora2019 arora2019-full clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

train: install  ## run the default experiment (pass overrides as ARGS="model.depth=2 ...")
	$(PY) train.py $(ARGS)

test: install-test lint  ## lint, then every test, slow ones included, on every core (docs/tests.md: times)
	$(PY) -m pytest -q -n $(JOBS)

test-fast: install-test lint  ## lint, then the tests not marked slow: no subprocess, 6 min on 2 loaded cores
	$(PY) -m pytest -q -n $(JOBS) -m "not slow"

FIGURES := least_squares_min_norm norms_blow_up ranks_minimized unobserved_entry

figures: install  ## run every configs/experiment preset and draw its figure into outputs/figures/
	@for e in $(FIGURES); do \
	  rm -rf outputs/figures/$$e; \
	  $(PY) train.py experiment=$$e train.progress=false hydra.sweep.dir=outputs/figures/$$e || exit 1; \
	  $(PY) -m implicit_reg.figures outputs/figures/$$e --out outputs/figures/$$e/figures --only $$e || exit 1; \
	  cp outputs/figures/$$e/figures/$$e.png outputs/figures/; \
	done
	@ls outputs/figures/*.png

ARORA ?= arora2019_completion_quick arora2019_sensing_quick arora2019_dynamics_quick arora2019_observations_quick
ARORA_FULL := arora2019_completion arora2019_dynamics arora2019_observations arora2019_sensing

arora2019-full: install  ## the full-size Arora et al. (2019) presets (docs/arora2019.md: hours on a CPU)
	$(MAKE) arora2019 ARORA="$(ARORA_FULL)"

arora2019: install  ## Arora et al. (2019) quick presets and their figures (ARORA="..." picks presets)
	$(PY) -m pip install -q -e ".[baselines]"
	@for e in $(ARORA); do \
	  rm -rf outputs/figures/$$e; \
	  $(PY) train.py experiment=$$e train.progress=false hydra.sweep.dir=outputs/figures/$$e || exit 1; \
	  $(PY) -m implicit_reg.figures outputs/figures/$$e --out outputs/figures/$$e/figures --only $${e%_quick} || exit 1; \
	  cp outputs/figures/$$e/figures/$${e%_quick}.png outputs/figures/$$e.png; \
	done
	@ls outputs/figures/arora2019_*.png

lint: install-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) outputs/runs outputs/multirun
