"""Autosaving a partner's "I'd like to talk about this" on one item (the section form saves it without JavaScript)."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from .. import answering, talk
from ..forms import TalkForm
from .partner import save_refused, saving_refusal


@login_not_required
@never_cache
@require_POST
def save_talk(request, response_id):
    """204 when stored, a short 4xx message otherwise, with the same refusals as an answer's autosave."""
    response, refused = saving_refusal(request, response_id)
    if refused:
        return refused
    form = TalkForm(request.POST, rules=answering.item_rules(response.assignment.instrument_id))
    if not form.is_valid():
        errors = [e for field_errors in form.errors.values() for e in field_errors]
        return save_refused(f"Not saved: {errors[0]}", 400)
    data = form.cleaned_data
    stored = talk.save_flag(
        response_id=response.pk, item_id=data["rule"].id, wanted=data["talk"], note=data["note"], seq=data["seq"]
    )
    if not stored:
        return save_refused("Not saved: a newer choice for this question was already saved.", 409)
    return HttpResponse(status=204)
