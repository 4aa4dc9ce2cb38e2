# The project's two commands: `make demo` and `make test`. Both set everything up first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-install
# Pure modules that mypy checks strictly (I/O wrappers and torch code are covered by tests instead).
MYPY_PATHS := storage tasks/common.py tasks/shard_runner.py tasks/bench/query.py tasks/bench/retrieval_ceiling.py \
	$(wildcard tasks/captions/vtt.py tasks/captions/track.py tasks/captions/cuefile.py tasks/captions/kind.py tasks/captions/rolling.py tasks/captions/segments.py tasks/captions/cueblocks.py tasks/captions/clips.py tasks/captions/cuetext.py tasks/captions/speakers.py tasks/captions/nonspeech.py tasks/captions/encoding.py tasks/captions/timedtext.py tasks/captions/rows.py tasks/wikihow/parser.py tasks/wikihow/filters.py tasks/wikihow/redirects.py \
	tasks/wikihow/titles.py tasks/youtube/decision.py tasks/evaluation/crosstask.py tasks/evaluation/formats.py \
	tasks/audio/logmel.py tasks/audio/decode.py tasks/features/batcher.py tasks/features/crash_guard.py \
	tasks/captions/wordcount.py tasks/youtube/cookies_file.py tasks/report/markdown_text.py)

.PHONY: setup ffmpeg compiler demo test check lint clean device-wheels

setup: ffmpeg compiler $(STAMP)

ffmpeg:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then \
		echo "installing ffmpeg (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg; \
	fi

# A C compiler for the AMX kernel, compiled on first use where the CPU has AMX (models/amx_bottleneck.py);
# without one the encoders run on oneDNN alone.
compiler:
	@if ! command -v gcc >/dev/null; then \
		echo "installing gcc (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc; \
	fi

# Installed once; the stamp is redone only when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: setup
	$(BIN)/howto demo

# Two workers, one test file each at a time: most of the suite waits on subprocesses, servers and
# ffmpeg, so two files in flight keep both cores busy (about half the serial wall time on 2 cores).
test: setup
	$(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=20

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy $(MYPY_PATHS)
	$(BIN)/lint-imports

check: lint test

# The wheels the bench commands need beyond a GPU machine's image (flows/device_check.py), at this
# environment's versions, for that machine's Python 3.12, into .whl/ (ignored) to travel with the tree.
DEVICE_WHEELS := ^(av|pydantic|pydantic.core|annotated.types|typing.inspection|dill)==
device-wheels: setup
	rm -rf .whl && mkdir -p .whl
	$(BIN)/pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d .whl \
		$$($(BIN)/pip freeze | grep -iE '$(DEVICE_WHEELS)')
	@ls .whl

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
