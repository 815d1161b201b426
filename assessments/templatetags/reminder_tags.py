from django import template

from assessments import reminders

register = template.Library()


@register.simple_tag
def reminders_panel(assignment):
    """Per partner: reminder lines, failures and whether "Remind now" is possible (two queries)."""
    return reminders.panel(assignment)
