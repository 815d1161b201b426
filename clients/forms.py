from django import forms
from django.conf import settings

from practice.forms import ModelChoiceField, ModelMultipleChoiceField
from practice.models import User

from .models import Couple


def _missing(what):
    return {"required": f"Write {what}.", "invalid": f"Write {what} as name@example.com."}


class CoupleForm(forms.ModelForm):
    a_first_name = forms.CharField(
        label="Partner A first name", max_length=80, error_messages=_missing("partner A's first name")
    )
    a_last_name = forms.CharField(label="Partner A last name", max_length=80, required=False)
    a_email = forms.EmailField(label="Partner A e-mail", error_messages=_missing("partner A's e-mail address"))
    b_first_name = forms.CharField(
        label="Partner B first name", max_length=80, error_messages=_missing("partner B's first name")
    )
    b_last_name = forms.CharField(label="Partner B last name", max_length=80, required=False)
    b_email = forms.EmailField(label="Partner B e-mail", error_messages=_missing("partner B's e-mail address"))
    # How the counselor's pages speak of each partner, and the language each partner answers in.
    a_display_name = forms.CharField(
        label="Partner A is called", max_length=80, required=False, help_text="Leave empty to use the first name."
    )
    a_pronouns = forms.CharField(label="Partner A pronouns", max_length=40, required=False, help_text="Optional.")
    a_language = forms.ChoiceField(label="Partner A answers in", choices=settings.LANGUAGES, required=False)
    b_display_name = forms.CharField(
        label="Partner B is called", max_length=80, required=False, help_text="Leave empty to use the first name."
    )
    b_pronouns = forms.CharField(label="Partner B pronouns", max_length=40, required=False, help_text="Optional.")
    b_language = forms.ChoiceField(label="Partner B answers in", choices=settings.LANGUAGES, required=False)

    class Meta:
        model = Couple
        fields = ["label"]
        labels = {"label": "Name for this couple"}
        help_texts = {"label": "How the couple appears in your caseload, e.g. Taylor & Jordan."}
        error_messages = {"label": {"required": "Write a name for this couple."}}

    def __init__(self, *args, practice=None, **kwargs):
        super().__init__(*args, **kwargs)
        if practice is not None:
            for pos in ("a", "b"):
                self.fields[f"{pos}_language"].initial = practice.default_language

    def clean(self):
        data = super().clean()
        if data.get("a_email") and data.get("a_email", "").lower() == data.get("b_email", "").lower():
            self.add_error("b_email", "Each partner needs their own e-mail address: their answers are private.")
        return data


class NotesForm(forms.ModelForm):
    class Meta:
        model = Couple
        fields = ["notes"]
        labels = {"notes": "Notes"}
        widgets = {"notes": forms.Textarea(attrs={"rows": 6})}


class ArchiveForm(forms.Form):
    action = forms.ChoiceField(choices=[("archive", "Archive"), ("unarchive", "Bring back to the caseload")])


class TransferForm(forms.Form):
    """Move one, some or all of a counselor's couples to another active counselor of the practice."""

    to = ModelChoiceField(queryset=User.objects.none(), label="New counselor", empty_label="Choose…")
    all_couples = forms.BooleanField(required=False, label="All of their couples")
    couples = ModelMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple, label="Or only these couples"
    )

    def __init__(self, *args, practice, source, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source
        self.fields["to"].queryset = (
            User.objects.filter(membership__practice=practice, is_active=True)
            .exclude(pk=source.pk)
            .order_by("full_name", "email")
        )
        self.fields["couples"].queryset = Couple.objects.filter(practice=practice, counselor=source).order_by("label")

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("all_couples") and not cleaned.get("couples"):
            raise forms.ValidationError("Tick “All of their couples” or choose at least one couple.")
        return cleaned

    def chosen(self):
        if self.cleaned_data.get("all_couples"):
            return list(self.fields["couples"].queryset)
        return list(self.cleaned_data["couples"])


class CoupleDeleteForm(forms.Form):
    confirm = forms.CharField(label="Type the couple's name to confirm", max_length=120)

    def __init__(self, *args, couple, **kwargs):
        super().__init__(*args, **kwargs)
        self.couple = couple

    def clean_confirm(self):
        value = self.cleaned_data["confirm"].strip()
        if value != self.couple.label:
            raise forms.ValidationError(f"Type “{self.couple.label}” exactly to delete this couple.")
        return value
