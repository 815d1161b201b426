from django import forms
from django.contrib.auth import forms as auth_forms


class SignInForm(auth_forms.AuthenticationForm):
    """Django's sign-in form; its one error message never tells whether the e-mail exists."""

    username = auth_forms.UsernameField(
        label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )
    error_messages = {
        "invalid_login": "That e-mail and password do not match an active account. Check both and try again.",
        "inactive": "That e-mail and password do not match an active account. Check both and try again.",
    }


class PasswordResetForm(auth_forms.PasswordResetForm):
    email = forms.EmailField(label="E-mail", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
