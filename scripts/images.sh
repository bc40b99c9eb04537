#!/usr/bin/env bash
# Build the images, bring the local market up on them with docker-compose, and put one task through it.
#   bash scripts/images.sh [--gpu]   (as root, with a running Docker engine; --gpu also builds Dockerfile.gpu)
# Steps: the base image from Debian's packages (scripts/base_image.sh: no registry is needed), the skill-matching
# model exported for ONNX Runtime (build/embeddings: the lean image runs it without torch), the images, their
# sizes, `docker-compose up`, a real task (a value-at-risk subtask and a sentiment label) through the client,
# and the client's A2A card; the market is taken down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
gpu=0
[ "${1:-}" = "--gpu" ] && gpu=1
export COMPOSE_PROJECT_NAME=coalesce-images
compose=(docker-compose -f docker-compose.yml)

bash scripts/base_image.sh
[ -f build/embeddings/model.onnx ] || .venv/bin/coalesce embeddings export --out build/embeddings
"${compose[@]}" build --quiet
if [ "$gpu" = 1 ]; then
  docker build --quiet --network host -f Dockerfile.gpu -t coalesce-gpu:0.2.0 . >/dev/null
fi
echo "images:"
docker image ls --format '  {{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E 'coalesce(-gpu|-base)?:' | sort

trap '"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true' EXIT
"${compose[@]}" up -d --quiet-pull 2>/dev/null || "${compose[@]}" up -d
.venv/bin/python - <<'PY'
"""Wait for the client to hold every contractor, then one task through the market, checked."""
import time

import httpx

from client_agent.models import SubtaskSpec, TaskSubmission
from coalesce.client import Exchange

URL = "http://127.0.0.1:8000/"
deadline = time.monotonic() + 600
while True:
    try:
        health = httpx.get(URL + "health", timeout=5).json()
        if health["contractors"] >= 9:
            break
    except (httpx.HTTPError, ValueError):
        pass
    if time.monotonic() > deadline:
        raise SystemExit("the market did not come up within 600 s")
    time.sleep(3)
print(f"market up: {health['contractors']} contractors registered")
risk = {"portfolio_value": 1_000_000.0, "mu": 0.0, "sigma": 0.01, "confidence": 0.95, "simulations": 20_000}
specs = [
    SubtaskSpec(description="Monte Carlo value at risk", skill="risk-assessment", input_data=risk),
    SubtaskSpec(
        description="Classify the sentiment of: 'Shares soar on record profits'",
        skill="sentiment-analysis",
        verification={"kind": "labels", "labels": ["positive", "negative", "neutral"]},
    ),
]
with Exchange(URL, timeout_s=30) as exchange:
    task = exchange.wait(exchange.submit(TaskSubmission(description="images check", subtasks=specs)).id, 600)
    for sub in task.subtasks:
        decision = sub.decision or {}
        print(f"  {sub.skill}: {sub.status} by {sub.where} ({decision.get('action')}), paid {sub.cost.get('actualUsd')}")
    card = httpx.get(URL + ".well-known/agent-card.json", timeout=5).json()
print(f"the client's A2A card: {card['name']}, {len(card['skills'])} skills")
if task.subtasks[0].status != "completed":
    raise SystemExit("the value-at-risk subtask did not complete")
PY
echo "images check: passed"
