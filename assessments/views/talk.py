"""Autosaving a partner's "I'd like to talk about this" on one item (the section form saves it without JavaScript)."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from .. import answering, talk
from ..forms import TalkForm
from .partner import partner_response


def _refused(message, status):
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


@login_not_required
@never_cache
@require_POST
def save_talk(request, response_id):
    """204 when stored, a short 4xx message otherwise, with the same refusals as an answer's autosave."""
    response = partner_response(request, response_id)
    if response is None:
        return _refused("Not saved: please open your personal link again. Your earlier answers are kept.", 403)
    if response.identity_confirmed_at is None or response.consented_at is None:
        return _refused("Not saved: please start from your personal link.", 409)
    closed = response.answering_closed()
    if closed == "submitted":
        return _refused("Not saved: you have already submitted, so this can no longer change.", 409)
    if closed:
        return _refused("Not saved: this link no longer opens. Every answer you gave is kept.", 410)
    form = TalkForm(request.POST, rules=answering.item_rules(response.assignment.instrument_id))
    if not form.is_valid():
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        return _refused(f"Not saved: {errors[0]}", 400)
    data = form.cleaned_data
    stored = talk.save_flag(
        response_id=response.pk, item_id=data["rule"].id, wanted=data["talk"], note=data["note"], seq=data["seq"]
    )
    if not stored:
        return _refused("Not saved: a newer choice for this question was already saved.", 409)
    return HttpResponse(status=204)
