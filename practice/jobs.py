"""The practice's own outbox jobs: a staff invitation and a password-reset e-mail.

Each is written by the request that asks for it (``enqueue_*``) and sent by a worker, so a slow or
absent mail server never holds up a page. Links are built from SITE_URL, never the request's host,
and tokens are re-derived when the e-mail is written: no secret sits in a row.
"""

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from . import mail, outbox
from .models import INVITATION_HOURS, Invitation, User


def enqueue_invitation(invitation):
    return outbox.enqueue(
        "staff_invitation",
        f"invitation:{invitation.pk}",
        payload={"invitation": invitation.pk},
        practice=invitation.practice,
    )


@outbox.handler("staff_invitation", channel="mail")
def send_invitation(job, now):
    invitation = (
        Invitation.objects.select_related("practice", "invited_by").filter(pk=job.payload["invitation"]).first()
    )
    if invitation is None or not invitation.is_usable:
        return  # revoked, used or expired before it could be sent: nothing to send
    url = settings.SITE_URL + reverse("practice:invitation_accept", args=[invitation.token()])
    context = {"invitation": invitation, "url": url, "inviter": invitation.invited_by, "hours": INVITATION_HOURS}
    mail.send(
        to=invitation.email,
        subject=f"Join {invitation.practice.name} on Connection Practice",
        text=render_to_string("practice/invitation_email.txt", context),
        headers={"Message-ID": f"<invitation-{invitation.pk}@{mail.domain()}>"},
    )


def enqueue_password_reset(user, *, now=None):
    """One e-mail per request; the token is made when the e-mail is written (and expires as Django's do)."""
    now = now or timezone.now()
    return outbox.enqueue(
        "password_reset", f"password-reset:{user.pk}:{now.timestamp()}", payload={"user": user.pk}, now=now
    )


@outbox.handler("password_reset", channel="mail")
def send_password_reset(job, now):
    user = User.objects.filter(pk=job.payload["user"], is_active=True).first()
    if user is None:
        return
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {"user": user, "url": settings.SITE_URL + path}
    mail.send(
        to=user.email,
        subject=render_to_string("registration/password_reset_subject.txt", context),
        text=render_to_string("registration/password_reset_email.html", context),
    )
