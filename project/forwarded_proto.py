"""X-Forwarded-Proto counts only when a trusted proxy sent the request.

Django's SECURE_PROXY_SSL_HEADER believes the header from any peer: a client talking plain HTTP
straight to daphne could claim HTTPS and so skip the redirect to HTTPS and receive Secure cookies
over plain HTTP. This middleware, ahead of SecurityMiddleware, drops the header unless the TCP peer
is one of settings.TRUSTED_PROXIES (the same list that vouches for X-Forwarded-For).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils.deprecation import MiddlewareMixin

from project.client_address import _parse, _trusted


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the request's TCP peer is one of settings.TRUSTED_PROXIES."""
    peer = _parse(request.META.get("REMOTE_ADDR") or "")
    return bool(settings.TRUSTED_PROXIES) and peer is not None and _trusted(peer)


class ForwardedProtoFromTrustedProxiesOnly(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> None:
        if settings.SECURE_PROXY_SSL_HEADER is None:
            return
        header = settings.SECURE_PROXY_SSL_HEADER[0]
        if header in request.META and not from_trusted_proxy(request):
            del request.META[header]
