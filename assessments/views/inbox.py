"""The counselor's inbox page and its "Acknowledge" and "Dismiss" (assessments/inbox.py)."""

from django import forms
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from practice.access import StaffRequest, member_required
from practice.models import audit

from .. import inbox
from ..models import InboxMark
from .counselor import _own_assignment


class MarkForm(forms.Form):
    how = forms.ChoiceField(choices=[(InboxMark.How.ACKNOWLEDGED, "Acknowledge"), (InboxMark.How.DISMISSED, "Dismiss")])


@member_required
def inbox_page(request: StaffRequest):
    """What needs the counselor, safety alerts first."""
    found = inbox.items(request.user)
    audit(request, "inbox.view", None, items=len(found))
    return render(request, "assessments/inbox.html", {"items": found, "kinds": inbox.KIND})


@member_required
@require_POST
def inbox_mark(request: StaffRequest, assignment_pk, kind):
    """Acknowledge or dismiss one item of the inbox: it leaves the inbox and the header's count."""
    if kind not in inbox.KIND.values:
        raise Http404("No such kind of inbox item.")
    assignment = _own_assignment(request, assignment_pk)
    form = MarkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Please choose Acknowledge or Dismiss.")
        return redirect("assessments:inbox")
    how = form.cleaned_data["how"]
    if inbox.mark(assignment, kind, how, by=request.user):
        audit(request, f"inbox.{how}", assignment, kind=kind)
        messages.success(request, f"{assignment.couple.label}: {inbox.KIND(kind).label.lower()} — {how}.")
    return redirect("assessments:inbox")
