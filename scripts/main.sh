#!/usr/bin/env bash
# The main job: install, start local contractors on the embedded model and hire real tasks from them over A2A.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/coalesce demo
