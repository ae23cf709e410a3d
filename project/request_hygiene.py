"""Query strings with NUL: refused before any view reads them.

Django's form fields refuse NUL (ProhibitNullCharactersValidator), but the admin's changelist filters
read the query string straight into a query: `?status__exact=%00` reached PostgreSQL ("A string literal
cannot contain NUL") as a 500 with an ERROR traceback. No URL of ours takes a NUL.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.deprecation import MiddlewareMixin


class RefuseNulInQueryStrings(MiddlewareMixin):
    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if "\x00" in request.path or any("\x00" in key or "\x00" in value for key, value in _pairs(request)):
            return HttpResponseBadRequest("NUL characters are not allowed in URLs", content_type="text/plain")
        return None


def _pairs(request: HttpRequest):
    for key, values in request.GET.lists():
        for value in values:
            yield key, value
