from django.urls import path

from . import reminder_views, views

app_name = "assessments"
urlpatterns = [
    # The partner's side: a personal link, then pages scoped to that partner's session.
    path("a/<str:token>/", views.open_link, name="open_link"),
    path("respond/<int:response_id>/", views.welcome, name="welcome"),
    path("respond/<int:response_id>/consent/", views.consent, name="consent"),
    path("respond/<int:response_id>/section/<int:index>/", views.section, name="section"),
    path("respond/<int:response_id>/save/", views.save_answer, name="save_answer"),
    path("respond/<int:response_id>/review/", views.review, name="review"),
    path("respond/<int:response_id>/submit/", views.submit, name="submit"),
    path("respond/<int:response_id>/results/", views.results, name="results"),
    path("respond/<int:response_id>/support/", views.support, name="support"),
    # The counselor's actions on a couple's assignment.
    path("couples/<int:couple_pk>/assign/", views.assign, name="assign"),
    path("assignments/<int:assignment_pk>/cancel/", views.cancel, name="cancel"),
    path("responses/<int:response_pk>/resend/", views.resend, name="resend"),
    path("responses/<int:response_pk>/reissue/", views.reissue, name="reissue"),
    # reminders
    path("reminders/responses/<int:response_pk>/remind-now/", reminder_views.remind_now, name="remind_now"),
    path("reminders/couples/<int:couple_pk>/pause/", reminder_views.pause_reminders, name="pause_reminders"),
    path("stop-reminders/<str:token>/", reminder_views.unsubscribe, name="unsubscribe"),
]
