"""The agent's settings section (DESIGN §5). With no OPENAI_API_KEY the agent is off and every
conversation is handled by people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Self

from pydantic import Field, SecretStr, model_validator

from core.settings import Section

DEFAULT_MODEL = "gpt-4o-mini"  # cheap, fast, supports strict JSON-schema output; any compatible model works


class AISettings(Section):
    OPENAI_API_KEY: SecretStr | None = None
    # Any OpenAI-compatible server (vLLM, Ollama, llama.cpp…); unset: OpenAI's own API.
    OPENAI_BASE_URL: str | None = None
    THREADLINE_AI_MODEL: str = DEFAULT_MODEL
    # A model for /embeddings on the same server; unset: knowledge is ranked lexically (BM25) only.
    THREADLINE_AI_EMBEDDING_MODEL: str | None = None
    THREADLINE_KNOWLEDGE_DIR: Path | None = None
    THREADLINE_AI_RULES: Path | None = None
    # One model call's bound, and how often the client retries a failed call (connection errors, 429, 5xx).
    THREADLINE_AI_TIMEOUT_SECONDS: Annotated[float, Field(gt=0, le=600)] = 30.0
    THREADLINE_AI_RETRIES: Annotated[int, Field(ge=0, le=5)] = 1
    # The history's share of the prompt, in tokens (about 4 characters each); older turns are summarised.
    THREADLINE_AI_HISTORY_TOKENS: Annotated[int, Field(ge=200)] = 3000

    @model_validator(mode="after")
    def _paths_exist(self) -> Self:
        # Checked only when the agent runs: without a key these settings are unused, and the app starts
        # exactly as it would without them.
        if (
            self.on
            and self.THREADLINE_KNOWLEDGE_DIR is not None
            and not self.THREADLINE_KNOWLEDGE_DIR.is_dir()
        ):
            raise ValueError(f"THREADLINE_KNOWLEDGE_DIR: {self.THREADLINE_KNOWLEDGE_DIR} is not a folder")
        if self.on and self.THREADLINE_AI_RULES is not None and not self.THREADLINE_AI_RULES.is_file():
            raise ValueError(f"THREADLINE_AI_RULES: {self.THREADLINE_AI_RULES} is not a file")
        return self

    @property
    def on(self) -> bool:
        return self.OPENAI_API_KEY is not None
