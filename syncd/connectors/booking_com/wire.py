"""The OTA XML of Booking.com's reservation queue, read safely and kept verbatim.

Parsing is defusedxml's hardened expat parser (``DefusedXMLParser`` with DTDs, entity
declarations and external references forbidden), not lxml. Why: defusedxml is the
hardening the Python documentation points to for untrusted XML, small and pure Python
over the standard library's expat (no C build, no libxml2 whose defaults have changed
between releases); it refuses a document that *declares* anything rather than trusting
flags to disarm what it declared, so a billion-laughs or external-entity body fails at
its DOCTYPE before a single entity is expanded. And expat reports the byte offset of
every tag (``CurrentByteIndex``), which is what lets each reservation be stored as the
exact bytes the partner sent (lxml's tree keeps line numbers, not offsets). The body is
size-capped before parsing and elements nest at most ``MAX_DEPTH`` deep.

A message (``OTA_HotelResNotifRQ`` or ``OTA_HotelResModifyNotifRQ``) carries its
reservations as the grandchildren of its root (``HotelReservations/HotelReservation``;
``HotelResModifies/HotelResModify`` is read alike [assumption]: the OTA 2003/05 schema
names modifications so, Booking.com's pages show only the first). Each becomes an
``Item``: its bytes (from ``<`` to the end of its end tag, namespace declarations of its
ancestors not included) and its tree, with tags by local name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from syncd import errors

# A message of a few hundred reservations is well under a megabyte; far more is a fault
# or an attack, refused before the parser sees it.
MAX_XML_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
OTA_NS = "http://www.opentravel.org/OTA/2003/05"
RESERVATION_TAGS = frozenset({"HotelReservation", "HotelResModify"})
MEDIA_TYPE = "application/xml"


class HostileXml(errors.PartnerRejected):
    """The partner's XML declares a DTD or entities, nests too deep or is too large: refused
    whole, nothing of it stored (not retried: the same bytes would come again)."""


@dataclass(frozen=True, slots=True)
class Item:
    raw: bytes
    element: ET.Element


@dataclass(frozen=True, slots=True)
class Message:
    root: str  # the root element's local name
    timestamp: str | None  # its ``TimeStamp`` attribute
    items: list[Item]
    errors: list[str]  # ``Errors/Error`` texts (an acknowledgement's answer)
    success: bool  # a ``Success`` child


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class _Splitter:
    """An expat target cutting the document into its reservations (depth 2 by default; 0
    reads one reservation's own bytes)."""

    def __init__(self, body: bytes, depth: int) -> None:
        self._body = body
        self._depth = 0
        self._at = depth
        self.expat: expat.XMLParserType | None = None
        self._builder: ET.TreeBuilder | None = None
        self._start = 0
        self._events = 0
        self.root, self.success = "", False
        self.timestamp: str | None = None
        self.errors: list[str] = []
        self._error_text: list[str] | None = None
        self.items: list[Item] = []

    def _index(self) -> int:
        assert self.expat is not None
        return self.expat.CurrentByteIndex

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        name = local(tag)
        if self._depth >= MAX_DEPTH:
            raise HostileXml(f"XML nested deeper than {MAX_DEPTH} elements")
        if self._depth == 0:
            self.root, self.timestamp = name, attrs.get("TimeStamp")
        elif self._depth == 1 and name == "Success":
            self.success = True
        elif self._depth == 2 and name == "Error":
            self._error_text = [attrs.get("ShortText", "")]
        if self._builder is None and self._depth == self._at and (self._at == 0 or name in RESERVATION_TAGS):
            self._builder, self._start, self._events = ET.TreeBuilder(), self._index(), 0
        if self._builder is not None:
            self._events += 1
            self._builder.start(name, {local(k): v for k, v in attrs.items()})
        self._depth += 1

    def end(self, tag: str) -> None:
        self._depth -= 1
        if self._error_text is not None and self._depth == 2:
            self.errors.append(" ".join(t for t in self._error_text if t).strip() or "error")
            self._error_text = None
        if self._builder is None:
            return
        name = local(tag)
        self._builder.end(name)
        if self._depth != self._at:
            return
        at, body = self._index(), self._body
        if self._events == 1 and body[at - 2 : at] == b"/>":  # <X .../>: expat is past it
            stop = at
        else:
            stop = body.index(b">", at) + 1
        self.items.append(Item(body[self._start : stop], self._builder.close()))
        self._builder = None

    def data(self, text: str) -> None:
        if self._error_text is not None:
            self._error_text.append(text)
        if self._builder is not None:
            self._events += 1
            self._builder.data(text)

    def close(self) -> None:
        return None


def _parse(body: bytes, depth: int) -> _Splitter:
    if len(body) > MAX_XML_BYTES:
        raise HostileXml(f"XML body of {len(body)} bytes, over the {MAX_XML_BYTES} cap")
    target = _Splitter(body, depth)
    parser = DefusedXMLParser(target=target, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    target.expat = parser.parser
    try:
        parser.feed(body)
        parser.close()
    except DefusedXmlException as exc:
        raise HostileXml(f"refused XML: {type(exc).__name__}") from exc
    except ET.ParseError as exc:
        # Not well-formed (a truncated body, most often): retried like one.
        raise ValueError(f"XML not well-formed: {exc}") from exc
    return target


def message(body: bytes) -> Message:
    """A queue message or an acknowledgement's answer, split into its reservations."""
    got = _parse(body, 2)
    return Message(got.root, got.timestamp, got.items, got.errors, got.success)


def element(raw: bytes) -> ET.Element:
    """One reservation's own bytes, as stored, read back."""
    got = _parse(raw, 0)
    if len(got.items) != 1:
        raise ValueError("not one XML element")
    return got.items[0].element


def _escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace(">", "&gt;")


def acknowledgement(root: str, ids: list[str], timestamp: str, error: str | None = None) -> bytes:
    """The ``<root>`` (``OTA_HotelResNotifRS`` or ``OTA_HotelResModifyNotifRS``) acknowledging
    ``ids``: ``Success``, or ``Errors`` with ``error`` for each (processing failed, the
    reservation is kept as a dead letter) [assumption: one message per outcome; the pages
    describe "success or error per HotelReservationID" without the error shape]."""
    outcome = (
        "<Success/>"
        if error is None
        else f'<Errors><Error Type="3" Code="450" ShortText="{_escape(error[:200])}"/></Errors>'
    )
    reservations = "".join(
        "<HotelReservation><ResGlobalInfo><HotelReservationIDs>"
        f'<HotelReservationID ResID_Type="14" ResID_Value="{_escape(i)}"/>'
        "</HotelReservationIDs></ResGlobalInfo></HotelReservation>"
        for i in ids
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><{root} xmlns="{OTA_NS}" TimeStamp="{_escape(timestamp)}"'
        f' Version="2.001">{outcome}<HotelReservations>{reservations}</HotelReservations></{root}>'
    ).encode()
