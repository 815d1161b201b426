from django.urls import path

from . import reminder_views, views

app_name = "assessments"
urlpatterns = [
    path("a/<str:token>/", views.open_link, name="open_link"),
    path("respond/<int:response_id>/", views.welcome, name="welcome"),
    # reminders
    path("reminders/responses/<int:response_pk>/remind-now/", reminder_views.remind_now, name="remind_now"),
    path("reminders/couples/<int:couple_pk>/pause/", reminder_views.pause_reminders, name="pause_reminders"),
    path("stop-reminders/<str:token>/", reminder_views.unsubscribe, name="unsubscribe"),
]
