#!/usr/bin/env bash
# The test command: install, lint, type-check, run every test (real servers on 127.0.0.1, the real local model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
