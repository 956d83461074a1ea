"""Use-cases: one function per thing that happens to a conversation, grouped by area.

| module | what happens |
|---|---|
| `inbound` | a lead writes; a provider reports on a message we sent |
| `replies` | a teammate replies in the thread, writes a note, retries a failed send |
| `conversation` | take over, resume AI, manual only, assign, tags, close, reopen |
| `members` | a teammate is registered on first sight; their notification settings |
| `queue` | Take it, from the unassigned queue in App Home |
| `sla` | a lead waiting too long: the reminder is queued, once per wait |

Each `do_*` runs inside the caller's transaction (`Database.run`), changes state, writes the audit
`Event` and the `Outbox` rows for the work it calls for, and returns a typed result (`common`). Nothing
here talks to a provider; the outbox carries that work out after commit. Loading with row locks lives in
`locks`, the audited state changes shared by several areas in `transitions`.
"""
