"""Prometheus metrics, served at GET /metrics (prometheus_client keeps the registry)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INBOUND = Counter(
    "threadline_inbound_messages_total",
    "Lead messages received, by channel and outcome",
    ["channel", "outcome"],
)
WEBHOOK_ACCEPTED = Counter(
    "threadline_webhooks_accepted_total",
    "Verified provider deliveries stored in the inbox by this web process, by source",
    ["source"],
)
WEBHOOK_REJECTED = Counter(
    "threadline_webhook_rejected_total",
    "Provider webhooks refused, by provider and reason",
    ["provider", "reason"],
)
OUTBOX_JOBS = Counter(
    "threadline_outbox_jobs_total", "Outbox jobs run, by kind and outcome", ["kind", "outcome"]
)
OUTBOX_SECONDS = Histogram("threadline_outbox_job_seconds", "Time to run one outbox job", ["kind"])
INBOX_PARKED = Counter(
    "threadline_inbox_parked_total",
    "Inbound deliveries parked because they could not be processed",
    ["source"],
)
