from django.contrib import admin
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from billing.views import intasend_webhook
from project.health import healthz
from project.views import graphql_view

urlpatterns = [
    path("admin/", admin.site.urls),
    # Bearer tokens and public keys, not cookies, authenticate API calls: no CSRF surface.
    path("graphql/", csrf_exempt(graphql_view())),
    path("payments/webhook/", intasend_webhook, name="intasend-webhook"),
    path("healthz/", healthz, name="healthz"),
]
