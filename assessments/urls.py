from django.urls import path

from . import views

app_name = "assessments"
urlpatterns = [
    path("a/<str:token>/", views.open_link, name="open_link"),
    path("respond/<int:response_id>/", views.welcome, name="welcome"),
]
