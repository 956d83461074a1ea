"""Which Slack channel a conversation lives in (THREADLINE_ROUTES, DESIGN §5).

`campaign:<name>=C…` and `<lead channel>=C…` entries; a campaign route wins over a channel route, and
with no match the conversation goes to SLACK_CHANNEL. Spreading conversations over channels spreads
Slack's per-channel posting limit too. Campaign names compare case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.errors import SettingsError

CAMPAIGN_PREFIX = "campaign:"
_SLACK_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")


@dataclass(frozen=True)
class Routes:
    default: str
    campaigns: dict[str, str] = field(default_factory=dict)  # case-folded campaign name → channel id
    channels: dict[str, str] = field(default_factory=dict)  # lead channel ("whatsapp"…) → channel id

    def channel_for(self, *, campaign: str | None, lead_channel: str) -> str:
        if campaign is not None and campaign.strip().casefold() in self.campaigns:
            return self.campaigns[campaign.strip().casefold()]
        return self.channels.get(lead_channel, self.default)

    def all_channels(self) -> list[str]:
        """Every Slack channel conversations may live in, the default first, each once."""
        return list(dict.fromkeys([self.default, *self.campaigns.values(), *self.channels.values()]))


def parse_routes(text: str | None, *, default: str, lead_channels: set[str] | None = None) -> Routes:
    """THREADLINE_ROUTES as Routes; SettingsError names the entry that makes no sense."""
    campaigns: dict[str, str] = {}
    channels: dict[str, str] = {}
    for entry in (text or "").split(","):
        if not entry.strip():
            continue
        key, sep, channel = entry.partition("=")
        key, channel = key.strip(), channel.strip()
        if not sep or not key or not _SLACK_CHANNEL_ID.match(channel):
            raise SettingsError(
                f"THREADLINE_ROUTES: {entry.strip()!r} is not KEY=CHANNEL_ID "
                "(e.g. campaign:Spring Sale=C0123ABCD or whatsapp=C0456EFGH)"
            )
        if key.lower().startswith(CAMPAIGN_PREFIX):
            name = key[len(CAMPAIGN_PREFIX) :].strip().casefold()
            if not name:
                raise SettingsError(f"THREADLINE_ROUTES: {entry.strip()!r} names no campaign")
            campaigns[name] = channel
        elif lead_channels is not None and key.lower() not in lead_channels:
            known = ", ".join(sorted(lead_channels))
            raise SettingsError(f"THREADLINE_ROUTES: unknown lead channel {key!r} (known: {known})")
        else:
            channels[key.lower()] = channel
    return Routes(default=default, campaigns=campaigns, channels=channels)
