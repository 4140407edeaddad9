"""Traffic recorded over real loopback HTTP replays offline, byte for byte, without secrets."""

from __future__ import annotations

import gzip
from pathlib import Path

import anyio.abc
import httpx
import orjson
import pytest

from syncd.http.recording import PLACEHOLDER, NotRecorded, RecordingTransport, ReplayTransport
from tests.integration.http.scripted import partner_transport, read_head, scripted

pytestmark = pytest.mark.anyio

TOKEN = b"eyJ-live-token-7f3a"
SECRET = "s3cret-client-value"
PAGE = orjson.dumps({"results": [{"_id": "a1", "title": "Loft"}], "count": 1})


async def partner(stream: anyio.abc.ByteStream, n: int) -> None:
    """Answers a token request (gzip, as some partners do) and pages, on one connection."""
    buffered = b""
    while True:
        while b"\r\n\r\n" not in buffered:
            buffered += await read_head(stream) if not buffered else await stream.receive()
        head, _, buffered = buffered.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        while len(buffered) < length:
            buffered += await stream.receive()
        buffered = buffered[length:]
        if head.startswith(b"POST /token"):
            body = gzip.compress(orjson.dumps({"access_token": TOKEN.decode(), "expires_in": 3600}))
            extra = b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
        else:
            body = gzip.compress(PAGE) if b"skip=0" in head else PAGE
            extra = b"Content-Type: application/json\r\n" + (
                b"Content-Encoding: gzip\r\n" if b"skip=0" in head else b""
            )
        await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra) + body)


async def exchange(client: httpx.AsyncClient) -> list[tuple[int, bytes]]:
    token = await client.post("/token", data={"grant_type": "client_credentials", "client_secret": SECRET})
    auth = {"Authorization": f"Bearer {token.json()['access_token']}", "Accept-Encoding": "gzip"}
    first = await client.get("/listings?skip=0", headers=auth)
    second = await client.get("/listings?skip=1", headers=auth)
    return [(r.status_code, r.content) for r in (token, first, second)]


async def test_a_recorded_exchange_replays_offline_without_its_secrets(tmp_path: Path) -> None:
    cassette = tmp_path / "partner.jsonl"
    async with scripted(partner) as (base_url, _):
        recorder = RecordingTransport(partner_transport(), cassette)
        async with httpx.AsyncClient(transport=recorder, base_url=base_url) as client:
            live = await exchange(client)
        # Replay needs no server: the recorded URLs point at a port nobody listens on now.
        replay = ReplayTransport(cassette)
        async with httpx.AsyncClient(transport=replay, base_url=base_url) as client:
            replayed = await exchange(client)

    assert [status for status, _ in replayed] == [200, 200, 200]
    assert replayed[1:] == live[1:]  # pages, gzip-encoded on the wire or not, decode alike
    assert orjson.loads(replayed[0][1])["access_token"] == PLACEHOLDER
    assert replay.unused == 0
    recorded = cassette.read_bytes()
    assert SECRET.encode() not in recorded
    assert TOKEN not in recorded
    assert b"Bearer" not in recorded
    lines = [orjson.loads(line) for line in recorded.splitlines()]
    assert [line["url"].rsplit("/", 1)[1] for line in lines] == [
        "token",
        "listings?skip=0",
        "listings?skip=1",
    ]
    # The gzip page is kept encoded, as it came; the client decompresses it on replay too.
    assert ["content-encoding", "gzip"] in lines[1]["headers"]


async def test_a_request_the_recording_never_saw_is_an_error(tmp_path: Path) -> None:
    cassette = tmp_path / "partner.jsonl"
    async with scripted(partner) as (base_url, _):
        async with httpx.AsyncClient(
            transport=RecordingTransport(partner_transport(), cassette), base_url=base_url
        ) as client:
            await client.get("/listings?skip=1")
    async with httpx.AsyncClient(transport=ReplayTransport(cassette), base_url=base_url) as client:
        assert (await client.get("/listings?skip=1")).content == PAGE
        with pytest.raises(NotRecorded):
            await client.get("/listings?skip=1")  # recorded once: replayed once
        with pytest.raises(NotRecorded):
            await client.get("/listings?skip=2")
