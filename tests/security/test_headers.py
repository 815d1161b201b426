"""Headers: a strict nonce-based CSP, no-store on private pages, and the production profile."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from tests.conftest import client_for, make_assignment

ROOT = Path(__file__).resolve().parents[2]


def csp_of(response):
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_pages_carry_a_strict_content_security_policy(world):
    policy = csp_of(client_for(world.owner).get(reverse("assessments:caseload")))
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"][0] == "'self'" and policy["script-src"][1].startswith("'nonce-")
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in str(policy) and "'unsafe-eval'" not in str(policy)


def test_htmx_and_the_session_script_load_with_the_pages_nonce(world):
    response = client_for(world.owner).get(reverse("assessments:caseload"))
    nonce = csp_of(response)["script-src"][1][len("'nonce-") : -1]
    html = response.content.decode()
    scripts = re.findall(r"<script[^>]*>", html)
    assert any("htmx" in s for s in scripts) and any("session.js" in s for s in scripts)
    for tag in scripts:
        assert f'nonce="{nonce}"' in tag and "src=" in tag, tag
    assert '"includeIndicatorStyles": false' in html  # htmx adds no inline <style>
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_a_new_nonce_for_every_response(world):
    client = client_for(world.owner)
    first = csp_of(client.get(reverse("assessments:caseload")))["script-src"][1]
    second = csp_of(client.get(reverse("assessments:caseload")))["script-src"][1]
    assert first != second


def test_no_template_has_inline_scripts_handlers_or_style_attributes():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        if "emails" in path.parts:
            continue  # e-mails are not web pages; mail clients need inline styles
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)", r"\son[a-z]+\s*=", r"\sstyle\s*=", r"hx-on"):
            if re.search(pattern, text, re.IGNORECASE):
                offenders.append(f"{path.relative_to(ROOT)}: {pattern}")
    assert not offenders, offenders


def test_signed_in_and_partner_pages_are_never_stored(world):
    staff = client_for(world.owner).get(reverse("assessments:couple", args=[world.couple.pk]))
    assert staff["Cache-Control"] == "no-store, private"
    _, tokens = make_assignment(world.couple)
    partner = Client()
    welcome = partner.get(reverse("assessments:open_link", args=[tokens["A"]]))
    assert welcome["Cache-Control"] == "no-store, private"
    assert partner.get(welcome["Location"])["Cache-Control"] == "no-store, private"


def test_the_public_sign_in_page_still_gets_security_headers(db):
    response = Client().get(reverse("login"))
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]


def production_env(**extra):
    drop = ("DATABASE_URL", "REDIS_URL", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")  # the last is set for browser tests
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return {
        **base,
        "DJANGO_SETTINGS_MODULE": "connection_practice.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "example.org",
        "SITE_URL": "https://example.org",
        **extra,
    }


@pytest.mark.smoke
def test_the_deployment_check_passes_with_no_warning_under_the_production_profile(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(VAR_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.smoke
def test_the_production_profile_turns_on_https_only_cookies_and_hsts(tmp_path):
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE",
        "SECURE_HSTS_SECONDS",
        "SECURE_SSL_REDIRECT",
        "SECURE_REFERRER_POLICY",
        "X_FRAME_OPTIONS",
        "OPERATORS_REQUIRE_TWO_FACTOR",
        "TRUSTED_PROXIES",
    ]
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n) for n in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(VAR_DIR=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_REFERRER_POLICY": "same-origin",
        "X_FRAME_OPTIONS": "DENY",
        "OPERATORS_REQUIRE_TWO_FACTOR": True,
        "TRUSTED_PROXIES": 1,
    }
