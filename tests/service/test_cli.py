"""``python -m service``: every setting is a flag; bad values exit 2 with one message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.__main__ import build_parser, parse_settings
from service.config import Settings


def test_every_setting_has_a_documented_flag() -> None:
    help_text = build_parser().format_help()
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in help_text
        assert f"SERVICE_{name.upper()}" in help_text


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SERVICE_PORT", "9001")
    monkeypatch.setenv("SERVICE_CORS_ORIGINS", "http://a,http://b")
    settings = parse_settings(["--repository", str(tmp_path), "--batching", "--poll-interval", "0.5"])
    assert settings.port == 9001 and settings.cors_origins == ["http://a", "http://b"]
    assert settings.batching and settings.poll_interval == 0.5 and settings.repository == tmp_path
    assert parse_settings(["--port", "9002"]).port == 9002
    monkeypatch.setenv("SERVICE_CORS_ORIGINS", '["http://c"]')
    assert parse_settings([]).cors_origins == ["http://c"]
    assert parse_settings(["--cors-origins", "*"]).cors_origins == ["*"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port: Input should be less than or equal to 65535"),
        (["--poll-interval", "-1"], "--poll-interval"),
        (["--log-format", "xml"], "invalid choice: 'xml'"),
        (["--repository", "/no/such/folder"], "no such folder"),
    ],
)
def test_bad_values_exit_2_with_a_message(args: list[str], message: str) -> None:
    result = subprocess.run([sys.executable, "-m", "service", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
