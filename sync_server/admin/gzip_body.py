"""Long downloads (the sales CSV) gzipped for clients that accept it, in a worker thread.

A month of a school's sales is a 41 MB CSV; gzip at level 1 makes it about 7 MB, which matters
on a school office's network and costs about 0.2 s of CPU. aiohttp's own compression uses
zlib's default level 6, about three times the CPU for a few percent less; on two cores shared
with the database that CPU was the export's rate. zlib releases the GIL, so compressing in a
thread overlaps with the event loop reading the next rows.
"""

from __future__ import annotations

import asyncio
import zlib

from aiohttp import web

LEVEL = 1
GZIP_WBITS = 16 + zlib.MAX_WBITS  # the gzip container, not bare deflate


def accepts_gzip(request: web.Request) -> bool:
    """``Accept-Encoding`` names gzip, or else ``*``, without ``q=0`` (RFC 9110 12.5.3)."""
    weights: dict[str, bool] = {}
    for item in request.headers.get("Accept-Encoding", "").split(","):
        coding, *params = (part.strip().lower() for part in item.split(";"))
        weights.setdefault("gzip" if coding == "x-gzip" else coding, _weight(params) > 0)
    return weights.get("gzip", weights.get("*", False))


def _weight(params: list[str]) -> float:
    for param in params:
        key, _, value = param.replace(" ", "").partition("=")
        if key == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0  # a weight we cannot read is no acceptance
    return 1.0


class GzipBody:
    """Writes a prepared-later response's body, gzipped when the client accepts it.

    Call before ``response.prepare`` (it sets the headers), then :meth:`write` and
    :meth:`finish`."""

    def __init__(self, request: web.Request, response: web.StreamResponse) -> None:
        self.response = response
        self.compressor = (zlib.compressobj(LEVEL, zlib.DEFLATED, GZIP_WBITS)
                           if accepts_gzip(request) else None)
        response.headers["Vary"] = "Accept-Encoding"
        if self.compressor is not None:
            response.headers["Content-Encoding"] = "gzip"

    async def write(self, data: bytes) -> None:
        if self.compressor is None:
            await self.response.write(data)
            return
        packed = await asyncio.to_thread(self.compressor.compress, data)
        if packed:
            await self.response.write(packed)

    async def finish(self) -> None:
        if self.compressor is not None:
            await self.response.write(self.compressor.flush())
        await self.response.write_eof()
