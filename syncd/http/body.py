"""A response body read into memory, never past its cap, however it was compressed.

httpx's own decoders inflate each wire chunk whole: one 64 KB chunk of a gzip bomb is
~64 MB before any cap can look at it, and a stacked ``gzip, gzip`` multiplies that again.
Here the raw bytes are inflated with zlib's ``max_length``, so no call produces more than
the room left under the cap (plus one byte, to notice the overflow), and the event loop
gets a turn between slices of a large inflation. Encodings we did not ask for, or more
than one, are refused before a byte is inflated.
"""

from __future__ import annotations

import zlib

import anyio.lowlevel
import httpx

from syncd import errors

# What ``PartnerClient`` asks for in Accept-Encoding, and so all that a body may use.
ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
# Output of one zlib call: large enough that a normal page inflates in one or two, small
# enough that the loop is never held for long by a body inflating towards the cap.
_SLICE = 1 << 20


def _wbits(headers: httpx.Headers) -> int | None:
    """The zlib window bits for the body's one encoding, None for none."""
    codings = [c.strip().lower() for c in headers.get_list("content-encoding", split_commas=True)]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        stacked = ", ".join(codings)
        raise errors.PartnerRejected(f"response body with stacked encodings {stacked!r}; one is accepted")
    wbits = _WBITS.get(codings[0])
    if wbits is None:
        raise errors.PartnerRejected(
            f"response body in {codings[0]!r}, which was not asked for ({ACCEPT_ENCODING})"
        )
    return wbits


class _Inflater:
    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._z = zlib.decompressobj(wbits)
        self._started = False

    def inflate(self, data: bytes, limit: int) -> tuple[bytes, bytes]:
        """(at most ``limit`` bytes of output, the input not consumed yet)."""
        try:
            out = self._z.decompress(data, limit)
        except zlib.error:
            if self._started or self._wbits != zlib.MAX_WBITS:
                raise
            # "deflate" sent raw, without its zlib wrapper, as some servers do (httpx too
            # accepts both).
            self._wbits = -zlib.MAX_WBITS
            self._z = zlib.decompressobj(self._wbits)
            out = self._z.decompress(data, limit)
        self._started = True
        return out, self._z.unconsumed_tail

    @property
    def finished(self) -> bool:
        return self._z.eof


async def read_capped(response: httpx.Response, cap: int) -> bytes:
    """The whole body, decoded. Refused (``PartnerRejected``: retrying cannot help) past
    ``cap`` decoded bytes or in an encoding we refuse; a corrupt or cut compressed stream
    is ``PartnerUnavailable``, retried like a truncated body."""
    if response.is_stream_consumed:
        # Built in memory with its content (an in-process transport such as tests'
        # MockTransport): httpx has decoded it already, and nothing arrives from a network.
        if len(response.content) > cap:
            raise errors.PartnerRejected(f"response body exceeds the {cap}-byte cap")
        return response.content
    declared = response.headers.get("content-length")
    wbits = _wbits(response.headers)
    if wbits is None and declared and declared.isdigit() and int(declared) > cap:
        raise errors.PartnerRejected(f"response body of {declared} bytes exceeds the {cap}-byte cap")
    chunks: list[bytes] = []
    size = 0
    inflater = _Inflater(wbits) if wbits is not None else None
    try:
        async for raw in response.aiter_raw():
            if inflater is None:
                size += len(raw)
                if size > cap:
                    raise errors.PartnerRejected(f"response body exceeds the {cap}-byte cap")
                chunks.append(raw)
                continue
            data = raw
            while True:
                out, data = inflater.inflate(data, min(cap - size + 1, _SLICE))
                size += len(out)
                if size > cap:
                    raise errors.PartnerRejected(f"response body inflates past the {cap}-byte cap")
                if out:
                    chunks.append(out)
                # A full slice may leave output pending inside zlib even with no input left.
                if not data and len(out) < _SLICE:
                    break
                await anyio.lowlevel.checkpoint()
        if inflater is not None and not inflater.finished:
            raise errors.PartnerUnavailable("compressed response body ends before its end marker")
    except zlib.error as exc:
        raise errors.PartnerUnavailable(f"corrupt compressed response body: {exc}") from exc
    return b"".join(chunks)
