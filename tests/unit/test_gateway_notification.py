"""ROBOT PAYMENT's kickback read into a neutral GatewayEvent (app/gateway/robotpayment)."""

from __future__ import annotations

import hashlib

import pytest

from app.gateway.base import EventStatus, InvalidNotification
from app.gateway.robotpayment.notification import parse_notification

SAMPLE = b"gid=10000001&rst=1&ap=0001112&ec=&god=10000002&cod=test%20&am=1000&tx=80&sf=500&ta=1580"


def test_the_seed_sample_reads_into_neutral_fields() -> None:
    event = parse_notification(SAMPLE + b"&payment_ref=pay_1", b"", None)
    assert event.status == EventStatus.SUCCEEDED and event.charge_id == 10000001
    assert (event.approval_code, event.gateway_order_code) == ("0001112", "10000002")
    assert event.order_ref == "test "  # exactly as sent; matching trims it
    assert (event.amount, event.tax, event.shipping, event.total) == (1000, 80, 500, 1580)
    assert event.payment_ref == "pay_1" and event.extra == {"payment_ref": "pay_1"}
    assert event.error is None


def test_the_dedupe_key_hashes_the_same_material_as_stored_kickbacks() -> None:
    # Stored kickbacks carry sha256("gid|rst|ec|ap|am|tx|sf|ta|acid") of the raw values
    # (stripped): the key must stay exactly that, or stored duplicates stop matching.
    raw = b"gid=7&rst=2&ec=G12&ap=&am=1000&tx=80&sf=500&ta=1580&acid=%2042&memo=x"
    material = "7|2|G12||1000|80|500|1580|42"
    expected = hashlib.sha256(material.encode()).hexdigest()
    assert parse_notification(raw, b"", None).dedupe_key == expected
    # The same notice as a form body (tolerated) is the same notice.
    form = parse_notification(b"", raw, "application/x-www-form-urlencoded")
    assert form.dedupe_key == expected


def test_a_refusal_carries_its_error_and_no_charge() -> None:
    event = parse_notification(b"gid=0&rst=2&ec=ER900&am=0&tx=0&sf=0&ta=0", b"", None)
    assert event.status == EventStatus.FAILED and event.charge_id is None
    assert event.error is not None and event.error.code == "ER900"


@pytest.mark.parametrize(
    "raw", [b"", b"gid=x&rst=1", b"gid=1&rst=3", b"gid=0&rst=1", b"rst=1", b"gid=5"]
)
def test_a_notice_without_usable_gid_or_result_is_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidNotification, match="no usable gid/rst"):
        parse_notification(raw, b"", None)
