from django import template

from ..forms import AssignForm
from ..models import Assignment

register = template.Library()


@register.simple_tag(takes_context=True)
def assignment_panel(context, couple):
    """The couple's open assignment (responses and partners loaded), or an assign form when there is none.

    On the couple page the administrations are in the context already (newest first, responses and
    partners loaded): the open one is taken from there, at no query.
    """
    loaded = context.get("assignments")
    if loaded is not None:
        assignment = next((a for a in loaded if a.status == Assignment.Status.OPEN), None)
    else:
        assignment = (
            Assignment.objects.open()
            .filter(couple=couple)
            .prefetch_related("responses__partner")
            .order_by("-assigned_at")
            .first()
        )
    form = None
    if assignment is None:
        form = AssignForm(practice=context["request"].practice, auto_id="assign_%s")
    return {"assignment": assignment, "form": form}
