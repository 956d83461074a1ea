"""A teammate's files, read from Slack's file_share event: by id, whatever else the event holds."""

from __future__ import annotations

from typing import Any

from bot.handlers.events import SHARED_FILES_LIMIT, shared_files


def event(files: Any) -> dict[str, Any]:
    return {"type": "message", "subtype": "file_share", "user": "U1", "files": files}


def test_each_file_becomes_an_attachment_named_by_its_slack_id():
    [quote] = shared_files(
        event([{"id": "F1", "name": "quote.pdf", "mimetype": "application/pdf", "size": 1234}])
    )
    assert quote == {
        "kind": "file",
        "name": "quote.pdf",
        "mime_type": "application/pdf",
        "ref": {"slack_file_id": "F1"},
        "slack_file_id": "F1",
        "size": 1234,
    }


def test_a_file_slack_describes_only_by_id_still_goes_and_odd_shapes_are_skipped():
    # Slack Connect and large files arrive as {"id", "file_access": "check_file_info"}: files.info tells.
    files = shared_files(
        event([{"id": "F2", "file_access": "check_file_info"}, {"name": "no id"}, "F3", None, {"id": 7}])
    )
    assert [(f["ref"]["slack_file_id"], f["name"], f["mime_type"]) for f in files] == [
        ("F2", "file", "application/octet-stream")
    ]
    assert shared_files(event("F1")) == shared_files(event(None)) == []
    assert shared_files({"type": "message"}) == []


def test_no_more_files_than_slack_attaches_to_one_message():
    many = [{"id": f"F{n}", "name": f"{n}.png"} for n in range(1000)]
    assert len(shared_files(event(many))) == SHARED_FILES_LIMIT
