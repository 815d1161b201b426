"""The couples a signed-in person may reach, one helper per meaning. Anything else is a 404."""

from django.http import Http404
from django.shortcuts import get_object_or_404

from practice import prepared
from practice.access import StaffRequest

from .models import Couple, Partner

# Every couple-level page of a counselor starts here: compiled once per process (practice/prepared.py).
_OWN_COUPLE = prepared.Query(
    lambda counselor, practice, couple: Couple.objects.filter(counselor=counselor, practice=practice, pk=couple),
    "counselor",
    "practice",
    "couple",
)
_PARTNERS = prepared.Query(lambda couple: Partner.objects.filter(couple=couple), "couple")
_BIGGEST_ID = 2**63 - 1  # a tampered id past any the database can hold is no couple, not an error


def own_couple(request: StaffRequest, pk):
    """A couple of the signed-in counselor, with its partners: the counselor's clinical view."""
    pk = int(pk)
    couple = (
        _OWN_COUPLE.first(counselor=request.user.pk, practice=request.user.membership.practice_id, couple=pk)
        if 0 < pk <= _BIGGEST_ID
        else None
    )
    if couple is None:
        raise Http404("No couple matches the given query.")
    prepared.prefetched(couple, "partners", _PARTNERS.all(couple=couple.pk))
    return couple


def practice_couple(request: StaffRequest, pk):
    """Any couple of the admin's practice, with counselor and partners: managed, never read clinically."""
    return get_object_or_404(
        Couple.objects.for_practice(request.practice).select_related("counselor").prefetch_related("partners"), pk=pk
    )
