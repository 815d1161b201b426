from django.contrib.auth.decorators import login_not_required
from django.shortcuts import redirect, render
from django.utils import timezone

from .models import Response, ResponseLink, hash_token

SESSION_KEY = "partner_response_id"


def partner_response(request, response_id):
    """The response this browser's partner session is scoped to, or None."""
    if request.session.get(SESSION_KEY) != response_id:
        return None
    return (
        Response.objects.select_related("partner", "assignment__couple__practice", "assignment__couple__counselor")
        .filter(pk=response_id)
        .first()
    )


def _link_problem(request, title, message, status):
    return render(request, "assessments/link_problem.html", {"title": title, "message": message}, status=status)


@login_not_required
def open_link(request, token):
    """Exchange a personal link's token for a partner session, then continue on a URL without it."""
    link = (
        ResponseLink.objects.select_related("response__assignment__couple__practice", "response__partner")
        .filter(token_hash=hash_token(token))
        .first()
    )
    if link is None:
        return _link_problem(
            request,
            "We don't recognise this link",
            "Please check that you opened the whole link from your e-mail, or ask your counselor for a new one.",
            404,
        )
    assignment = link.response.assignment
    counselor_hint = "Your counselor can send you a new link; every answer you already gave is kept."
    if link.revoked_at is not None:
        return _link_problem(request, "This link has been replaced", counselor_hint, 410)
    if assignment.status == assignment.Status.CANCELLED:
        return _link_problem(request, "This assessment was cancelled", "Your counselor cancelled it.", 410)
    if link.response.submitted_at is None and timezone.now() > assignment.link_expires_at:
        return _link_problem(request, "This link has expired", counselor_hint, 410)
    request.session.cycle_key()
    request.session[SESSION_KEY] = link.response.pk
    return redirect("assessments:welcome", response_id=link.response.pk)


@login_not_required
def welcome(request, response_id):
    response = partner_response(request, response_id)
    if response is None:
        return _link_problem(
            request,
            "Please open your personal link",
            "For your privacy this page opens only from the link in your e-mail.",
            403,
        )
    return render(request, "assessments/welcome.html", {"response": response})
