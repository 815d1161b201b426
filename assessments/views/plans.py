"""A couple's measurement plan: starting or changing it, pausing, resuming and ending it (assessments/plans.py)."""

from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clients.access import own_couple
from practice.access import StaffRequest, member_required
from practice.models import audit

from .. import plans
from ..forms import PlanActionForm, PlanForm


def _plan_values(form):
    data = form.cleaned_data
    count = None if data["until_stopped"] else data["administrations"]
    return {"every_weeks": data["every_weeks"], "administrations": count, "due_days": data["due_days"]}


@member_required
def plan(request: StaffRequest, couple_pk):
    """Start the couple's plan, or change the live one (the new rhythm applies from the next administration)."""
    couple = own_couple(request, couple_pk)
    couple.practice = request.practice
    current = plans.live_plan(couple)
    initial = {}
    if current is not None:
        initial = {
            "every_weeks": current.every_weeks,
            "administrations": current.administrations,
            "until_stopped": current.administrations is None,
            "start_on": current.start_on,
            "due_days": current.due_days,
        }
    started = current is not None and current.made > 0
    form = PlanForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        practice=request.practice,
        started=started,
        auto_id="plan_%s",
    )
    if request.method == "POST" and form.is_valid():
        values = _plan_values(form)
        try:
            with transaction.atomic():
                if current is None:
                    made = plans.create(
                        couple=couple, start_on=form.cleaned_data["start_on"], by=request.user, **values
                    )
                    audit(request, "plan.create", made, couple=couple.pk, start_on=made.start_on.isoformat(), **values)
                    notice = f"Planned: every {made.every_weeks} weeks from {made.start_on:%-d %b %Y}."
                else:
                    made = plans.change(current, start_on=form.cleaned_data["start_on"], **values)
                    next_on = made.next_on.isoformat() if made.next_on else None
                    audit(request, "plan.change", made, couple=couple.pk, next_on=next_on, **values)
                    notice = "The plan is changed; it applies from the next assessment."
        except plans.PlanError as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, notice)
            return redirect("assessments:couple", pk=couple.pk)
    status = 400 if form.errors else 200
    context = {"couple": couple, "form": form, "plan": current}
    return render(request, "assessments/plan.html", context, status=status)


@member_required
@require_POST
def plan_action(request: StaffRequest, couple_pk):
    """Pause, resume or end the couple's live plan (audited)."""
    couple = own_couple(request, couple_pk)
    couple.practice = request.practice
    current = plans.live_plan(couple)
    form = PlanActionForm(request.POST)
    if current is None or not form.is_valid():
        messages.error(request, "There is no plan to change, so nothing was changed.")
        return redirect("assessments:couple", pk=couple.pk)
    action = form.cleaned_data["action"]
    with transaction.atomic():
        if action == "end":
            changed = plans.end(current)
        else:
            changed = plans.set_paused(current, action == "pause")
        if changed:
            audit(request, f"plan.{action}", current, couple=couple.pk)
    words = {
        "pause": "The plan is paused: no assessment is sent until you resume it.",
        "resume": "The plan goes on from its next day on the rhythm.",
        "end": "The plan has ended. Assessments already sent stay as they are.",
    }
    if changed:
        messages.success(request, words[action])
    else:
        messages.info(request, "Nothing changed.")
    return redirect("assessments:couple", pk=couple.pk)
