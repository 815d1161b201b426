import os
import subprocess
import sys
from pathlib import Path

import pytest

from connection_practice.management.commands import run_all

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


def site_url(**env):
    base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SITE_URL", "PORT")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; print(settings.SITE_URL)",
        ],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "connection_practice.settings", **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_e_mailed_links_follow_the_port_unless_site_url_says_otherwise():
    assert site_url() == "http://127.0.0.1:8000"
    assert site_url(PORT="8010") == "http://127.0.0.1:8010"
    assert site_url(PORT="8010", SITE_URL="https://counsel.example") == "https://counsel.example"


def test_make_run_port_moves_the_web_server_and_the_links():
    planned = subprocess.run(["make", "-n", "run", "PORT=8010"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "PORT=8010 .venv/bin/python manage.py run_all --port 8010" in planned
    assert "PORT=8010 .venv/bin/python manage.py seed_demo" in planned
    assert "127.0.0.1:8010" in run_all.processes(8010)["web"]
    assert "127.0.0.1:8010" in run_all.processes(8010)["web"]
    assert set(run_all.processes(8010)) == {"web", "worker", "beat"}


def test_the_site_has_an_icon_at_favicon_ico_and_pages_link_one(client):
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200
    assert b"".join(icon.streaming_content if icon.streaming else [icon.content])[:4] == b"\x00\x00\x01\x00"
    page = client.get("/accounts/login/").content.decode()
    assert 'rel="icon"' in page and "favicon.svg" in page
