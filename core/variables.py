"""Variables in a rep's reply (DESIGN §5): `{first_name}` … `{my_email}`, filled in before sending.

A lead must never receive a raw placeholder: a reply naming a variable we do not know, or one whose
value is empty for this lead, is refused whole (`UnfilledVariable`), and the rep is told which one.
`{{` and `}}` write literal braces. Braces that do not form `{word}` (a smiley `:-}`, JSON) are text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from core.errors import InvalidAction
from core.models import Lead, Member

LEAD_VARIABLES = ("first_name", "last_name", "full_name", "company", "title", "email", "phone", "campaign")
MEMBER_VARIABLES = ("my_name", "my_first_name", "my_email")
VARIABLES = LEAD_VARIABLES + MEMBER_VARIABLES

_TOKEN = re.compile(r"\{\{|\}\}|\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")


class UnfilledVariable(InvalidAction):
    def __init__(self, name: str, *, known: bool) -> None:
        self.name = name
        self.known = known
        if known:
            message = f"{{{name}}} is empty for this conversation, so your message was not sent."
        else:
            listed = ", ".join(f"{{{v}}}" for v in VARIABLES)
            message = (
                f"{{{name}}} is not a variable I know, so your message was not sent. "
                f"Variables: {listed}; write {{{{ and }}}} for literal braces."
            )
        super().__init__(message)


def fill(text: str, values: Mapping[str, str | None]) -> str:
    """`text` with every variable replaced by its value; UnfilledVariable for the first one that cannot
    be (unknown, or empty)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:  # `{{` or `}}`
            return match.group(0)[0]
        if name not in values:
            raise UnfilledVariable(name, known=False)
        value = (values[name] or "").strip()
        if not value:
            raise UnfilledVariable(name, known=True)
        return value

    return _TOKEN.sub(replace, text)


def values_for(lead: Lead, campaign: str | None, member: Member | None) -> dict[str, str | None]:
    """What each variable stands for in a conversation with `lead`, written by `member`."""
    full = (lead.name or "").strip()
    first, _, last = full.partition(" ")
    me = (member.name or "").strip() if member is not None else ""
    return {
        "first_name": first,
        "last_name": last.strip(),
        "full_name": full,
        "company": lead.company,
        "title": lead.title,
        "email": lead.email,
        "phone": lead.phone,
        "campaign": campaign,
        "my_name": me,
        "my_first_name": me.partition(" ")[0],
        "my_email": member.email if member is not None else None,
    }
