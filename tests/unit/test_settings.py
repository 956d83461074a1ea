"""Settings: the names of DESIGN §5, one clear line for each problem."""

from __future__ import annotations

import pytest

from core.errors import SettingsError
from core.settings import env_files, load_settings

ENV = [
    "DATABASE_URL",
    "REDIS_URL",
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_CHANNEL",
    "PORT",
    "OPENAI_API_KEY",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("THREADLINE_ENV_FILE", raising=False)
    monkeypatch.setattr("core.settings.PROJECT_ROOT", tmp_path / "checkout")  # no .env from the checkout
    monkeypatch.chdir(tmp_path)


def test_defaults_are_the_embedded_mode():
    settings = load_settings()
    assert settings.database_url == "sqlite:///./threadline.db"
    assert settings.embedded and settings.OPENAI_API_KEY is None
    assert (settings.HOST, settings.PORT) == ("127.0.0.1", 3000)
    assert settings.SLACK_API_URL == "https://slack.com/api/"


def test_plain_postgresql_means_psycopg3(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/threadline")
    assert load_settings().database_url == "postgresql+psycopg://u:p@db/threadline"


def test_dotenv_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text("SLACK_CHANNEL=C42\nREDIS_URL=redis://r:6379/0\n")
    settings = load_settings()
    assert settings.SLACK_CHANNEL == "C42" and not settings.embedded


def test_missing_slack_settings_are_named_in_one_line():
    with pytest.raises(SettingsError) as caught:
        load_settings().require_slack()
    message = str(caught.value)
    assert "\n" not in message
    assert all(name in message for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CHANNEL"))


def test_invalid_values_are_named(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(SettingsError, match="PORT"):
        load_settings()
    monkeypatch.setenv("PORT", "3000")
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings()


def test_a_user_token_is_refused(monkeypatch: pytest.MonkeyPatch):
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxp-user",
        "SLACK_SIGNING_SECRET": "s",
        "SLACK_CHANNEL": "C1",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="xoxb-"):
        load_settings().require_slack()


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    assert "xoxb-very-secret" not in repr(load_settings())


def test_dotenv_next_to_the_readme_is_read_from_any_directory(tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / ".env").write_text("SLACK_CHANNEL=C_CHECKOUT\nPORT=4000\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_settings().SLACK_CHANNEL == "C_CHECKOUT"

    (elsewhere / ".env").write_text("SLACK_CHANNEL=C_HERE\n")  # the current directory's wins
    monkeypatch.setenv("PORT", "5000")  # and the environment wins over both
    settings = load_settings()
    assert (settings.SLACK_CHANNEL, settings.PORT) == ("C_HERE", 5000)
    assert env_files() == [checkout / ".env", elsewhere / ".env"]


def test_threadline_env_file_names_the_one_file_to_read(tmp_path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    (tmp_path / ".env").write_text("SLACK_CHANNEL=C_IGNORED\n")
    chosen = tmp_path / "prod.env"
    chosen.write_text("SLACK_CHANNEL=C_PROD\n")
    monkeypatch.setenv("THREADLINE_ENV_FILE", str(chosen))
    assert load_settings().SLACK_CHANNEL == "C_PROD"
    monkeypatch.setenv("THREADLINE_ENV_FILE", "")
    assert load_settings().SLACK_CHANNEL is None


def test_a_blank_value_means_unset(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REDIS_URL", "")
    assert load_settings().embedded
