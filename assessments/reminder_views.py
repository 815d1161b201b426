"""Counselor actions on reminders, and the partner's public "stop reminders" page."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from clients.views import _couple_for
from practice.access import PracticeRequest, member_required
from practice.models import audit

from . import reminders
from .models import Assignment, Response


class ConfirmForm(forms.Form):
    """An empty form: the POST itself is the confirmation (a mail scanner's GET changes nothing)."""


class PauseForm(forms.Form):
    paused = forms.TypedChoiceField(choices=[("1", "Pause"), ("0", "Resume")], coerce=lambda v: v == "1")


def _response_for(request: PracticeRequest, pk):
    """A partner's response on a couple the signed-in counselor holds; anything else is a 404."""
    return get_object_or_404(
        Response.objects.select_related("partner", "assignment__couple__practice").filter(
            assignment__couple__practice=request.practice, assignment__couple__counselor=request.user
        ),
        pk=pk,
    )


def _panel_or_back(request: PracticeRequest, assignment, couple, notice="", error=False):
    if request.htmx:
        context = {"assignment": assignment, "notice": notice, "notice_is_error": error}
        return render(request, "assessments/_reminders_panel.html", context, status=409 if error else 200)
    (messages.error if error else messages.success)(request, notice)
    return redirect("clients:couple_detail", pk=couple.pk)


@member_required
@require_POST
def remind_now(request: PracticeRequest, response_pk):
    response = _response_for(request, response_pk)
    assignment, couple = response.assignment, response.assignment.couple
    name = response.partner.first_name
    try:
        reminder = reminders.remind_now(response)
    except reminders.RefusedError as refused:
        return _panel_or_back(request, assignment, couple, str(refused), error=True)
    audit(request, "reminder.remind_now", response, reminder=reminder.pk)
    now = timezone.now()
    when = timezone.localtime(reminders.next_send_time(couple.practice, now), couple.practice.tz)
    if when > now:
        notice = f"Reminder to {name} planned: it goes out at {when:%H:%M}, after quiet hours."
    else:
        notice = f"Reminder to {name} is on its way."
    return _panel_or_back(request, assignment, couple, notice)


@member_required
@require_POST
def pause_reminders(request: PracticeRequest, couple_pk):
    couple = _couple_for(request, couple_pk)
    form = PauseForm(request.POST)
    paused = form.cleaned_data["paused"] if form.is_valid() else not couple.reminders_paused
    if reminders.set_paused(couple, paused):
        audit(request, "couple.reminders_paused" if paused else "couple.reminders_resumed", couple)
    couple.reminders_paused = paused
    notice = "Reminders are paused for this couple." if paused else "Reminders are on again for this couple."
    assignment = None
    if request.htmx:
        assignment = (
            Assignment.objects.filter(couple=couple, pk=request.POST.get("assignment") or 0)
            .select_related("couple__practice")
            .first()
        )
        if assignment is not None:
            assignment.couple = couple
    if assignment is None:
        messages.success(request, notice)
        return redirect("clients:couple_detail", pk=couple.pk)
    return _panel_or_back(request, assignment, couple, notice)


def _unsubscribe_problem(request):
    return render(
        request,
        "assessments/link_problem.html",
        {
            "title": "We don't recognise this link",
            "message": "Please open the whole link from your reminder e-mail, or ask your counselor to stop reminders.",
        },
        status=404,
    )


@login_not_required
def unsubscribe(request, token):
    partner = reminders.partner_for_unsubscribe(token)
    if partner is None:
        return _unsubscribe_problem(request)
    form = ConfirmForm(request.POST if request.method == "POST" else None)
    done = partner.reminders_unsubscribed_at is not None
    if request.method == "POST" and form.is_valid():
        if reminders.unsubscribe(partner):
            audit(
                None,
                "partner.reminders_unsubscribed",
                partner,
                practice=partner.couple.practice,
                actor_label="partner (unsubscribe link)",
            )
        return redirect("assessments:unsubscribe", token=token)
    return render(
        request,
        "assessments/unsubscribe.html",
        {"partner": partner, "practice": partner.couple.practice, "form": form, "done": done},
    )
