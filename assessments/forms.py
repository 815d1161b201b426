import datetime

from django import forms
from django.utils import timezone

from .answering import DECLINED, MAX_SEQ

MAX_DUE_DAYS = 90


class AssignForm(forms.Form):
    due_date = forms.DateField(
        label="Due date",
        help_text="Each partner's link keeps working for a grace period after this day.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, practice, **kwargs):
        super().__init__(*args, **kwargs)
        self.practice = practice
        self.today = timezone.localdate(timezone=practice.tz)
        default = self.today + datetime.timedelta(days=practice.default_due_days)
        self.fields["due_date"].initial = default
        self.fields["due_date"].widget.attrs.update(
            min=self.today.isoformat(), max=(self.today + datetime.timedelta(days=MAX_DUE_DAYS)).isoformat()
        )

    def clean_due_date(self):
        due = self.cleaned_data["due_date"]
        if due < self.today:
            raise forms.ValidationError("The due date can't be in the past.")
        if due > self.today + datetime.timedelta(days=MAX_DUE_DAYS):
            raise forms.ValidationError(f"Please choose a due date within {MAX_DUE_DAYS} days.")
        return due

    def due_at(self):
        """The end of the chosen day in the practice's time zone."""
        end = datetime.datetime.combine(self.cleaned_data["due_date"], datetime.time(23, 59, 59))
        return timezone.make_aware(end, self.practice.tz)


class ConsentForm(forms.Form):
    understood = forms.BooleanField(
        label="I understand and would like to begin.",
        error_messages={"required": "Please tick the box to say you have read this note."},
    )
    share_summary = forms.TypedChoiceField(
        label="May your counselor later share a summary of your results with your partner?",
        choices=[("yes", "Yes, a summary may be shared"), ("no", "No, keep my results between me and my counselor")],
        coerce=lambda v: v == "yes",
        widget=forms.RadioSelect,
        error_messages={"required": "Please choose whether a summary may be shared."},
    )


def _value_field(choices):
    return forms.ChoiceField(choices=choices, required=False)


def _parse_value(raw):
    return None if raw == DECLINED else int(raw)


class SectionForm(forms.Form):
    """One page of answers, posted as a plain form (the page without JavaScript, or "Save and continue").

    Each item has a value field `item-<code>` and a hidden sequence number `seq-<code>`; the page
    renders the sequence number one above the stored one, so a page left open while the same
    answer was changed elsewhere cannot overwrite the newer choice.
    """

    def __init__(self, *args, page, **kwargs):
        super().__init__(*args, **kwargs)
        self.page = page
        for q in page.questions:
            self.fields[f"item-{q.code}"] = _value_field(q.choices)
            self.fields[f"seq-{q.code}"] = forms.IntegerField(required=False, min_value=1, max_value=MAX_SEQ)

    def answers(self):
        """[(code, value or None, seq)] for every question answered on this post."""
        result = []
        for q in self.page.questions:
            raw = self.cleaned_data.get(f"item-{q.code}")
            if raw:
                seq = self.cleaned_data.get(f"seq-{q.code}") or q.seq + 1
                result.append((q.code, _parse_value(raw), seq))
        return result


class SaveAnswerForm(forms.Form):
    """One autosaved answer: the item's code, its value (1-5 or "declined") and its sequence number."""

    item = forms.CharField(max_length=16)
    value = forms.CharField(max_length=16)
    seq = forms.IntegerField(min_value=1, max_value=MAX_SEQ)

    def __init__(self, *args, rules, **kwargs):
        super().__init__(*args, **kwargs)
        self.rules = rules

    def clean(self):
        data = super().clean()
        code, raw = data.get("item"), data.get("value")
        if code is None or raw is None:
            return data
        rule = self.rules.get(code)
        if rule is None:
            raise forms.ValidationError("This question is not part of your assessment.", code="unknown_item")
        if raw == DECLINED:
            data["answer"] = None
        else:
            try:
                value = int(raw)
            except ValueError:
                value = None
            if value is None or not rule.scale_min <= value <= rule.scale_max:
                raise forms.ValidationError(
                    f"Please choose an answer from {rule.scale_min} to {rule.scale_max}.", code="off_scale"
                )
            data["answer"] = value
        data["rule"] = rule
        return data
