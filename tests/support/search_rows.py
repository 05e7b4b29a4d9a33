"""Charges-search rows for tests, written with the gateway's own field names (as seed 003 and
the simulator show them) and read into the neutral ChargeRecord the provider would build."""

from __future__ import annotations

from typing import Any

from app.gateway import codes as errors
from app.gateway.base import ChargeRecord
from app.gateway.robotpayment.search import charge_status

_NAMES = {
    "gid": "charge_id",
    "acid": "recurring_id",
    "jb": "job",
    "ct": "card_brand",
    "cn4": "card_last4",
    "am": "amount",
    "tx": "tax",
    "sf": "shipping",
    "ta": "total",
    "rst": "result_code",
    "cod": "order_ref",
    "nad": "next_charge_at",
    "cd": "created_at",
    "vd": "canceled_at",
}


def charge_record(**wire: Any) -> ChargeRecord:
    """`charge_record(gid=1, jb="AUTH", rst=1, cd=...)`: the status follows from rst + jb."""
    values = {_NAMES[name]: value for name, value in wire.items() if name != "ec"}
    if wire.get("ec"):
        values["error"] = errors.lookup(wire["ec"])
    status = charge_status(wire.get("rst"), wire.get("jb"))
    return ChargeRecord(status=status, **values)
