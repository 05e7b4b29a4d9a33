"""The kickback (決済結果通知, seed 002): from the raw notice to a neutral GatewayEvent."""

from __future__ import annotations

import hashlib

from app.gateway import codes as errors
from app.gateway.base import PAYMENT_REF, EventStatus, GatewayEvent, InvalidNotification
from app.gateway.robotpayment.codec import parse_kickback, parse_query_bytes

# The result fields two copies of one notice share. Stored kickbacks are matched by this
# hash: the fields and their order must never change, or stored duplicates stop matching.
_DEDUPE_FIELDS = ("gid", "rst", "ec", "ap", "am", "tx", "sf", "ta", "acid")


def notification_params(
    raw_query: bytes, raw_body: bytes, content_type: str | None
) -> dict[str, str]:
    """Query string first (the documented transport), then a form body (tolerated)."""
    params = parse_query_bytes(raw_query)
    if (raw_body and "form" in (content_type or "")) or (raw_body and not params):
        for k, v in parse_query_bytes(raw_body).items():
            params.setdefault(k, v)
    return params


def dedupe_key(params: dict[str, str]) -> str:
    material = "|".join(params.get(f, "").strip() for f in _DEDUPE_FIELDS)
    return hashlib.sha256(material.encode()).hexdigest()


def parse_notification(raw_query: bytes, raw_body: bytes, content_type: str | None) -> GatewayEvent:
    """rst 1 success, 2 failure; gid 0 is a refusal before any charge (never a success)."""
    params = notification_params(raw_query, raw_body, content_type)
    data = parse_kickback(params)
    if data.gid is None or data.rst not in (1, 2) or (data.gid == 0 and data.rst == 1):
        raise InvalidNotification("no usable gid/rst")
    return GatewayEvent(
        status=EventStatus.SUCCEEDED if data.rst == 1 else EventStatus.FAILED,
        charge_id=data.gid or None,
        approval_code=data.ap,
        gateway_order_code=data.god,
        order_ref=data.cod,
        amount=data.am,
        tax=data.tx,
        shipping=data.sf,
        total=data.ta,
        payment_ref=(data.extras.get(PAYMENT_REF) or "").strip() or None,
        error=errors.lookup(data.ec) if data.ec else None,
        dedupe_key=dedupe_key(params),
        extra=data.extras,
        customer_id=data.uid,
        customer_key=data.key,
        card_seq=data.num,
        issued_id=data.id,
        issued_password=data.ps,
    )
