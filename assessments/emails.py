"""The e-mails partners and counselors receive. Never a clinical detail in any of them.

Every e-mail carries a Message-ID derived from the row it comes from, so the rare second copy (a
worker killed after the mail server accepted it, docs/background-work.md) has the same Message-ID
as the first and mail providers and clients can fold the two.
"""

from email.utils import formataddr, parseaddr

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from practice import mail
from practice.models import Membership

from .answering import language_of


def mail_domain():
    return mail.domain()


def send(*, to, subject, template, context, headers=None, from_email=None, language=None):
    """Render and send one e-mail; dates and times read in the practice's time zone (workers run in UTC).

    Rendered in ``language`` (the recipient's), or the site's language for staff: always set
    explicitly, since a worker process has no request to take a language from.
    """
    context = {**context, "site_url": settings.SITE_URL}
    practice = context.get("practice")
    with (
        timezone.override(practice.tz if practice is not None else None),
        translation.override(language or settings.LANGUAGE_CODE),
    ):
        text = render_to_string(f"emails/{template}.txt", context)
        html = render_to_string(f"emails/{template}.html", context)
    mail.send(to=to, subject=subject, text=text, html=html, headers=headers, from_email=from_email)


def partner_subject(reminder):
    """Neutral on purpose: whoever else reads the partner's mailbox learns only who wrote."""
    practice = reminder.response.assignment.couple.practice.name
    if reminder.kind == "invitation":
        return _("A message from %(practice)s") % {"practice": practice}
    if reminder.kind == "overdue":
        return _("Still open: your questionnaire from %(practice)s") % {"practice": practice}
    return _("A reminder from %(practice)s") % {"practice": practice}


def practice_sender(practice):
    """The From of a partner's e-mail: the practice's name, at the site's own address."""
    return formataddr((mail.one_line(practice.name), parseaddr(settings.DEFAULT_FROM_EMAIL)[1]))


def reminder_message_id(reminder):
    return f"<reminder-{reminder.pk}-{reminder.kind}-{reminder.sequence}@{mail_domain()}>"


def send_partner_reminder(reminder, token, unsubscribe):
    response = reminder.response
    assignment = response.assignment
    practice = assignment.couple.practice
    headers = {"Message-ID": reminder_message_id(reminder), "List-Unsubscribe": f"<{unsubscribe}>"}
    language = language_of(response)
    with translation.override(language):
        subject = partner_subject(reminder)
    send(
        to=response.partner.email,
        language=language,
        subject=subject,
        template="partner_reminder",
        context={
            "reminder": reminder,
            "partner": response.partner,
            "practice": practice,
            "counselor": assignment.couple.counselor,
            "due_at": assignment.due_at,
            "link": response.link_url(token),
            "unsubscribe_url": unsubscribe,
        },
        headers=headers,
        from_email=practice_sender(practice),
    )


def send_partner_shared(response, token, sequence):
    """ "Your counselor shared something with you", through the partner's own link; nothing more."""
    assignment = response.assignment
    practice = assignment.couple.practice
    language = language_of(response)
    with translation.override(language):
        subject = _("Something new from %(practice)s") % {"practice": practice.name}
    send(
        to=response.partner.email,
        language=language,
        subject=subject,
        template="partner_shared",
        context={
            "partner": response.partner,
            "practice": practice,
            "counselor": assignment.couple.counselor,
            "link": response.link_url(token),
        },
        headers={"Message-ID": f"<shared-{response.pk}-{sequence}@{mail_domain()}>"},
        from_email=practice_sender(practice),
    )


def _couple_url(couple):
    return settings.SITE_URL + reverse("assessments:couple", args=[couple.pk])


def send_counselor_both_finished(assignment):
    couple = assignment.couple
    send(
        to=couple.counselor.email,
        subject=f"{couple.practice.name}: both partners have finished",
        template="counselor_both_finished",
        context={"assignment": assignment, "couple": couple, "counselor": couple.counselor, "url": _couple_url(couple)},
        headers={"Message-ID": f"<both-finished-{assignment.pk}@{mail_domain()}>"},
    )


def send_counselor_overdue(assignment):
    couple = assignment.couple
    practice = couple.practice
    waiting = [r.partner for r in assignment.responses.select_related("partner") if r.submitted_at is None]
    send(
        to=couple.counselor.email,
        subject=f"{practice.name}: an assessment is past its due date",
        template="counselor_overdue",
        context={
            "assignment": assignment,
            "couple": couple,
            "counselor": couple.counselor,
            "practice": practice,
            "waiting": waiting,
            "due_at": assignment.due_at,
            "url": _couple_url(couple),
        },
        headers={"Message-ID": f"<overdue-{assignment.pk}@{mail_domain()}>"},
    )


def send_counselor_safety_alert(alert):
    """Subject and body say only that a response needs attention: no name, no answer, no level."""
    response = alert.response
    assignment = response.assignment
    couple = assignment.couple
    url = settings.SITE_URL + reverse("assessments:comparison", args=[couple.pk, assignment.pk]) + f"#alert-{alert.pk}"
    send(
        to=couple.counselor.email,
        subject=f"{couple.practice.name}: a response needs your attention",
        template="counselor_safety_alert",
        context={"url": url, "counselor": couple.counselor, "practice": couple.practice},
        headers={"Message-ID": f"<safety-alert-{alert.pk}-{alert.level}@{mail_domain()}>"},
    )


def send_admin_alert_waiting(alert, hours):
    """To each active admin of the practice: an alert has waited; no name, no couple, no content."""
    practice = alert.response.assignment.couple.practice
    admins = Membership.objects.for_practice(practice).filter(role=Membership.Role.ADMIN, user__is_active=True)
    url = settings.SITE_URL + reverse("practice:overview")
    for membership in admins.select_related("user"):
        send(
            to=membership.user.email,
            subject=f"{practice.name}: an alert is waiting for a counselor",
            template="admin_alert_waiting",
            context={"admin": membership.user, "practice": practice, "hours": hours, "url": url},
            headers={"Message-ID": f"<alert-waiting-{alert.pk}-{alert.level}-{membership.user_id}@{mail_domain()}>"},
        )
