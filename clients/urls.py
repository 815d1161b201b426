from django.urls import path

from . import views

app_name = "clients"
urlpatterns = [
    path("", views.caseload, name="caseload"),
    path("new/", views.couple_create, name="couple_create"),
    path("<int:pk>/", views.couple_detail, name="couple_detail"),
]
