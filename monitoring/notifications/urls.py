"""/notifications/ pages."""

from __future__ import annotations

from django.urls import path

from monitoring.notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.subscription_list, name="list"),
    path("<int:subscription_id>/", views.subscription_edit, name="edit"),
    path("<int:subscription_id>/delete/", views.subscription_delete, name="delete"),
]
