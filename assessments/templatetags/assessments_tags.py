from django import template

from ..forms import AssignForm
from ..models import Assignment

register = template.Library()


@register.simple_tag(takes_context=True)
def assignment_panel(context, couple):
    """The couple's open assignment (responses and partners loaded), or an assign form when there is none."""
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
