"""Couples and partners: the counselor adds, annotates and archives them; the practice admin lists,
moves and deletes them. What a couple answered is the assessments app's (it reads couples, never
the other way round)."""

from django.contrib import messages
from django.db import transaction
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from practice.access import StaffRequest, admin_required, member_required
from practice.models import Membership, audit

from .access import own_couple, practice_couple
from .forms import ArchiveForm, CoupleDeleteForm, CoupleForm, NotesForm, TransferForm
from .models import Couple, Partner

# --- The counselor's couples ------------------------------------------------------------------


@member_required
def couple_create(request: StaffRequest):
    form = CoupleForm(request.POST or None, practice=request.practice)
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
                    display_name=form.cleaned_data[f"{pos}_display_name"],
                    pronouns=form.cleaned_data[f"{pos}_pronouns"],
                    language=form.cleaned_data[f"{pos}_language"] or request.practice.default_language,
                )
            audit(request, "couple.create", couple)
        return redirect("assessments:couple", pk=couple.pk)
    return render(request, "clients/couple_form.html", {"form": form})


@require_POST
@member_required
def couple_notes(request: StaffRequest, pk):
    couple = own_couple(request, pk)
    form = NotesForm(request.POST, instance=couple)
    if form.is_valid():
        form.save()
        audit(request, "couple.notes_edit", couple)
        messages.success(request, "Notes saved.")
    else:
        messages.error(request, "The notes could not be saved; please try again.")
    return redirect("assessments:couple", pk=couple.pk)


@require_POST
@member_required
def couple_archive(request: StaffRequest, pk):
    """Archive a couple (off the caseload, kept with every answer) or bring it back."""
    couple = own_couple(request, pk)
    form = ArchiveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose whether to archive the couple or bring it back.")
        return redirect("assessments:couple", pk=couple.pk)
    archive = form.cleaned_data["action"] == "archive"
    status = Couple.Status.ARCHIVED if archive else Couple.Status.ACTIVE
    if couple.status != status:
        with transaction.atomic():  # with the caseload's row (the couple's post_save)
            couple.status = status
            couple.save(update_fields=["status", "updated_at"])
            audit(request, f"couple.{form.cleaned_data['action']}", couple)
    if archive:
        messages.success(request, f"{couple.label} is archived. Find it under “Archived” in your caseload.")
    else:
        messages.success(request, f"{couple.label} is back in your caseload.")
    return redirect("assessments:couple", pk=couple.pk)


# --- The practice admin: every couple of the practice, without their answers ---------------------


@admin_required
def practice_couples(request: StaffRequest):
    """Every couple of the practice with its counselor: names only, never answers or scores."""
    rows = (
        Couple.objects.filter(practice=request.practice)
        .select_related("counselor__membership")
        .annotate(assignment_count=Count("assignments"))
        .order_by("label")
    )
    return render(request, "practice/couples.html", {"couples": rows})


@admin_required
def couple_delete(request: StaffRequest, pk):
    couple = practice_couple(request, pk)
    form = CoupleDeleteForm(request.POST or None, couple=couple)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            detail = {
                "label_length": len(couple.label),
                "assignments": couple.assignments.count(),
                "counselor": couple.counselor_id,
            }
            audit(request, "couple.delete", couple, **detail)
            couple.delete()
        messages.success(request, "The couple and everything they answered have been deleted.")
        return redirect("clients:practice_couples")
    return render(request, "practice/couple_delete.html", {"couple": couple, "form": form})


@admin_required
def transfer(request: StaffRequest, pk):
    """Move one, some or all of a person's couples to another active counselor."""
    member = get_object_or_404(Membership.objects.for_practice(request.practice).select_related("user"), pk=pk)
    initial = {}
    chosen = request.GET.get("couple", "")
    # ASCII digits only, of a size a database id can have ("²".isdigit() is true, and int() refuses it).
    if chosen.isascii() and chosen.isdigit() and len(chosen) <= 18:
        initial["couples"] = [int(chosen)]
    form = TransferForm(request.POST or None, practice=request.practice, source=member.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        target = form.cleaned_data["to"]
        couples = form.chosen()
        with transaction.atomic():
            for couple in couples:
                # save(), not update(): the couple's post_save moves its caseload row along.
                couple.counselor = target
                couple.save(update_fields=["counselor", "updated_at"])
                audit(request, "couple.transfer", couple, from_user=member.user_id, to_user=target.pk)
        messages.success(request, f"{len(couples)} couple(s) moved to {target.get_full_name()}.")
        return redirect("practice:overview")
    return render(request, "practice/transfer.html", {"member": member, "form": form})
