# FastAPI def vs async benchmark. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCENARIO ?= default
BACKEND ?= auto
SET ?=
OUT ?= results
BASE_IMAGE ?= python:3.12-slim
UV_VERSION := 0.13.8
export BASE_IMAGE

SET_ARGS := $(foreach s,$(SET),--set $(s))
# the Docker images, a prerequisite where BACKEND=docker: never `$(MAKE) images` in a recipe, as
# make runs a line that names $(MAKE) even under `make -n`, and the rest of that line with it
IMAGES := $(if $(filter docker,$(BACKEND)),images)
# `bench run` of one scenario, as bench and smoke give it
BENCH_RUN = $(BIN)/python -m bench run $(1) --backend $(BACKEND) --out $(OUT) $(SET_ARGS)
# a command `make test` runs before the Docker tests (CI: wait for the images it builds in the
# background meanwhile, while the unit and the other end-to-end tests run)
BEFORE_DOCKER ?=

.PHONY: help venv bench gate capacity smoke plan test mutation breaks knobs lint report compare serve base-image wheelhouse images docker-up docker-down clean

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 14

venv: $(VENV)/.installed ## the virtual environment with every pinned version (made on first use)

$(VENV)/.installed: requirements-dev.txt app/requirements.txt loadgen/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# uv installs the same pinned wheels as pip in 10 s instead of 47 s here (the venv sits on CI's
	@# critical path); pip does it where uv cannot be had
	$(BIN)/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)" \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements-dev.txt \
	  || $(BIN)/pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
	@# compiled on every CPU (pip compiles one file at a time: 20 s here); never left to the first
	@# import, which writes nothing where PYTHONDONTWRITEBYTECODE is set (as on our CI machines), so
	@# that every Python process (a target, a Locust, each bench run) would compile its imports again
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib
	@# this checkout on the venv's path and the `bench` command; not `pip install -e .`, whose walk of
	@# the tree never ends while CI's image build has /proc mounted in build/rootfs (the script says)
	$(BIN)/python scripts/link-project.py
	touch $@

bench: venv $(IMAGES) ## run SCENARIO (default: default) on BACKEND (auto|local|docker); SET="k=v k2=a,b"
	$(call BENCH_RUN,$(SCENARIO))

GATE_OUT ?= results/ci
GATE_SCENARIO ?= ci
gate: venv $(IMAGES) ## the CI gate: GATE_SCENARIO (default: the ci preset; or your app's), judged against BASELINE (a kept run) when given; THRESHOLD, JUNIT, SET
	$(if $(and $(BASELINE),$(filter $(abspath $(GATE_OUT))/%,$(abspath $(BASELINE))/)),$(error BASELINE=$(BASELINE) lies in GATE_OUT=$(GATE_OUT), which make gate empties: keep it elsewhere))
	rm -rf $(GATE_OUT)/[0-9]*-[0-9]*-* $(GATE_OUT)/junit.xml && mkdir -p $(GATE_OUT)  # one run: the pipelines keep $(GATE_OUT)/*-<its name>
	$(if $(BASELINE),$(if $(wildcard $(BASELINE)),,@echo "gate: no baseline at $(BASELINE) yet (a first run, an evicted cache): only the checks judge this run"))
	$(BIN)/python -m bench run $(GATE_SCENARIO) --backend $(BACKEND) --out $(GATE_OUT) --junit $(or $(JUNIT),$(GATE_OUT)/junit.xml) \
		$(if $(wildcard $(BASELINE)),--baseline $(BASELINE) $(if $(THRESHOLD),--threshold $(THRESHOLD))) $(SET_ARGS)

capacity: venv $(IMAGES) ## per cell of SCENARIO (default: capacity), the highest rate within p99 SLO ms (default: its [capacity])
	$(BIN)/python -m bench capacity $(if $(filter default,$(SCENARIO)),capacity,$(SCENARIO)) --backend $(BACKEND) --out $(OUT) $(if $(SLO),--slo-p99 $(SLO)) $(SET_ARGS)

smoke: venv $(IMAGES) ## the smoke scenario (under 2 minutes)
	$(call BENCH_RUN,smoke)

plan: venv ## print the cells of SCENARIO and the estimated wall time
	$(BIN)/python -m bench plan $(SCENARIO) $(SET_ARGS)

serve: venv ## run the target alone with SCENARIO's server settings (Ctrl-C stops it)
	$(BIN)/python -m bench serve $(SCENARIO) $(SET_ARGS)

report: venv ## rewrite the report of RUN=results/<run_id>
	$(BIN)/python -m bench report $(RUN)

compare: venv ## compare A=results/<a> B=results/<b> [THRESHOLD=5]
	$(BIN)/python -m bench compare $(A) $(B) $(if $(THRESHOLD),--threshold $(THRESHOLD))

test: venv ## lint + the whole test suite with branch coverage of bench/ (Docker tests required when CI is set)
	$(BIN)/ruff check bench app loadgen upstream tests scripts
	$(BIN)/python scripts/knobs.py --check
	$(BIN)/coverage erase
	$(BIN)/python -m compileall -qq -j 0 bench benchagent app loadgen upstream  # as the venv, for the processes the tests start
	@# the unit tests on every CPU (pytest-xdist; pytest-cov gathers each worker's coverage); the
	@# end-to-end ones one at a time, as two load tests must never share the CPUs
	$(BIN)/python -m pytest -q --durations=15 -n auto --cov --cov-report= tests/unit
	$(BIN)/coverage run -a -m pytest -q --durations=40 -m "not docker" tests/e2e
	$(BEFORE_DOCKER)
	$(BIN)/coverage run -a -m pytest -q --durations=10 -m docker tests/e2e
	$(BIN)/coverage report

mutation: venv ## mutation testing of the modules that carry figures with the fast suite (tens of minutes; not in CI)
	rm -rf mutants
	mkdir -p build
	$(BIN)/mutmut run > build/mutmut.log 2>&1 || (tail -c 3000 build/mutmut.log; exit 1)
	$(BIN)/python scripts/mutation_score.py

breaks: venv ## ten one-line breaks of the code (scripts/breaks.py), each of which the fast suite must catch
	$(BIN)/python scripts/breaks.py

knobs: venv ## rewrite docs/knobs.md's table, .env.example's and compose.yaml's target settings from bench/scenario/keys.py
	$(BIN)/python scripts/knobs.py

lint: venv ## ruff over every Python folder
	$(BIN)/ruff check bench app loadgen upstream tests scripts

base-image: ## a local base image from Debian's registry, for hosts that cannot pull python:3.12-slim
	bash scripts/base-image.sh $(BASE_IMAGE_NAME)

wheelhouse: ## download the pinned wheels for the image's Python, for builds without network
	bash scripts/wheelhouse.sh

images: ## build the target and loadgen images (BASE_IMAGE=...); fails when the build does
	bash scripts/images.sh

docker-up: ## start a Docker engine + Compose v2 on this host if none answers (root)
	bash scripts/docker-up.sh

docker-down: ## stop the engine docker-up started
	bash scripts/docker-down.sh

clean: ## remove results, caches and the virtual environment
	rm -rf results build mutants .coverage .pytest_cache .ruff_cache $(VENV)
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
