from django import forms

from .models import Couple


class CoupleForm(forms.ModelForm):
    a_first_name = forms.CharField(label="Partner A first name", max_length=80)
    a_last_name = forms.CharField(label="Partner A last name", max_length=80, required=False)
    a_email = forms.EmailField(label="Partner A e-mail")
    b_first_name = forms.CharField(label="Partner B first name", max_length=80)
    b_last_name = forms.CharField(label="Partner B last name", max_length=80, required=False)
    b_email = forms.EmailField(label="Partner B e-mail")

    class Meta:
        model = Couple
        fields = ["label"]

    def clean(self):
        data = super().clean()
        if data.get("a_email") and data.get("a_email", "").lower() == data.get("b_email", "").lower():
            self.add_error("b_email", "Each partner needs their own e-mail address: their answers are private.")
        return data
