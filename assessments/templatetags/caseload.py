"""``{% caseload_card row %}``: one couple's card of the caseload, rendered once per process for what it shows."""

from django import template

from assessments import caseload

register = template.Library()


@register.simple_tag
def caseload_card(row):
    # A rendered template (SafeString): its own values were escaped when it was rendered.
    return caseload.render_card(row)
