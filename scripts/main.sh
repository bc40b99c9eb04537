#!/usr/bin/env bash
# The main job: install, start the local market (the embedded model, six contractors, the client) and run the
# paper's four task types through it over A2A, graded against ground truth; then stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/coalesce market demo
