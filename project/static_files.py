"""WhiteNoise (the app's static files: docs/production-settings.md) made for daphne's event loop.

WhiteNoise's own middleware is synchronous only: in an ASGI server, Django would then run every
request, not just the static ones, through its single thread for synchronous code. And its file
responses can only be read synchronously: Django would read each whole file into memory and warn
("StreamingHttpResponse must consume synchronous iterators") on every process's first static
request. Under ASGI this middleware looks files up and opens them in a thread, streams them block
by block, and hands every other request straight on to the asynchronous chain.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import IO

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import FileResponse, HttpRequest, HttpResponseBase
from whitenoise.middleware import WhiteNoiseMiddleware

BLOCK_SIZE = 64 * 1024


async def _blocks(file: IO[bytes] | None) -> AsyncIterator[bytes]:
    # No file: a 304 or a HEAD answer, which has headers only.
    if file is None:
        return
    while block := await asyncio.to_thread(file.read, BLOCK_SIZE):
        yield block


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]) -> None:
        super().__init__(get_response)
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self._async:
            return self._acall(request)
        return super().__call__(request)

    def _static_response(self, request: HttpRequest) -> FileResponse | None:
        # With DEBUG (autorefresh) files are looked up on disk on each request, else in a table.
        static_file = self.find_file(request.path_info) if self.autorefresh else self.files.get(request.path_info)
        return None if static_file is None else self.serve(static_file, request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        if request.path_info.startswith(self.static_prefix):
            response = await asyncio.to_thread(self._static_response, request)
            if response is not None:
                # Django closes the file (registered when the response was built) once it is sent.
                response.streaming_content = _blocks(response.file_to_stream)
                return response
        return await self.get_response(request)
