from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import forms, security, views

practice_patterns = (
    [
        path("", views.overview, name="overview"),
        path("invite/", views.invite, name="invite"),
        path("invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation_revoke"),
        path("invitation/<str:token>/", views.invitation_accept, name="invitation_accept"),
        path("people/<int:pk>/role/", views.member_role, name="member_role"),
        path("people/<int:pk>/deactivate/", views.member_deactivate, name="member_deactivate"),
        path("people/<int:pk>/reactivate/", views.member_reactivate, name="member_reactivate"),
        path("settings/", views.practice_settings, name="settings"),
        path("audit/", views.audit_log, name="audit_log"),
        path("audit/export/", views.audit_export, name="audit_export"),
    ],
    "practice",
)

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
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
        auth_views.PasswordResetConfirmView.as_view(form_class=forms.SetPasswordForm),
        name="password_reset_confirm",
    ),
    path("accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("accounts/two-factor/", security.two_factor_setup, name="two_factor_setup"),
    path("accounts/two-factor/verify/", security.two_factor_verify, name="two_factor_verify"),
    path("accounts/two-factor/recovery-codes/", security.two_factor_recovery_codes, name="two_factor_recovery_codes"),
    path("accounts/keep-alive/", security.keep_alive, name="keep_alive"),
    path("practice/", include(practice_patterns)),
]
