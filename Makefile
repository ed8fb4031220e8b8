# Stopline: `make demo` and `make test` are the quick start; everything else is for developers.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PROTOS := $(wildcard protos/stopline/v1/*.proto)

.PHONY: demo up test protos proto-check lint bench clean

# (Re)create the virtualenv whenever the pinned dependencies change.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Stopline needs $(PYTHON) on PATH (or: make PYTHON=/path/to/python3.11 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "could not create .venv: on Debian/Ubuntu install python3.11-venv"; exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: $(STAMP)
	$(BIN)/stopline demo

up: $(STAMP)
	$(BIN)/stopline up

test: $(STAMP) proto-check lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Generated code lives in stopline/v1 and is committed; it is only ever written by this target.
protos: $(STAMP)
	rm -f stopline/v1/*_pb2*.py stopline/v1/*_pb2*.pyi
	$(BIN)/python -m grpc_tools.protoc -I protos \
		--python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)

# Fails when the committed generated code differs from what the protos generate.
proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(BIN)/python -m grpc_tools.protoc -I protos --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTOS) && \
	for f in $$tmp/stopline/v1/*; do \
		cmp -s $$f stopline/v1/$$(basename $$f) || { echo "stopline/v1/$$(basename $$f) is stale: run 'make protos'"; rm -rf $$tmp; exit 1; }; \
	done; \
	n_gen=$$(ls $$tmp/stopline/v1 | wc -l); n_have=$$(ls stopline/v1/*_pb2*.py* | wc -l); rm -rf $$tmp; \
	test $$n_gen -eq $$n_have || { echo "stopline/v1 holds generated files no proto produces: run 'make protos'"; exit 1; }; \
	echo "generated code is up to date"

lint: $(STAMP)
	cd protos && ../$(BIN)/buf lint
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .stopline .pytest_cache
