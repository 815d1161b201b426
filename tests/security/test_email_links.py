"""Every link in every e-mail is built from SITE_URL, whatever Host header the request that
caused it carried (a forged Host must not turn a reset or invitation link into the attacker's)."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import client_for, deliver

SITE = "https://practice.example"
FORGED = "attacker.example"
URL = re.compile(r"https?://[^\s\"'<>]+")


@pytest.fixture
def forged_host(settings):
    settings.SITE_URL = SITE
    settings.ALLOWED_HOSTS = ["testserver", FORGED]
    return {"host": FORGED}


def test_every_link_in_every_email_starts_with_site_url_whatever_the_host(world, forged_host, mailoutbox):
    admin, counselor = client_for(world.admin), client_for(world.owner)
    admin.post(reverse("practice:invite"), {"email": "new@riverside.example", "role": "admin"}, headers=forged_host)
    Client().post(reverse("password_reset"), {"email": world.colleague.email}, headers=forged_host)
    due = (timezone.localdate() + timedelta(days=7)).isoformat()
    assigned = counselor.post(
        reverse("assessments:assign", args=[world.couple.pk]), {"due_date": due}, headers=forged_host
    )
    assert assigned.status_code == 302
    deliver()
    # The staff invitation, the password reset and each partner's invitation.
    assert len(mailoutbox) == 4, [m.subject for m in mailoutbox]
    for message in mailoutbox:
        bodies = [message.body] + [content for content, _type in getattr(message, "alternatives", [])]
        links = [link for body in bodies for link in URL.findall(body)]
        assert links, f"no link in {message.subject!r}"
        assert all(link.startswith(SITE + "/") for link in links), (message.subject, links)
        assert all(FORGED not in body for body in bodies)
