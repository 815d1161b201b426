from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.staticfiles import finders
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from assessments import charts, comparison, reminders
from assessments.models import Assignment
from assessments.views import partner_response
from practice.access import PracticeRequest, member_required
from practice.models import audit

from . import caseload as caseload_data
from .forms import ArchiveForm, CaseloadFilterForm, CoupleForm, ItemCategoryForm, NotesForm
from .models import Couple, Partner

# Partials other parts of the site provide; the couple page includes them once they exist.


def _couple_for(request: PracticeRequest, pk):
    """A couple of the signed-in counselor; anything else is a 404, never a hint it exists."""
    return get_object_or_404(
        Couple.objects.filter(practice=request.practice, counselor=request.user).prefetch_related("partners"),
        pk=pk,
    )


def _assignment_for(request: PracticeRequest, pk, assignment_pk):
    """An administration of one of the counselor's couples, reached through that couple's URL."""
    return get_object_or_404(
        Assignment.objects.select_related("couple", "instrument").filter(
            couple__practice=request.practice, couple__counselor=request.user, couple__pk=pk
        ),
        pk=assignment_pk,
    )


@member_required
def caseload(request: PracticeRequest):
    """Every couple of the counselor: who is overdue, who just finished, each partner's latest index."""
    filters = CaseloadFilterForm(request.GET).values()
    couples = caseload_data.caseload_queryset(request.user, **filters)
    page = caseload_data.page_of(couples, request.GET.get("page"))
    caseload_data.attach_overview(page.object_list)
    context = {
        "form": CaseloadFilterForm(filters),
        "page": page,
        "couples": page.object_list,
        "filtered": bool(filters["status"] or filters["q"]),
    }
    template = (
        "clients/caseload.html#couple-list"
        if request.htmx and not request.htmx.history_restore_request
        else "clients/caseload.html"
    )
    return render(request, template, context)


@member_required
def couple_create(request: PracticeRequest):
    form = CoupleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            couple = form.save(commit=False)
            couple.practice = request.practice
            couple.counselor = request.user
            couple.save()
            for pos in ("a", "b"):
                Partner.objects.create(
                    couple=couple,
                    position=pos.upper(),
                    first_name=form.cleaned_data[f"{pos}_first_name"],
                    last_name=form.cleaned_data[f"{pos}_last_name"],
                    email=form.cleaned_data[f"{pos}_email"],
                )
            audit(request, "couple.create", couple)
        return redirect("clients:couple_detail", pk=couple.pk)
    return render(request, "clients/couple_form.html", {"form": form})


@member_required
def couple_detail(request: PracticeRequest, pk):
    """Both partners, every administration in order, the trend and the latest reliable change."""
    couple = _couple_for(request, pk)
    assignments = comparison.administrations(couple)
    names = {p.position: p.first_name for p in couple.partners.all()}
    trend = comparison.trend(assignments)
    changes = comparison.latest_changes(assignments)
    couple.practice = request.practice
    reminders_by_response = reminders.reminders_by_response(assignments) if assignments else {}
    for a in assignments:
        a.couple = couple  # the panels read the practice through it: no query per administration
        a.reminders_by_response = reminders_by_response
        a.partner_rows = [(r, *caseload_data.progress(r, a.n_items), comparison.score_of(r)) for r in a.responses.all()]
    audit(request, "couple.view", couple)
    return render(
        request,
        "clients/couple_detail.html",
        {
            "couple": couple,
            "assignments": assignments,
            "names": names,
            "charts": charts.trend_charts(trend, names, changes),
            "changes": comparison.describe_changes(changes, names, trend["keys"]),
            "notes_form": NotesForm(instance=couple),
            "explain": comparison.EXPLAIN,
        },
    )


@require_POST
@member_required
def couple_notes(request: PracticeRequest, pk):
    couple = _couple_for(request, pk)
    form = NotesForm(request.POST, instance=couple)
    if form.is_valid():
        form.save()
        audit(request, "couple.notes_edit", couple)
        messages.success(request, "Notes saved.")
    else:
        messages.error(request, "The notes could not be saved; please try again.")
    return redirect("clients:couple_detail", pk=couple.pk)


@require_POST
@member_required
def couple_archive(request: PracticeRequest, pk):
    """Archive a couple (off the caseload, kept with every answer) or bring it back."""
    couple = _couple_for(request, pk)
    form = ArchiveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose whether to archive the couple or bring it back.")
        return redirect("clients:couple_detail", pk=couple.pk)
    archive = form.cleaned_data["action"] == "archive"
    status = Couple.Status.ARCHIVED if archive else Couple.Status.ACTIVE
    if couple.status != status:
        couple.status = status
        couple.save(update_fields=["status", "updated_at"])
        audit(request, f"couple.{form.cleaned_data['action']}", couple)
    if archive:
        messages.success(request, f"{couple.label} is archived. Find it under “Archived” in your caseload.")
    else:
        messages.success(request, f"{couple.label} is back in your caseload.")
    return redirect("clients:couple_detail", pk=couple.pk)


def _comparison_context(assignment):
    """The report and its charts, or None with the waiting context when someone is still answering."""
    responses = comparison.responses_by_position(assignment)
    if not comparison.both_finished(responses):
        return None, {
            "assignment": assignment,
            "couple": assignment.couple,
            "waiting": comparison.still_answering(responses),
        }
    report = comparison.build_report(assignment, responses)
    names = {"A": report.a.partner.first_name, "B": report.b.partner.first_name}
    return report, {
        "assignment": assignment,
        "couple": assignment.couple,
        "report": report,
        "names": names,
        "bars": charts.comparison_bars(report, names),
        "explain": comparison.EXPLAIN,
    }


@member_required
def comparison_view(request: PracticeRequest, pk, assignment_pk):
    """Both partners side by side for one administration, down to each statement."""
    assignment = _assignment_for(request, pk, assignment_pk)
    report, context = _comparison_context(assignment)
    if report is None:
        audit(request, "comparison.view", assignment, ready=False)
        return render(request, "clients/comparison_waiting.html", context)
    filters = ItemCategoryForm(request.GET).values()
    report.mark_safety_seen()
    audit(request, "comparison.view", assignment, category=filters["category"])
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
    template = (
        "clients/comparison.html#items"
        if request.htmx and not request.htmx.history_restore_request
        else "clients/comparison.html"
    )
    return render(request, template, context)


@member_required
def comparison_pdf(request: PracticeRequest, pk, assignment_pk):
    """The comparison report as a PDF, drawn from the same template with the print stylesheet."""
    import weasyprint

    assignment = _assignment_for(request, pk, assignment_pk)
    report, context = _comparison_context(assignment)
    if report is None:
        return render(request, "clients/comparison_waiting.html", context)
    context.update({"base_template": "clients/pdf_base.html", "pdf": True, "groups": report.grouped()})
    html = render_to_string("clients/comparison.html", context, request=request)
    stylesheet = weasyprint.CSS(filename=finders.find("css/site.css"))
    pdf = weasyprint.HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf(stylesheets=[stylesheet])
    audit(request, "comparison.pdf", assignment)
    name = f"comparison-{slugify(assignment.couple.label) or 'couple'}-{assignment.assigned_at:%Y-%m-%d}.pdf"
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _release_state(assignment, report):
    """Whether the summary can be released, and if not, why (in words for the counselor)."""
    if assignment.released_at is not None:
        return {"released": True, "allowed": False, "reason": ""}
    refused = [r.partner.first_name for r in (report.a, report.b) if r.share_consent is not True]
    if refused:
        names = " and ".join(refused)
        return {
            "released": False,
            "allowed": False,
            "reason": f"{names} did not agree to share a summary, so it cannot be released.",
        }
    return {"released": False, "allowed": True, "reason": ""}


@require_POST
@member_required
def release(request: PracticeRequest, pk, assignment_pk):
    """Share the domain-level summary with both partners (both finished and both agreed)."""
    assignment = _assignment_for(request, pk, assignment_pk)
    responses = comparison.responses_by_position(assignment)
    target = redirect("clients:comparison", pk=pk, assignment_pk=assignment.pk)
    if not comparison.both_finished(responses):
        names = " and ".join(p.first_name for p in comparison.still_answering(responses))
        messages.error(request, f"The summary can be released once both have finished; {names} is still answering.")
        return target
    refused = [r.partner.first_name for r in responses.values() if r.share_consent is not True]
    if refused:
        messages.error(request, f"{' and '.join(refused)} did not agree to share a summary, so it stays private.")
        return target
    released = Assignment.objects.filter(pk=assignment.pk, released_at__isnull=True).update(released_at=timezone.now())
    if released:
        audit(request, "comparison.release", assignment)
        messages.success(request, "The summary is released: each partner can now see it through their own link.")
    else:
        messages.info(request, "The summary was already released.")
    return target


@login_not_required
def shared_summary(request, response_id):
    """The released summary, seen by one partner through their own link: domain level only."""
    response = partner_response(request, response_id)
    if response is None:
        return render(
            request,
            "assessments/link_problem.html",
            {
                "title": "Please open your personal link",
                "message": "For your privacy this page opens only from the link in your e-mail.",
            },
            status=403,
        )
    assignment = response.assignment
    responses = comparison.responses_by_position(assignment)
    shared = (
        assignment.released_at is not None
        and comparison.both_finished(responses)
        and all(r.share_consent is True for r in responses.values())
    )
    if not shared:
        return render(
            request,
            "assessments/link_problem.html",
            {
                "title": "No summary has been shared yet",
                "message": "Your counselor shares a summary once you have both finished and both agreed to it.",
            },
            status=404,
        )
    summary = comparison.shared_summary(assignment, responses)
    audit(
        request,
        "summary.view",
        assignment,
        practice=assignment.couple.practice,
        actor_label=f"partner {response.partner.position}",
    )
    return render(
        request,
        "clients/shared_summary.html",
        {
            "summary": summary,
            "response": response,
            "bars": charts.shared_bars(summary),
            "explain": comparison.EXPLAIN["shared"],
        },
    )
