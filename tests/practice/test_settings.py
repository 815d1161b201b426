import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.smoke


def start_up(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "connection_practice.settings", **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("DEBUG", "maybe"), ("DATABASE_URL", "mysql://x"), ("REDIS_URL", "localhost:6379"), ("EMAIL_TIMEOUT", "ten")],
)
def test_malformed_environment_variable_stops_start_up_naming_it(name, value):
    result = start_up(**{name: value})
    assert result.returncode != 0
    assert f"{name} must be" in result.stderr


def test_production_without_secret_key_refuses_to_start():
    result = start_up(DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_nothing_set_starts_on_the_embedded_default():
    result = start_up()
    assert result.returncode == 0, result.stderr
