"""Threadline's exception tree, in one place.

ThreadlineError
├── SettingsError          a missing or invalid setting; the message is the one line an operator reads
├── NotFound               the thing a request names does not exist (unknown conversation, user…)
├── InvalidAction          the request makes no sense in the current state (resume AI with AI off…)
├── NotAllowed             this person may not act on this conversation (a guest, an app, not in its channel)
├── Conflict               someone else changed it first; the caller may reload and retry
├── MalformedDelivery      a verified delivery not of the shape we know (parked; 400 at the edge)
├── Deferred               not now: the work is allowed again in `seconds` (a rate limit, a Retry-After)
├── Unrecoverable          work that can never succeed as it is (a provider refuses its content): failed
└── DeliveryError          a provider refused or failed a send
    ├── RetryableDelivery  try again later (network, 5xx, rate limit)
    ├── PermanentDelivery  will never succeed as is (bad number, content refused…)
    │   └── NeedsTemplate  the channel takes only a pre-approved template now (WhatsApp's 24 h window)
    └── ChannelBroken      the channel itself needs a person (token revoked, account disconnected)
"""

from __future__ import annotations


class ThreadlineError(Exception):
    """Base of every error Threadline raises on purpose."""


class SettingsError(ThreadlineError):
    pass


class NotFound(ThreadlineError):
    pass


class InvalidAction(ThreadlineError):
    pass


class NotAllowed(ThreadlineError):
    pass


class Conflict(ThreadlineError):
    pass


class MalformedDelivery(ThreadlineError):
    pass


class Deferred(ThreadlineError):
    """Work that may not run yet. Not a failure: the outbox reschedules it for then, uncounted, and the
    worker moves on instead of sleeping."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(f"{reason} (again in {seconds:.1f}s)")
        self.seconds = max(0.0, seconds)
        self.reason = reason


class Unrecoverable(ThreadlineError):
    """Work that retrying cannot help: the outbox marks it failed with this reason."""


class DeliveryError(ThreadlineError):
    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class RetryableDelivery(DeliveryError):
    def __init__(self, reason: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason, code=code)
        self.retry_after = retry_after


class PermanentDelivery(DeliveryError):
    pass


class NeedsTemplate(PermanentDelivery):
    """The lead's channel no longer takes free text from us, only a pre-approved template (WhatsApp's
    24-hour window). The rep is offered the channel's templates instead of a plain Retry."""


NEEDS_TEMPLATE = "needs_template"  # message.delivery_error_code of a message NeedsTemplate failed
UNKNOWN_OUTCOME_CODE = "unknown_outcome"  # …of a send that may or may not have reached the lead


class ChannelBroken(DeliveryError):
    pass
