"""What the agent may answer from: Markdown files in THREADLINE_KNOWLEDGE_DIR (one entry per heading)
plus the approved entries in the database; and the few entries relevant to one turn.

Ranking is Okapi BM25 over words — written out here (thirty lines) rather than taken from a library:
a knowledge base is tens or hundreds of short entries, where BM25 needs no index, no numpy and no
tuning, and its scores are deterministic, so tests can say which entry answers which question. When
the model server also offers /embeddings (THREADLINE_AI_EMBEDDING_MODEL), `ai.model` re-ranks by
meaning; any error there falls back to this ranking.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.queries.ai_turn import Knowledge

TOP = 3
ENTRY_LIMIT = 2000  # characters of one entry's body given to the model
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "so",
        "that",
        "the",
        "their",
        "them",
        "there",
        "this",
        "to",
        "us",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "hi",
        "hello",
        "hey",
        "thanks",
        "thank",
    ]
)


@dataclass(frozen=True)
class Entry:
    id: int | None  # the database row; None for a file's section
    source: str  # "database" or the file's path inside the knowledge folder
    title: str
    body: str

    def stored(self) -> dict[str, object]:
        """As ai_decision.knowledge keeps it."""
        return {"id": self.id, "source": self.source, "title": self.title}


def load_folder(folder: Path | None) -> list[Entry]:
    """Every Markdown file under `folder`, split at its headings (text before the first heading is an
    entry titled by the file's name). Unreadable files are skipped: the rest still answer."""
    if folder is None:
        return []
    entries: list[Entry] = []
    for path in sorted(folder.rglob("*.md")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        entries.extend(split_markdown(text, str(path.relative_to(folder))))
    return entries


def split_markdown(text: str, source: str) -> list[Entry]:
    entries: list[Entry] = []
    lines: list[str] = []
    title = Path(source).stem.replace("-", " ").replace("_", " ")
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            if "".join(lines).strip():
                entries.append(Entry(None, source, title, "\n".join(lines).strip()))
            title, lines = heading.group(2).strip(), []
        else:
            lines.append(line)
    if "".join(lines).strip():
        entries.append(Entry(None, source, title, "\n".join(lines).strip()))
    return entries


def from_database(rows: Iterable[Knowledge]) -> list[Entry]:
    return [Entry(row.id, "database", row.title, row.body) for row in rows]


def words(text: str) -> list[str]:
    return [_stem(word) for word in _WORD.findall(text.lower()) if word not in _STOP]


def _stem(word: str) -> str:
    # Enough for "prices"/"price", "plans"/"plan": plural s only, never shorter than 4 letters.
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


def bm25(query: str, entries: Sequence[Entry], *, k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Each entry's Okapi BM25 score for the query (title and body together); 0 when no word matches."""
    documents = [words(f"{entry.title} {entry.title} {entry.body}") for entry in entries]
    if not documents:
        return []
    average = sum(len(doc) for doc in documents) / len(documents) or 1.0
    frequency = Counter(term for doc in documents for term in set(doc))
    terms = set(words(query))
    scores = []
    for doc in documents:
        counts = Counter(doc)
        score = 0.0
        for term in terms & counts.keys():
            idf = math.log(1 + (len(documents) - frequency[term] + 0.5) / (frequency[term] + 0.5))
            tf = counts[term]
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / average))
        scores.append(score)
    return scores


def relevant(query: str, entries: Sequence[Entry], top: int = TOP) -> list[Entry]:
    """The few entries that match the query best; none when no entry shares a word with it."""
    ranked = sorted(zip(bm25(query, entries), range(len(entries)), strict=True), key=lambda p: (-p[0], p[1]))
    return [entries[index] for score, index in ranked[:top] if score > 0]
