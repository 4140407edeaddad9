"""Seam's JSON shapes, as far as the daemon reads them (never the code itself: the guest's
PIN is not decoded, so it cannot reach a log or the database)."""

from __future__ import annotations

import msgspec


class CodeError(msgspec.Struct):
    error_code: str = ""
    message: str = ""


class AccessCode(msgspec.Struct):
    access_code_id: str
    device_id: str
    status: str = "setting"
    name: str | None = None
    starts_at: str | None = None
    ends_at: str | None = None
    errors: list[CodeError] = msgspec.field(default_factory=list)


class CodeBody(msgspec.Struct):
    access_code: AccessCode | None = None


class Pagination(msgspec.Struct):
    next_page_cursor: str | None = None
    has_next_page: bool = False


class CodeList(msgspec.Struct):
    access_codes: list[AccessCode] = msgspec.field(default_factory=list)
    pagination: Pagination = msgspec.field(default_factory=Pagination)


class Device(msgspec.Struct):
    device_id: str


class DeviceList(msgspec.Struct):
    devices: list[Device] = msgspec.field(default_factory=list)


class Ok(msgspec.Struct):
    ok: bool = True


CODE = msgspec.json.Decoder(CodeBody)
CODES = msgspec.json.Decoder(CodeList)
OK = msgspec.json.Decoder(Ok)
DEVICES = msgspec.json.Decoder(DeviceList)
