"""``/portal/…``: the reference captive portal for an operator's public key (its assets are static files)."""

from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("<str:public_key>/", views.page, name="page"),
]
