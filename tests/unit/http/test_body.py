"""The body reader: a compressed body is inflated within the cap, whatever its ratio;
encodings we did not ask for, or stacked ones, are refused before a byte is inflated."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import AsyncIterator, Iterable

import httpx
import pytest

from syncd import errors
from syncd.http.body import read_capped

pytestmark = pytest.mark.anyio
BODY = b'{"results": [' + b'{"_id": "a1", "title": "Home"},' * 200 + b"{}]}"
WIRE_CHUNK = 64 * 1024  # what httpcore reads from a socket at once


class Wire(httpx.AsyncByteStream):
    """Raw bytes as they would arrive, in wire-sized chunks; counts what was pulled."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            self.pulled += len(chunk)
            yield chunk


def response(raw: bytes | Iterable[bytes], *headers: tuple[str, str]) -> tuple[httpx.Response, Wire]:
    chunks = (
        [raw[i : i + WIRE_CHUNK] for i in range(0, len(raw), WIRE_CHUNK)] if isinstance(raw, bytes) else raw
    )
    wire = Wire(chunks)
    return httpx.Response(200, headers=list(headers), stream=wire), wire


def zeros_gzipped(total: int) -> Iterable[bytes]:
    """A gzip stream of ``total`` zero bytes, compressed as it is read."""
    packer = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1 << 20)
    for _ in range(total // len(block)):
        out = packer.compress(block)
        if out:
            yield out
    yield packer.flush()


@pytest.mark.parametrize(
    ("encoding", "packed"),
    [
        ("gzip", gzip.compress(BODY)),
        ("x-gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", zlib.compress(BODY, wbits=-zlib.MAX_WBITS)),  # raw deflate, no zlib wrapper
        ("identity", BODY),
    ],
)
async def test_a_compressed_body_arrives_decoded(encoding: str, packed: bytes) -> None:
    resp, _ = response(packed, ("content-encoding", encoding))
    assert await read_capped(resp, 1 << 20) == BODY


async def test_a_body_exactly_at_the_cap_is_kept_one_byte_more_is_refused() -> None:
    resp, _ = response(gzip.compress(BODY), ("content-encoding", "gzip"))
    assert await read_capped(resp, len(BODY)) == BODY
    resp, _ = response(gzip.compress(BODY), ("content-encoding", "gzip"))
    with pytest.raises(errors.PartnerRejected, match="inflates past"):
        await read_capped(resp, len(BODY) - 1)
    resp, _ = response(BODY)
    with pytest.raises(errors.PartnerRejected, match="exceeds"):
        await read_capped(resp, len(BODY) - 1)


async def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    resp, wire = response(BODY, ("content-length", str(len(BODY))))
    with pytest.raises(errors.PartnerRejected, match=f"{len(BODY)} bytes exceeds"):
        await read_capped(resp, 1000)
    assert wire.pulled == 0


async def test_a_gzip_bomb_is_refused_after_inflating_no_more_than_the_cap() -> None:
    """1 GiB of zeros in ~4.7 MB of gzip: refused once the cap is passed, long before the
    end, and no single inflation step produced more than the room left (plus a byte)."""
    cap = 8 << 20
    resp, wire = response(zeros_gzipped(1 << 30), ("content-encoding", "gzip"))
    with pytest.raises(errors.PartnerRejected, match=f"inflates past the {cap}-byte cap"):
        await read_capped(resp, cap)
    assert wire.pulled < 200_000  # a few wire chunks were enough to pass 8 MiB


@pytest.mark.parametrize("encoding", ["gzip, gzip", "gzip,deflate", "br", "zstd", "compress"])
async def test_stacked_or_unrequested_encodings_are_refused_before_inflating(encoding: str) -> None:
    resp, wire = response(gzip.compress(gzip.compress(BODY)), ("content-encoding", encoding))
    with pytest.raises(errors.PartnerRejected, match=r"stacked|not asked for"):
        await read_capped(resp, 1 << 20)
    assert wire.pulled == 0


async def test_stacked_encodings_in_separate_header_lines_are_refused_too() -> None:
    resp, _ = response(gzip.compress(BODY), ("content-encoding", "gzip"), ("content-encoding", "gzip"))
    with pytest.raises(errors.PartnerRejected, match="stacked"):
        await read_capped(resp, 1 << 20)


async def test_a_corrupt_or_cut_compressed_body_is_transient() -> None:
    packed = gzip.compress(BODY)
    resp, _ = response(packed[: len(packed) // 2], ("content-encoding", "gzip"))
    with pytest.raises(errors.PartnerUnavailable, match="ends before its end marker"):
        await read_capped(resp, 1 << 20)
    resp, _ = response(packed[:20] + b"\xff" * 40 + packed[60:], ("content-encoding", "gzip"))
    with pytest.raises(errors.PartnerUnavailable, match="corrupt"):
        await read_capped(resp, 1 << 20)
