"""The switch every simulator page obeys (billing's IntaSend simulator and network's RouterOS one)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse


def simulators_on(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 unless SIMULATORS_ENABLED, checked on every request (tests switch it in a running process)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.SIMULATORS_ENABLED:
            raise Http404("Simulators are off")
        return view(request, *args, **kwargs)

    return wrapper
