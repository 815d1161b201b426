"""The counselor's pages: the caseload, each couple's administrations, the comparison, and the actions
on an administration (assign, cancel, links, reminders, release)."""

from datetime import timedelta

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from clients.access import own_couple
from clients.forms import NotesForm
from clients.models import Couple
from practice import prepared
from practice.access import StaffRequest, member_required
from practice.models import Job, audit

from .. import charts, comparison, inbox, office, pdf, plans, reminders, undelivered, workflows
from ..caseload import attach_overview, caseload_queryset, cursor, page_of, progress
from ..forms import AssignForm, CaseloadFilterForm, ItemCategoryForm, PauseForm, ReleaseForm
from ..models import Assignment, InboxMark, Instrument, MeasurementPlan, Reminder, Response, SafetyAlert


def _page_or_part(request, template, part, context):
    """The whole page, or only its named partial for an htmx update (never for a history restore,
    which needs the whole page back)."""
    if request.htmx and not request.htmx.history_restore_request:
        template = f"{template}#{part}"
    return render(request, template, context)


# Every administration-level page of a counselor starts here: compiled once per process
# (practice/prepared.py), with and without the couple of the URL.
_OWN_ASSIGNMENT = prepared.Query(
    lambda counselor, practice, assignment: Assignment.objects.filter(
        couple__counselor=counselor, couple__practice=practice, pk=assignment
    ).select_related("couple", "instrument"),
    "counselor",
    "practice",
    "assignment",
)
_OWN_COUPLE_ASSIGNMENT = prepared.Query(
    lambda counselor, practice, assignment, couple: Assignment.objects.filter(
        couple__counselor=counselor, couple__practice=practice, pk=assignment, couple=couple
    ).select_related("couple", "instrument"),
    "counselor",
    "practice",
    "assignment",
    "couple",
)
_BIGGEST_ID = 2**63 - 1  # a tampered id past any the database can hold is a 404, not an error


def _own_assignment(request: StaffRequest, assignment_pk, couple_pk=None):
    """An administration of one of the counselor's couples (reached through that couple's URL when given)."""
    ids = [int(assignment_pk)] + ([] if couple_pk is None else [int(couple_pk)])
    if not all(0 < pk <= _BIGGEST_ID for pk in ids):
        raise Http404("No administration matches the given query.")
    mine = {"counselor": request.user.pk, "practice": request.user.membership.practice_id, "assignment": ids[0]}
    if couple_pk is None:
        assignment = _OWN_ASSIGNMENT.first(**mine)
    else:
        assignment = _OWN_COUPLE_ASSIGNMENT.first(**mine, couple=ids[1])
    if assignment is None:
        raise Http404("No administration matches the given query.")
    assignment.couple.practice = request.practice  # the counselor's own practice: no query to read its settings
    return assignment


def _own_response(request: StaffRequest, response_pk):
    """A partner's response on one of the counselor's couples."""
    return get_object_or_404(
        Response.objects.for_counselor(request.user).select_related("partner", "assignment__couple__practice"),
        pk=response_pk,
    )


# --- The caseload, the couple page and the comparison ----------------------------------------------


@member_required
def caseload(request: StaffRequest):
    """Every couple of the counselor: who is overdue, who just finished, each partner's latest index."""
    filters = CaseloadFilterForm(request.GET).values()
    couples = caseload_queryset(request.user, **filters)
    after = cursor(request.GET.get("after"))
    following = caseload_queryset(request.user, **filters, after=after) if after is not None else None
    page = page_of(couples, request.GET.get("page"), following=following)
    attach_overview(page.object_list)
    context = {
        "form": CaseloadFilterForm(filters),
        "page": page,
        "couples": page.object_list,
        "filtered": bool(filters["status"] or filters["q"]),
    }
    if not request.htmx:
        context["undelivered"] = undelivered.for_counselor(request.user, request.practice)
    partial = bool(request.htmx and not request.htmx.history_restore_request)
    # Every partner's index, change and safety chip: a view of clinical data, htmx updates included.
    # The search text is not kept (it may be a client's name); only that there was one.
    audit(
        request,
        "caseload.view",
        None,
        page=page.number,
        status=filters["status"],
        sort=filters["sort"],
        searched=bool(filters["q"]),
        htmx=partial,
    )
    return _page_or_part(request, "clients/caseload.html", "couple-list", context)


@member_required
def couple(request: StaffRequest, pk):
    """Both partners, every administration in order, the trend and the latest reliable change."""
    couple = own_couple(request, pk)
    couple.practice = request.practice  # read by every panel: no query per administration
    assignments = comparison.administrations(couple)
    names = {p.position: p.name for p in couple.partners.all()}
    trend = comparison.trend(assignments)
    changes = comparison.latest_changes(assignments)
    panels = reminders.panels(assignments, couple=couple.pk) if assignments else {}  # all of the couple's
    for a in assignments:
        a.couple = couple
        a.reminder_panels = panels[a.pk]
        a.partner_rows = [(r, *progress(r, a.n_items), comparison.score_of(r)) for r in a.responses.all()]
    open_assignment = next((a for a in assignments if a.status == Assignment.Status.OPEN), None)
    form = None if open_assignment else AssignForm(practice=request.practice, auto_id="assign_%s")
    audit(request, "couple.view", couple)
    return render(
        request,
        "clients/couple_detail.html",
        {
            "couple": couple,
            "assignments": assignments,
            "names": names,
            "change_over_time": charts.change_over_time(
                # One administration is a dot per chart, not a trend: the page says when trends appear.
                charts=charts.trend_charts(trend, names, changes) if len(trend["points"]) >= 2 else [],
                changes=comparison.describe_changes(changes, names, trend["keys"]),
                names=names,
                one_administration=len(trend["points"]) == 1,
                explain=comparison.EXPLAIN,
            ),
            "notes_form": NotesForm(instance=couple),
            "explain": comparison.EXPLAIN,
            "panel": {"assignment": open_assignment, "form": form},
            "undelivered": undelivered.for_couple(couple),
            "plan": _plan_card(couple),
            "this_device": office.is_practice_device(request, request.practice),
        },
    )


# Read on every view of a couple's page: compiled once per process (practice/prepared.py).
_LATEST_PLAN = prepared.Query(
    lambda couple: MeasurementPlan.objects.filter(couple=couple).order_by("-created_at", "-pk")[:1], "couple"
)


def _plan_card(couple):
    """The couple's live plan (or the latest ended one) with its calendar: two queries.

    A live plan is always the latest: a new plan can only start once the previous one has ended."""
    latest = _LATEST_PLAN.first(couple=couple.pk)
    return {
        "plan": latest,
        "calendar": plans.calendar(latest) if latest else [],
        "upcoming": plans.upcoming(latest) if latest else [],
    }


def _open_alerts(request: StaffRequest, couple):
    """The couple's safety alerts the counselor has not acknowledged yet (any administration)."""
    return SafetyAlert.objects.for_counselor(request.user).unacknowledged().filter(response__assignment__couple=couple)


@member_required
def comparison_view(request: StaffRequest, pk, assignment_pk):
    """Both partners side by side for one administration, down to each statement."""
    assignment = _own_assignment(request, assignment_pk, couple_pk=pk)
    report, context = comparison.page_context(assignment)
    comparison.mark_safety_seen(context["safety"])
    if report is None:
        audit(request, "comparison.view", assignment, ready=False)
        return render(request, "clients/comparison_waiting.html", context)
    filters = ItemCategoryForm(request.GET).values()
    audit(request, "comparison.view", assignment, category=filters["category"])
    if inbox.mark_reviewed(assignment, by=request.user):
        audit(request, "inbox.reviewed", assignment, kind=InboxMark.Kind.NOT_REVIEWED)
    context.update(
        {
            "base_template": "base.html",
            "category_form": ItemCategoryForm(filters),
            "category": filters["category"],
            "groups": report.grouped(filters["category"]),
            "counts": report.category_counts(),
            "release": _release_state(assignment, report),
        }
    )
    return _page_or_part(request, "clients/comparison.html", "items", context)


@member_required
def comparison_pdf(request: StaffRequest, pk, assignment_pk):
    """The comparison report as a PDF, drawn from the same template with the print stylesheet:
    the file a worker laid out when both finished, or a new one when the page changed since
    (assessments/pdf.py)."""
    assignment = _own_assignment(request, assignment_pk, couple_pk=pk)
    content = pdf.file_of(assignment)
    if content is None:
        return render(request, "clients/comparison_waiting.html", comparison.page_context(assignment)[1])
    audit(request, "comparison.pdf", assignment)
    name = f"comparison-{slugify(assignment.couple.label) or 'couple'}-{assignment.assigned_at:%Y-%m-%d}.pdf"
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _release_state(assignment, report):
    """What the release card shows: shared or not, why not, changes of mind, results for the partners."""
    responses = {"A": report.a, "B": report.b}
    practice = assignment.couple.practice
    return {
        "released": assignment.released_at is not None,
        "shared": assignment.summary_is_shared(responses),
        "reason": assignment.release_refusal(responses),
        "changed": [r for r in responses.values() if r.sharing_changed_at is not None],
        "results_wait": practice.results_visibility == practice.ResultsVisibility.AFTER_RELEASE,
        "results_waiting": [r.partner for r in responses.values() if not r.may_see_results()],
    }


@require_POST
@member_required
def release(request: StaffRequest, pk, assignment_pk):
    """Share the domain-level summary with both partners (both finished and both agreed)."""
    assignment = _own_assignment(request, assignment_pk, couple_pk=pk)
    responses = comparison.responses_by_position(assignment)
    target = redirect("assessments:comparison", pk=pk, assignment_pk=assignment.pk)
    form = ReleaseForm(request.POST)
    confirmed = form.is_valid() and form.cleaned_data["confirm_risk"]
    open_alerts = list(_open_alerts(request, assignment.couple).select_related("response__partner"))
    needs_confirmation = assignment.released_at is None and not assignment.release_refusal(responses)
    if open_alerts and not confirmed and needs_confirmation:
        context = {"assignment": assignment, "couple": assignment.couple, "alerts": open_alerts}
        return render(request, "assessments/release_confirm.html", context, status=409)
    try:
        with transaction.atomic():
            released = workflows.release_summary(assignment, responses)
            if released:
                audit(request, "comparison.release", assignment, open_alerts=len(open_alerts))
    except workflows.RefusedError as refused:
        messages.error(request, str(refused))
        return target
    if released:
        messages.success(request, "The summary is shared: each partner can now see it through their own link.")
    else:
        messages.info(request, "The summary was already shared.")
    return target


@require_POST
@member_required
def withdraw(request: StaffRequest, pk, assignment_pk):
    """Stop sharing the summary; each partner's page then says nothing has been shared."""
    assignment = _own_assignment(request, assignment_pk, couple_pk=pk)
    with transaction.atomic():
        if workflows.withdraw_summary(assignment):
            audit(request, "comparison.withdraw", assignment)
            messages.success(request, "The summary is no longer shared. Neither partner can open it now.")
        else:
            messages.info(request, "The summary was not shared, so nothing changed.")
    return redirect("assessments:comparison", pk=pk, assignment_pk=assignment.pk)


@require_POST
@member_required
def share_results(request: StaffRequest, pk, assignment_pk):
    """Let each partner see their own results (practices that show them at the feedback session)."""
    assignment = _own_assignment(request, assignment_pk, couple_pk=pk)
    responses = comparison.responses_by_position(assignment)
    with transaction.atomic():
        partners = workflows.share_results(assignment, responses)
        if partners:
            audit(request, "response.results_shared", assignment, partners=[p.position for p in partners])
    if partners:
        names = " and ".join(p.name for p in partners)
        messages.success(request, f"{names} can now see their own results through their own link.")
    else:
        messages.info(request, "Nothing changed: results are shared with each partner who has finished.")
    return redirect("assessments:comparison", pk=pk, assignment_pk=assignment.pk)


@require_POST
@member_required
def acknowledge_alert(request: StaffRequest, alert_pk):
    """The counselor has seen a safety alert and takes it from here (audited; the caseload stops putting it first)."""
    alert = get_object_or_404(
        SafetyAlert.objects.for_counselor(request.user).select_related("response__assignment"), pk=alert_pk
    )
    assignment = alert.response.assignment
    with transaction.atomic():
        if workflows.acknowledge_alert(alert, by=request.user):
            audit(request, "safety_alert.acknowledge", alert, level=alert.level)
            messages.success(
                request, "Marked as seen. The alert stays on this page; the caseload no longer puts it first."
            )
        else:
            messages.info(request, "This alert was already marked as seen.")
    return redirect("assessments:comparison", pk=assignment.couple_id, assignment_pk=assignment.pk)


# --- Assigning, cancelling, links ------------------------------------------------------------------


@member_required
def assign(request: StaffRequest, couple_pk):
    """Assign the current Connection Assessment to a couple with a due date."""
    couple = own_couple(request, couple_pk)
    form = AssignForm(request.POST if request.method == "POST" else None, practice=request.practice)
    open_assignment = couple.assignments.open().first()
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # Lock the couple so a double click cannot create two open assignments.
            Couple.objects.select_for_update().filter(pk=couple.pk).first()
            open_assignment = couple.assignments.open().first()
            partners = list(couple.partners.all())
            if open_assignment is not None:
                form.add_error(None, "This couple already has an open assessment. Cancel it first to assign a new one.")
            elif couple.status != Couple.Status.ACTIVE:
                form.add_error(None, "This couple is archived. Make them active again to assign an assessment.")
            elif len(partners) != 2:
                form.add_error(None, "Both partners need a name and an e-mail address before you can assign.")
            else:
                assignment, _tokens = workflows.assign(
                    couple=couple, instrument=Instrument.current(), due_at=form.due_at(), by=request.user
                )
                audit(request, "assignment.create", assignment, couple=couple.pk)
                messages.success(
                    request,
                    f"Assigned. Invitations are on their way to {partners[0].name} and {partners[1].name}.",
                )
                return redirect("assessments:couple", pk=couple.pk)
    status = 400 if form.errors else 200
    context = {"couple": couple, "form": form, "open_assignment": open_assignment}
    return render(request, "assessments/assign.html", context, status=status)


@member_required
@require_POST
def cancel(request: StaffRequest, assignment_pk):
    assignment = _own_assignment(request, assignment_pk)
    with transaction.atomic():
        if workflows.cancel(assignment):
            audit(request, "assignment.cancel", assignment)
            messages.success(request, "The assessment was cancelled. The partners' links no longer open it.")
        else:
            messages.info(request, "This assessment was no longer open, so nothing changed.")
    return redirect("assessments:couple", pk=assignment.couple_id)


def _refuse_invitation(request, response):
    """Why a partner cannot be sent an invitation now, or None."""
    if response.assignment.status != Assignment.Status.OPEN:
        return "This assessment is no longer open."
    if response.submitted_at is not None:
        return f"{response.partner.name} has already submitted."
    return None


@member_required
@require_POST
def resend(request: StaffRequest, response_pk):
    """E-mail a partner their invitation again, with the same link."""
    response = _own_response(request, response_pk)
    recent = response.reminders.filter(
        kind=Reminder.Kind.INVITATION, due_at__gte=timezone.now() - timedelta(minutes=1)
    ).exists()
    if reason := _refuse_invitation(request, response):
        messages.error(request, reason)
    elif recent:
        messages.warning(request, f"An invitation went to {response.partner.name} a moment ago; it was not sent twice.")
    else:
        with transaction.atomic():
            workflows.resend_invitation(response)
            audit(request, "response.invitation_resend", response)
        messages.success(request, f"The invitation was sent to {response.partner.name} again.")
    return redirect("assessments:couple", pk=response.assignment.couple_id)


@member_required
@require_POST
def reissue(request: StaffRequest, response_pk):
    """Revoke a partner's link (it stops working at once, sessions included) and e-mail a new one."""
    response = _own_response(request, response_pk)
    if reason := _refuse_invitation(request, response):
        messages.error(request, reason)
    else:
        with transaction.atomic():
            workflows.reissue_link(response)
            audit(request, "response.link_reissue", response)
        messages.success(
            request,
            f"{response.partner.name}'s old link no longer works. A new link is on its way; "
            "every answer already given is kept.",
        )
    return redirect("assessments:couple", pk=response.assignment.couple_id)


@member_required
@require_POST
def end_access(request: StaffRequest, response_pk):
    """Close a partner's link now, submitted or not (a phone in the wrong hands): their sessions end too."""
    response = _own_response(request, response_pk)
    with transaction.atomic():
        ended = workflows.end_access(response)
        if ended:
            audit(request, "response.access_ended", response)
    name = response.partner.name
    if ended:
        messages.success(
            request,
            f"{name}'s link no longer opens anything, on any device. Every answer is kept"
            + ("; “Replace link” sends a new one." if response.submitted_at is None else "."),
        )
    else:
        messages.info(request, f"{name}'s link was already closed.")
    return redirect("assessments:couple", pk=response.assignment.couple_id)


# --- Reminders and messages not delivered -----------------------------------------------------------


@member_required
@require_POST
def retry_message(request: StaffRequest, job_pk):
    """Try again to deliver a message that failed (one of the counselor's couples'): audited."""
    job = get_object_or_404(Job.objects.filter(practice=request.practice, kind__in=undelivered.MAIL_KINDS), pk=job_pk)
    entries = undelivered.describe([job])
    if not entries:
        raise Http404("No such message.")
    entry = entries[0]
    couple = own_couple(request, entry.couple_id)  # the counselor's own couples only
    with transaction.atomic():
        retried = undelivered.retry(job)
        if retried:
            audit(request, "message.retry", job, couple=couple.pk, kind=job.kind)
    if retried:
        messages.success(request, f"Trying again: {entry.what}. This page shows if it still cannot be delivered.")
    else:
        messages.info(request, f"{entry.what}: already being tried again.")
    if request.POST.get("back") == "caseload":
        return redirect("assessments:caseload")
    return redirect("assessments:couple", pk=couple.pk)


def _panel_or_back(request: StaffRequest, couple, assignment_pk, notice="", error=False):
    """The reminders panel of one administration (for htmx), or back to the couple page with a message."""
    assignment = None
    if request.htmx and assignment_pk:
        assignment = next(iter(comparison.administrations(couple, pk=assignment_pk)), None)
    if assignment is None:
        (messages.error if error else messages.success)(request, notice)
        return redirect("assessments:couple", pk=couple.pk)
    couple.practice = request.practice
    assignment.couple = couple
    assignment.reminder_panels = reminders.panels([assignment])[assignment.pk]
    context = {"assignment": assignment, "notice": notice, "notice_is_error": error}
    return render(request, "assessments/_reminders_panel.html", context, status=409 if error else 200)


@member_required
@require_POST
def remind_now(request: StaffRequest, response_pk):
    response = _own_response(request, response_pk)
    couple = own_couple(request, response.assignment.couple_id)
    name = response.partner.name
    try:
        with transaction.atomic():
            reminder = workflows.remind_now(response)
            audit(request, "reminder.remind_now", response, reminder=reminder.pk)
    except workflows.RefusedError as refused:
        return _panel_or_back(request, couple, response.assignment_id, str(refused), error=True)
    now = timezone.now()
    when = timezone.localtime(reminders.next_send_time(request.practice, now), request.practice.tz)
    if when > now:
        notice = f"Reminder to {name} planned: it goes out at {when:%H:%M}, after quiet hours."
    else:
        notice = f"Reminder to {name} is on its way."
    return _panel_or_back(request, couple, response.assignment_id, notice)


@member_required
@require_POST
def pause_reminders(request: StaffRequest, couple_pk):
    couple = own_couple(request, couple_pk)
    form = PauseForm(request.POST)
    if not form.is_valid():
        # A malformed request changes nothing and says so (never toggles on a guess).
        messages.error(request, "That request was not understood, so reminders were not changed. Try again.")
        if request.htmx:
            return HttpResponseClientRedirect(reverse("assessments:couple", args=[couple.pk]))
        return redirect("assessments:couple", pk=couple.pk)
    paused = form.cleaned_data["paused"]
    with transaction.atomic():
        if workflows.set_paused(couple, paused):
            audit(request, "couple.reminders_paused" if paused else "couple.reminders_resumed", couple)
    couple.reminders_paused = paused
    notice = "Reminders are paused for this couple." if paused else "Reminders are on again for this couple."
    return _panel_or_back(request, couple, form.cleaned_data.get("assignment"), notice)
