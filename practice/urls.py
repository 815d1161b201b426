from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import forms, security, views

practice_patterns = (
    [
        path("", views.overview, name="overview"),
    ],
    "practice",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=forms.SignInForm, redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password-reset/",
        auth_views.PasswordResetView.as_view(form_class=forms.PasswordResetForm),
        name="password_reset",
    ),
    path("accounts/password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("accounts/two-factor/", security.two_factor_setup, name="two_factor_setup"),
    path("accounts/two-factor/verify/", security.two_factor_verify, name="two_factor_verify"),
    path("accounts/two-factor/recovery-codes/", security.two_factor_recovery_codes, name="two_factor_recovery_codes"),
    path("accounts/keep-alive/", security.keep_alive, name="keep_alive"),
    path("practice/", include(practice_patterns)),
    path("couples/", include("clients.urls")),
    path("", include("assessments.urls")),
    path("django-admin/", admin.site.urls),
]

handler403 = "practice.views.error_403"
