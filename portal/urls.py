"""``/portal/…``: the reference captive portal for an operator's public key, and its two assets."""

from django.urls import path

from portal import views

app_name = "portal"

urlpatterns = [
    path("assets/<str:name>", views.asset, name="asset"),
    path("<str:public_key>/", views.page, name="page"),
]
