"""In-office answering: the counselor's "Answer here" and the neutral /here/ page (assessments/office.py)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from practice.access import StaffRequest, member_required
from practice.models import audit
from practice.security import client_address

from .. import office
from ..forms import DeviceForm, OfficeCodeForm
from .counselor import _own_response
from .partner import LINK_KEY, SESSION_KEY, _partner_audit


def _refusal(response, what):
    name = response.partner.name
    if response.answering_closed():
        return f"{name} can no longer answer this administration, so {what}."
    if not response.links.filter(revoked_at__isnull=True).exists():
        return f"{name}'s link is closed. Replace the link first; then {name} can answer here."
    return ""


def _start_office_session(request, response, link):
    """Whatever this device held before (the other partner's visit, the counselor's sign-in) ends here."""
    request.session.flush()
    request.session[SESSION_KEY] = response.pk
    request.session[LINK_KEY] = link.pk
    request.session[office.SESSION_FLAG] = True
    office.touch(request.session)


@member_required
@never_cache
@require_POST
def answer_here(request: StaffRequest, response_pk):
    """Make a one-time code for one partner and show it once (in this reply only, never in a URL)."""
    response = _own_response(request, response_pk)
    refusal = _refusal(response, "no code was made")
    if refusal:
        messages.error(request, refusal)
        return redirect("assessments:couple", pk=response.assignment.couple_id)
    code, row = office.new_code(response, by=request.user)
    audit(request, "response.office_code_created", response, expires_at=row.expires_at.isoformat())
    context = {"response": response, "couple": response.assignment.couple, "code": code, "expires_at": row.expires_at}
    return render(request, "assessments/answer_here.html", context)


def _here_page(request, form, status=200, thanks=False):
    context = {"form": form, "response": None, "thanks": thanks}
    return render(request, "assessments/here.html", context, status=status)


@login_not_required
@never_cache
def here(request):
    """The neutral page of the practice's device: a code opens one partner's response, nothing else shows."""
    if request.method != "POST":
        return _here_page(request, OfficeCodeForm(), thanks=request.session.pop(office.THANKS_KEY, False))
    address = client_address(request)
    form = OfficeCodeForm(request.POST)
    if office.throttled(address):
        form.is_valid()
        form.add_error(None, "Too many codes that did not work. Please wait 15 minutes, or ask your counselor.")
        return _here_page(request, form, 429)
    if not form.is_valid():
        return _here_page(request, form, 400)  # not 6 digits: it cannot open anything, so it is no guess
    response = office.redeem(form.cleaned_data["code"])
    link = response.links.filter(revoked_at__isnull=True).first() if response is not None else None
    if response is None or link is None or response.answering_closed():
        office.count_failure(address)
        form.add_error("code", "This code does not open anything. It may be mistyped, used already, or expired.")
        return _here_page(request, form, 400)
    _start_office_session(request, response, link)
    _partner_audit(request, "response.office_code_used", response)
    return redirect("assessments:welcome", response_id=response.pk)


@login_not_required
@csrf_exempt
@require_POST
def here_end(request):
    """End an office session (the page's idle timer posts here): the device shows /here/ again.

    Like the quick exit it needs no CSRF token: the worst a forged request can do is end a visit.
    """
    if office.is_office_session(request.session):
        request.session.flush()
    return redirect("assessments:here")


@member_required
@never_cache
def device(request: StaffRequest):
    """Mark this browser as the practice's tablet (for "This device"), or stop it being one."""
    marked = office.is_practice_device(request, request.practice)
    form = DeviceForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        mark = form.cleaned_data["action"] == "mark"
        reply = redirect("assessments:device")
        if mark:
            office.mark_device(reply, request.practice)
        else:
            office.unmark_device(reply)
        audit(request, "office.device_marked" if mark else "office.device_unmarked", None)
        messages.success(
            request,
            "This browser is now the practice's tablet."
            if mark
            else "This browser is no longer the practice's tablet.",
        )
        return reply
    status = 400 if form.errors else 200
    return render(request, "assessments/device.html", {"form": form, "marked": marked}, status=status)


@member_required
@never_cache
@require_POST
def this_device(request: StaffRequest, response_pk):
    """Hand this browser (the practice's tablet) to one partner: the counselor's session ends here, theirs begins."""
    response = _own_response(request, response_pk)
    back = redirect("assessments:couple", pk=response.assignment.couple_id)
    refusal = _refusal(response, "this device was not handed over")
    if not refusal and not office.is_practice_device(request, request.practice):
        refusal = "This browser is not marked as the practice's tablet, so you are still signed in here."
    if refusal:
        messages.error(request, refusal)
        return back
    link = response.links.filter(revoked_at__isnull=True).first()
    audit(request, "response.office_device_handed", response)
    _start_office_session(request, response, link)
    _partner_audit(request, "response.office_device_used", response)
    return redirect("assessments:welcome", response_id=response.pk)
