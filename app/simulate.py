"""`threadline simulate "Name <email or phone>" "text"`: a lead writes, through the sandbox channel."""

from __future__ import annotations

import argparse

import httpx

from channels.sandbox import PATH, parse_contact, signed_message
from core.errors import SettingsError
from core.settings import Settings, secret


def simulate(settings: Settings, args: argparse.Namespace) -> int:
    try:
        contact = parse_contact(args.lead)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    if not args.text.strip():
        raise SettingsError("say what the lead writes: the text is empty")
    if settings.SLACK_SIGNING_SECRET is None:
        raise SettingsError(
            "SLACK_SIGNING_SECRET is not set: simulate signs with the same secret as the server"
        )
    base = args.url or f"http://{_local(settings.HOST)}:{settings.PORT}"
    body, headers = signed_message(contact, args.text, signing_secret=secret(settings.SLACK_SIGNING_SECRET))
    try:
        response = httpx.post(base.rstrip("/") + PATH, content=body, headers=headers, timeout=15)
    except (httpx.TransportError, httpx.InvalidURL) as exc:
        raise SettingsError(
            f"nothing answers at {base} ({type(exc).__name__}): start Threadline first "
            "(`python3 dev.py run`), or give its address with --url"
        ) from None
    if response.status_code == 404:
        raise SettingsError(
            f"the sandbox channel is off on {base} (THREADLINE_SANDBOX=off, or no signing secret)"
        )
    if response.status_code == 401:
        raise SettingsError(f"{base} refused the signature: use the same SLACK_SIGNING_SECRET as the server")
    if not response.is_success:
        raise SettingsError(f"{base} answered {response.status_code}: {response.text[:200]}")
    who = f"{contact.name} <{contact.address}>" if contact.name else contact.address
    routed = settings.routes().channel_for(campaign=None, lead_channel="sandbox")
    where = f"Slack channel {routed}" if routed else "the Threadline channel"
    print(f"{who} wrote: {args.text}\nIt is on its way to {where}; reply in its thread to answer.")
    return 0


def _local(host: str) -> str:
    # A server listening on every address is reached on this machine through the loopback one.
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host  # an IPv6 address goes in brackets in a URL
