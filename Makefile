# Two commands: `make demo` runs the whole workflow on the built-in synthetic data,
# `make test` runs the test suite. Both build .venv first when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 4
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv demo test test-fast test-slurm test-browser lint report clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Python 3.11 is required)"; exit 1; }
	@command -v java >/dev/null || echo "warning: java not found; pycocoevalcap's METEOR and PTB tokenizer need Java 17"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: venv
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1
	@echo "Tables: results/table1.csv results/table2.csv (and .md beside them)"

test: venv
	$(BIN)/python -m pytest -q

test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow and not slurm"

lint: venv
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules

report: venv
	$(BIN)/snakemake --cores $(CORES) --resources gpu=1 --report results/report.html

clean:
	rm -rf results .snakemake

# test-slurm: profiles/slurm against a throw-away single-node SLURM on loopback (root on
# Debian only; elsewhere it says why and exits 0). See docs/CLUSTER.md.
SLURM_STATE ?= /tmp/crrg-slurm

test-slurm: venv
	@if [ "$$(id -u)" != 0 ]; then \
		echo "test-slurm: skipped: needs root (it installs packages and starts SLURM daemons)"; exit 0; fi; \
	if ! command -v apt-get >/dev/null || ! grep -qsi '^ID=debian\|^ID_LIKE=.*debian' /etc/os-release; then \
		echo "test-slurm: skipped: needs Debian (or a derivative) with apt-get"; exit 0; fi; \
	export CRRG_SLURM_STATE=$(SLURM_STATE) SLURM_CONF=$(SLURM_STATE)/etc/slurm.conf; \
	bash .ci/slurm/start.sh || { bash .ci/slurm/stop.sh; exit 1; }; \
	CRRG_SLURM_ACCOUNT=crrg CRRG_SLURM_PARTITION=debug \
		$(BIN)/python -m pytest -q -m slurm tests/slurm; status=$$?; \
	bash .ci/slurm/stop.sh; exit $$status

# test-browser: the explorer page in a real headless Chromium (tests marked `browser`).
# Installs Debian's chromium when it is missing (root on Debian only; elsewhere, without a
# chromium on PATH, it says why and exits 0).
test-browser: venv
	@if ! command -v chromium >/dev/null; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "test-browser: skipped: chromium is not installed and installing it needs root"; exit 0; fi; \
		if ! command -v apt-get >/dev/null || ! grep -qsi '^ID=debian\|^ID_LIKE=.*debian' /etc/os-release; then \
			echo "test-browser: skipped: chromium is not installed and this is not Debian (apt-get)"; exit 0; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
			|| { echo "test-browser: apt-get install chromium failed"; exit 1; }; \
	fi; \
	$(BIN)/python -m pytest -q -m browser
