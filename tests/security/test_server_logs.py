"""No token in any log line of the real web servers: gunicorn as the Procfile starts it (access
and error log, Django's own lines) and the development server, hit with real tokens of every kind."""

import http.client
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from assessments.reminders import unsubscribe_token
from practice.models import Invitation
from tests.conftest import ROOT, database_url_for_worker, make_assignment, make_couple, make_practice, make_user

PROCFILE_WEB = (ROOT / "Procfile").read_text().split("web:", 1)[1].splitlines()[0].split()
UNKNOWN = "Made-Up-Token-Sentinel-4242"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(port, path, headers=None):
    """One request, redirects not followed: (status, Location)."""
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn.request("GET", path, headers={"Host": "localhost", **(headers or {})})
            response = conn.getresponse()
            response.read()
            conn.close()
            return response.status, response.getheader("Location") or ""
        except ConnectionRefusedError:
            time.sleep(0.2)
    raise AssertionError(f"the server on port {port} never answered")


@pytest.fixture
def secrets(transactional_db):
    practice = make_practice()
    owner = make_user(practice, "owner@riverside.example")
    admin = make_user(practice, "admin@riverside.example", "admin")
    couple = make_couple(owner)
    _assignment, tokens = make_assignment(couple)
    _invitation, invitation_token = Invitation.issue(
        practice=practice, email="newcomer@riverside.example", role="admin", by=admin
    )
    partner = couple.partners.get(position="A")
    uid = urlsafe_base64_encode(force_bytes(owner.pk))
    reset = default_token_generator.make_token(owner)
    found = {
        "partner link": tokens["A"],
        "invitation": invitation_token,
        "unsubscribe": unsubscribe_token(partner),
        "password reset": reset,
        "unknown": UNKNOWN,
    }
    paths = {
        f"/a/{tokens['A']}/": 302,
        f"/a/{UNKNOWN}/": 404,
        f"/practice/invitation/{invitation_token}/": 200,
        f"/practice/invitation/{UNKNOWN}/": 410,
        f"/stop-reminders/{found['unsubscribe']}/": 200,
        f"/stop-reminders/{UNKNOWN}/": 404,
        f"/accounts/reset/{uid}/{reset}/": 302,
        f"/accounts/login/?next=%2Fa%2F{tokens['B']}%2F": 200,
    }
    found["partner link B"] = tokens["B"]
    return found, paths


def environment(**extra):
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_worker(),
        "SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "connection_practice.settings",
        "LOG_LEVEL": "DEBUG",
        # The whole suite's unknown tokens are counted from 127.0.0.1 in the shared cache: this
        # test is about log lines, tests/security/test_throttle.py about the limit.
        "TOKEN_LOOKUP_LIMIT": str(10**9),
        **extra,
    }
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    return env


def run_server(command, env, port, paths, headers=None):
    log = ROOT / "var" / f"server-log-test-{port}.txt"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            statuses = {path: get(port, path, headers)[0] for path in paths}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    text = log.read_text()
    log.unlink()
    return statuses, text


def leaks(text, secrets):
    return [f"{what} token in: {line}" for line in text.splitlines() for what, t in secrets.items() if t in line]


def test_gunicorn_as_the_procfile_runs_it_logs_no_token(secrets, tmp_path):
    found, paths = secrets
    port = free_port()
    # The Procfile's own web command, on a free port and with one worker.
    command = [sys.executable, "-m", "gunicorn", *PROCFILE_WEB[1:]]
    command = [part.replace("${PORT:-8000}", str(port)).replace("${WEB_CONCURRENCY:-3}", "1") for part in command]
    env = environment(DEBUG="false", ALLOWED_HOSTS="localhost", SITE_URL="https://localhost", TRUSTED_PROXIES="1")
    # As in production (README, step 3): the site serves its collected, hashed static files
    # (collected into a folder of the test's own, not the checkout's).
    env["STATIC_ROOT"] = str(tmp_path / "static")
    collect = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"]
    subprocess.run(collect, cwd=ROOT, env=env, check=True, timeout=300)
    statuses, text = run_server(
        command, env, port, paths, headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    )
    assert statuses == paths, text[-3000:]
    access = [line for line in text.splitlines() if '"GET /' in line]
    assert len(access) >= len(paths), text[-3000:]
    assert any('"GET /a/[redacted]/ HTTP/1.1" 302' in line for line in access)
    assert any("/practice/invitation/[redacted]/" in line for line in access)
    assert any("/stop-reminders/[redacted]/" in line for line in access)
    assert any(re.search(r"/accounts/reset/\w+/\[redacted\]/", line) for line in access)
    assert "Not Found: /a/[redacted]/" in text and "Gone: /practice/invitation/[redacted]/" in text
    assert not leaks(text, found), "\n".join(leaks(text, found))


def test_the_development_server_logs_no_token(secrets):
    found, paths = secrets
    port = free_port()
    command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    statuses, text = run_server(command, environment(DEBUG="true"), port, paths)
    assert statuses == paths, text[-3000:]
    assert '"GET /a/[redacted]/ HTTP/1.1" 302' in text
    assert '"GET /stop-reminders/[redacted]/ HTTP/1.1" 200' in text
    assert "Not Found: /a/[redacted]/" in text
    assert not leaks(text, found), "\n".join(leaks(text, found))
