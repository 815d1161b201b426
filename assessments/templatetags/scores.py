"""``{{ value|score }}``: every score a page shows, rounded by the one rule (scoring.whole)."""

from django import template

from assessments import scoring

register = template.Library()


@register.filter
def score(value):
    """A 0-100 score (or a change of one) as a whole number, half up: 52.5 shows as 53. None shows as nothing."""
    if value is None or value == "":
        return ""
    return scoring.whole(value)
