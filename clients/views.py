from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render

from practice.access import PracticeRequest, member_required
from practice.models import audit

from .forms import CoupleForm
from .models import Couple, Partner


def _couple_for(request: PracticeRequest, pk):
    """A couple of the signed-in counselor; anything else is a 404, never a hint it exists."""
    return get_object_or_404(
        Couple.objects.filter(practice=request.practice, counselor=request.user).prefetch_related("partners"),
        pk=pk,
    )


@member_required
def caseload(request: PracticeRequest):
    couples = Couple.objects.for_counselor(request.user).active().prefetch_related("partners").order_by("label")
    return render(request, "clients/caseload.html", {"couples": couples})


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
    couple = _couple_for(request, pk)
    audit(request, "couple.view", couple)
    return render(request, "clients/couple_detail.html", {"couple": couple})
