"""The envelope around every Hostaway body, and how loosely typed fields are taken."""

from __future__ import annotations

import msgspec
import pytest

from syncd import errors
from syncd.connectors.hostaway import PARTNER
from syncd.connectors.hostaway.connector import _records, _single

RECORD = b'{"id":1,"name":"A \\u00e9","latestActivityOn":"2025-01-01 00:00:00"}'


def test_a_list_result_becomes_its_records_kept_byte_for_byte() -> None:
    body = b'{"status":"success","result":[%s, %s],"limit":"2","offset":null,"count":"2","page":1}' % (
        RECORD,
        RECORD,
    )
    records = _records(body)
    assert [bytes(r) for r in records] == [RECORD, RECORD]
    assert all(isinstance(r, msgspec.Raw) for r in records)  # slices of the body, not copies


def test_a_single_result_is_the_record_itself() -> None:
    assert _single(b'{"status":"success","result":%s}' % RECORD) == RECORD
    with pytest.raises(ValueError):
        _single(b'{"status":"success","result":[]}')


@pytest.mark.parametrize(
    "body",
    [
        {"status": "fail", "result": "Invalid listing id"},
        {"status": "fail", "message": "This error occurs because ... exceeded the rate limits"},
    ],
)
def test_a_2xx_with_a_fail_status_is_a_refusal_with_the_partner_s_message(body: object) -> None:
    found = PARTNER.classify_body and PARTNER.classify_body(200, body)
    assert isinstance(found, errors.PartnerRejected) and "status=" in str(found)


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, {"status": "success"}), (200, {"access_token": "t"}), (403, {"status": "fail"}), (429, None)],
)
def test_success_and_error_statuses_are_left_to_http_semantics(status: int, body: object) -> None:
    assert PARTNER.classify_body is not None and PARTNER.classify_body(status, body) is None


def test_a_result_that_is_not_a_list_is_undecodable() -> None:
    with pytest.raises(msgspec.ValidationError):
        _records(b'{"status":"success","result":{"id":1}}')
