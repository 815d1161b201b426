"""No answer, token, password or second-factor secret in any log line or error page.

One flow through the site with every logger at DEBUG: failed and successful sign-ins, a lockout,
assigning, both partners opening their links, a partner trying the other's page, answers, a
replaced and an unknown link, a password reset, two-factor set-up and a wrong code. Then every
captured log line and every error page is searched for each secret of the flow.
"""

import logging
import re
from base64 import b32encode

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from assessments.models import Answer, Item
from tests.conftest import PASSWORD, client_for, deliver, make_assignment

from .test_two_factor import code_for

WRONG_PASSWORD = "Wrong-Passphrase-Sentinel-73"
NEW_PASSWORD = "Brand-New-Passphrase-Sentinel-19"


@pytest.fixture
def every_log_line(caplog):
    """caplog at DEBUG for every logger, including those that do not propagate."""
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    saved = [(logger, logger.level) for logger in loggers]
    extra = []
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            extra.append(logger)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for logger, level in saved:
        logger.setLevel(level)
    for logger in extra:
        logger.removeHandler(caplog.handler)


def formatted(record):
    text = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    return text + " " + " ".join(str(v) for v in getattr(record, "args", ()) or ())


def test_no_secret_or_answer_reaches_a_log_line_or_an_error_page(world, every_log_line, mailoutbox):
    error_pages = []

    def keep(response):
        if response.status_code >= 400:
            error_pages.append(response.content.decode(errors="replace"))
        return response

    # Sign-in: a wrong password, an unknown e-mail, then the right password.
    keep(Client().post(reverse("login"), {"username": world.owner.email, "password": WRONG_PASSWORD}))
    keep(Client().post(reverse("login"), {"username": "nobody@nowhere.example", "password": WRONG_PASSWORD}))
    counselor = Client()
    counselor.post(reverse("login"), {"username": world.owner.email, "password": PASSWORD})
    session_keys = [counselor.cookies[settings.SESSION_COOKIE_NAME].value]
    keep(counselor.get(reverse("assessments:couple", args=[world.couple.pk])))

    # Assign, and both partners open their links.
    assignment, tokens = make_assignment(world.couple)
    partners = {}
    for position, token in tokens.items():
        client = Client()
        welcome = client.get(reverse("assessments:open_link", args=[token]))
        keep(client.get(welcome["Location"]))
        partners[position] = client
        session_keys.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    response_a = assignment.responses.get(partner__position="A")
    response_b = assignment.responses.get(partner__position="B")
    keep(partners["A"].get(reverse("assessments:welcome", args=[response_b.pk])))

    # Answers (including the safety items) are saved.
    items = list(Item.objects.filter(instrument=assignment.instrument).order_by("position"))
    Answer.objects.bulk_create(
        [Answer(response=response_a, item=item, value=item.scale_max, seq=1) for item in items],
    )

    # A replaced link and an unknown link.
    new_token = response_a.issue_link()
    keep(Client().get(reverse("assessments:open_link", args=[tokens["A"]])))
    keep(Client().get(reverse("assessments:open_link", args=["made-up-token-Sentinel-55"])))

    # Password reset all the way.
    Client().post(reverse("password_reset"), {"email": world.colleague.email})
    deliver()  # the worker writes the e-mail (its log lines are checked too)
    link = re.search(r"/accounts/reset/[^\s]+/", mailoutbox[-1].body).group(0)
    reset_token = link.rstrip("/").split("/")[-1]
    resetter = Client()
    form_url = resetter.get(link)["Location"]
    keep(resetter.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD + "x"}))
    resetter.post(form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    keep(Client().get(link))  # the used link, again

    # Two-factor set-up, recovery codes, a wrong code.
    staff = client_for(world.admin)
    staff.get(reverse("two_factor_setup"))
    device = TOTPDevice.objects.get(user=world.admin)
    secrets_2fa = [b32encode(device.bin_key).decode(), device.key]
    done = staff.post(reverse("two_factor_setup"), {"code": code_for(device)})
    recovery = re.findall(r"<li><code>([a-z0-9]+)</code></li>", done.content.decode())
    again = Client()
    again.post(reverse("login"), {"username": world.admin.email, "password": PASSWORD})
    keep(again.post(reverse("two_factor_verify"), {"code": "999999"}))

    # A lockout.
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        keep(Client().post(reverse("login"), {"username": world.colleague.email, "password": WRONG_PASSWORD}))

    secrets = {
        "password": PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "new password": NEW_PASSWORD,
        "link token A": tokens["A"],
        "link token B": tokens["B"],
        "new link token": new_token,
        "reset token": reset_token,
        **{f"second-factor secret {i}": s for i, s in enumerate(secrets_2fa)},
        **{f"recovery code {i}": code for i, code in enumerate(recovery)},
        **{f"session key {i}": key for i, key in enumerate(session_keys)},
        **{f"answered item {item.code}": item.text for item in items},
    }
    assert len(recovery) == 10 and len(error_pages) >= 6

    lines = [formatted(record) for record in every_log_line.records]
    assert any("Gone: /a/[redacted]/" in line for line in lines), "the link-problem log line was not captured"
    assert any("Not Found: /a/[redacted]/" in line for line in lines)
    leaks = [
        f"{what} in log line: {line[:200]}" for line in lines for what, secret in secrets.items() if secret in line
    ]
    leaks += [f"{what} in an error page" for page in error_pages for what, secret in secrets.items() if secret in page]
    assert not leaks, "\n".join(leaks)
    assert timezone.now()  # the flow ran to the end


def test_link_tokens_in_logged_paths_are_redacted():
    from practice.log_filters import redact

    assert redact("Not Found: /a/abcDEF123_-x/") == "Not Found: /a/[redacted]/"
    assert (
        redact('"GET /accounts/reset/MQ/c3k2-abc/ HTTP/1.1" 302') == '"GET /accounts/reset/MQ/[redacted]/ HTTP/1.1" 302'
    )
    assert redact("/accounts/reset/MQ/set-password/") == "/accounts/reset/MQ/set-password/"
    assert redact("/couples/12/") == "/couples/12/"


def test_sql_is_never_logged_even_in_debug_mode():
    # Query parameters would carry answers and password hashes.
    assert logging.getLogger("django.db.backends").getEffectiveLevel() >= logging.INFO


def test_the_development_servers_request_lines_are_redacted_and_still_printed():
    import io

    logger = logging.getLogger("django.server")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    try:
        logger.info('"%s" %s %s', "GET /a/Secret-Token-Sentinel/ HTTP/1.1", "302", "0")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue().strip() == '"GET /a/[redacted]/ HTTP/1.1" 302 0'


def test_every_address_that_carries_a_token_is_redacted():
    from django.urls import reverse as reverse_url

    from practice.log_filters import redact

    from .matrix import ARG_SOURCES, url_patterns

    sentinel = "Token-Sentinel-1234_abc"
    carriers = [p for p in url_patterns() if "token" in p.arg_names]
    assert {p.key for p in carriers} >= {
        "assessments:open_link",
        "practice:invitation_accept",
        "assessments:unsubscribe",
        "password_reset_confirm",
    }
    for pattern in carriers:
        kwargs = {name: sentinel if name == "token" else "MQ" for name in pattern.arg_names if name in ARG_SOURCES}
        path = reverse_url(pattern.key, kwargs=kwargs)
        for line in (
            f"Not Found: {path}",
            f'"GET {path} HTTP/1.1" 404 0',
            f"/accounts/login/?next={path.replace('/', '%2F')}",
        ):
            assert sentinel not in redact(line), f"{pattern.key}: {redact(line)}"
