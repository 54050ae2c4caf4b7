# zeroskip — every target sets up its own virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ROWS   ?= 8
COLS   ?= 8
FORMAT ?= csc
OUT    ?= build
JOBS   ?= auto

.PHONY: setup test test-fast typecheck docs readme formats formal verilog demo bench regress \
        bitstream flash boards soc area models tinyml resident clean
N      ?= 200
SEED   ?=
CASE   ?=
BOARD  ?= icebreaker

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,demo,onnx,tflite,formal,boards,sweep,docs]"
	touch $@

setup: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) tb

# the edit-test loop: Amaranth-simulator and host tests, no Verilog simulator or bitstream build
test-fast: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -m "not rtl" tb

# mypy over the whole package from this checkout (zeroskip/hw, sim, ... link to the folders)
typecheck: $(STAMP)
	$(PY) -m mypy

# the documentation site (docs/*.md, Sphinx + furo) into build/docs; every warning is an error
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -q -b html docs $(OUT)/docs
	@echo "open $(OUT)/docs/index.html"

# the README's marked sections (its results table) from the generated files under docs/, which
# `make boards` and `make bench` write; measures nothing (tb/test_docs.py checks they agree)
readme: $(STAMP)
	$(PY) -m zeroskip.apps.readme README.md

demo: $(STAMP)
	$(VENV)/bin/zeroskip demo --out docs/demo

# docs/bench.{md,csv,json,png}: the docs' benchmark page includes docs/bench.md
bench: $(STAMP)
	$(VENV)/bin/zeroskip bench --out docs

# bits per weight of each format (docs/formats_table.md, included by the formats page)
formats: $(STAMP)
	$(VENV)/bin/zeroskip formats > docs/formats_table.md.tmp
	mv docs/formats_table.md.tmp docs/formats_table.md

formal: $(STAMP)
	$(PY) tb/formal.py

# N random cases; SEED=S repeats a run's cases (a fresh seed otherwise, printed first),
# CASE=I reruns case I of SEED alone (FAIL lines name both)
regress: $(STAMP)
	@$(PY) -m zeroskip.apps.regress $(if $(CASE),--case $(CASE),$(N)) $(if $(SEED),--seed $(SEED))

verilog: $(STAMP)
	mkdir -p $(OUT)
	$(VENV)/bin/zeroskip verilog --rows $(ROWS) --cols $(COLS) --format $(FORMAT) -o $(OUT)/accel.v

bitstream: $(STAMP)
	$(VENV)/bin/zeroskip build --board $(BOARD) --out $(OUT)/$(BOARD)

flash: $(STAMP)
	$(VENV)/bin/zeroskip build --board $(BOARD) --out $(OUT)/$(BOARD) --program

# both boards' builds and simulated throughput: docs/boards.{md,json} and the README's results
# table; ARCH=dense builds and measures only the dense baselines (the zeroskip rows are kept)
ARCH   ?=
boards: $(STAMP)
	$(PY) -m zeroskip.platforms.table --out docs --readme README.md $(if $(ARCH),--arch $(ARCH))

# the README's "use it in your SoC": the register maps of the default 8x8 core, what the AXI and
# Wishbone wrappers cost on the ULX3S (synthesis only) and a simulated job's timing diagram
soc: $(STAMP)
	mkdir -p docs/soc $(OUT)/soc
	for bus in axi wishbone; do $(VENV)/bin/zeroskip verilog --bus $$bus -o $(OUT)/soc/$$bus.v \
	  --header docs/soc/regs_$$bus.h --regmap docs/soc/regmap_$$bus.md || exit 1; done
	$(PY) -m zeroskip.platforms.bus_cost --out docs/soc
	$(PY) -m zeroskip.apps.soc_waves --out docs/soc

# where the ULX3S accelerator's logic goes, per module kind (synthesis only): docs/area.{json,md}
area: $(STAMP)
	$(PY) -m zeroskip.platforms.area --out docs

# the network resident on chip (the digits CNN and MLP on the ULX3S's engine, through its
# simulated board top's UART) against the host-sequenced path and the CPU:
# docs/resident.{json,md} and the README's table (about 15 minutes)
resident: $(STAMP)
	$(PY) -m zeroskip.apps.resident_table --out docs
	$(PY) -m zeroskip.apps.readme README.md

# the bundled ONNX networks (models/) through `zeroskip run`: the README's "bring your own
# model" tables come from docs/models/*/report.md
# MLPerf Tiny's reference int8 models (MODELS=folder holding them; from the mlcommons/tiny
# repository, not shipped) as given and pruned, on the ULX3S configuration: docs/tinyml.{json,md}
# and the README's table (about 20 minutes)
MODELS ?= mlperf-tiny
tinyml: $(STAMP)
	$(PY) -m zeroskip.apps.tinyml --models $(MODELS) --out docs
	$(PY) -m zeroskip.apps.readme README.md

models: $(STAMP)
	for m in digits_cnn digits_mlp encoder; do \
	  $(VENV)/bin/zeroskip run models/$$m.onnx --input models/digits_test_x.npy \
	    --labels models/digits_test_y.npy --out docs/models/$$m || exit 1; done

# the simulator builds under $ZEROSKIP_CACHE are the user's, shared by every checkout: kept
clean:
	rm -rf $(OUT) .pytest_cache
	@echo "kept the simulator cache ($${ZEROSKIP_CACHE:-~/.cache/zeroskip}): \
	$(VENV)/bin/zeroskip cache shows it, 'zeroskip cache clear' empties it"
