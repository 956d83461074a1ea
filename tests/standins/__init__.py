"""Strict stand-ins for the providers the tests cannot reach (Slack, Meta)."""
