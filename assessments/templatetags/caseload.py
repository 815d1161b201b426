"""``{% caseload_cards rows %}``: the caseload's cards, each rendered once per process for what it shows."""

from django import template
from django.utils.safestring import mark_safe

from assessments import caseload

register = template.Library()


@register.simple_tag
def caseload_cards(rows):
    # Rendered templates (SafeStrings): their own values were escaped when each was rendered. One tag
    # for the page's list, not one per card: the cards themselves come from render_card's cache.
    return mark_safe("".join(caseload.render_card(row) for row in rows))  # noqa: S308
