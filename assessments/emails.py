"""The e-mails partners and counselors receive. Never a clinical detail in any of them."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone


def send(*, to, subject, template, context):
    context = {**context, "site_url": settings.SITE_URL}
    text = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[to])
    message.attach_alternative(html, "text/html")
    message.send()


def partner_subject(reminder):
    practice = reminder.response.assignment.couple.practice.name
    if reminder.kind == "invitation":
        return f"{practice}: your Connection Assessment"
    return f"{practice}: a reminder about your Connection Assessment"


def send_partner_reminder(reminder, token):
    response = reminder.response
    assignment = response.assignment
    send(
        to=response.partner.email,
        subject=partner_subject(reminder),
        template="partner_reminder",
        context={
            "reminder": reminder,
            "partner": response.partner,
            "practice": assignment.couple.practice,
            "counselor": assignment.couple.counselor,
            "due_at": timezone.localtime(assignment.due_at, assignment.couple.practice.tz).date(),  # the practice's day
            "link": response.link_url(token),
        },
    )


def send_counselor_both_finished(assignment):
    couple = assignment.couple
    send(
        to=couple.counselor.email,
        subject=f"{couple.practice.name}: both partners have finished",
        template="counselor_both_finished",
        context={"assignment": assignment, "couple": couple, "counselor": couple.counselor},
    )


def send_counselor_safety_alert(couple):
    # Subject and body say only that a response needs attention: no name, no answer, no level.
    send(
        to=couple.counselor.email,
        subject=f"{couple.practice.name}: a response needs your attention",
        template="counselor_safety_alert",
        context={"couple_pk": couple.pk, "counselor": couple.counselor, "practice": couple.practice},
    )
