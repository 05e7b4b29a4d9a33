"""The pure kickback rules (what a kickback may do, what the search must show), the trust
check, the in-memory budgets and the secret's scrubbing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from app.config import Settings
from app.gateway.base import ChargeRecord, GatewayEvent
from app.gateway.robotpayment.notification import parse_notification
from app.kickbacks import trust
from app.kickbacks.limits import IntakeBudget, OverBudget, TokenBucket, Verifier
from app.kickbacks.rules import Expected, Facts, Verdict, judge, plan
from app.logging import scrub
from app.payments.states import Status
from app.reconcile.matching import MATCH_WINDOW
from tests.support.search_rows import charge_record

T0 = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)


def facts(status: Status = Status.PENDING, **kw: Any) -> Facts:
    values: dict[str, Any] = {
        "status": status,
        "gid": None,
        "job": "CAPTURE",
        "amount": 1000,
        "tax": 80,
        "shipping": 500,
        "item_code": None,
    }
    values.update(kw)
    return Facts(**values)


def kick(rst: int = 1, gid: int = 501, **kw: Any) -> GatewayEvent:
    """A kickback written with the gateway's own parameters, read as the provider reads it."""
    values: dict[str, Any] = {"gid": gid, "rst": rst, "am": 1000, "tx": 80, "sf": 500, "ta": 1580}
    values.update(kw)
    return parse_notification(urlencode(values).encode(), b"", None)


# --- plan ----------------------------------------------------------------------------------


def test_a_trusted_success_with_our_amounts_settles_at_once() -> None:
    step = plan(facts(), kick(), trusted=True)
    assert (step.kind, step.target) == ("settle", Status.CAPTURED)


@pytest.mark.parametrize(
    "kw", [{"ta": None}, {"am": None}, {"tx": None, "sf": None, "am": None, "ta": None}]
)
def test_a_success_without_amounts_needs_the_search_even_when_trusted(kw: dict[str, Any]) -> None:
    assert plan(facts(), kick(**kw), trusted=True).kind == "search"
    assert plan(facts(), kick(**kw), trusted=True, confirmed=True).kind == "settle"


def test_a_success_with_another_total_is_flagged() -> None:
    step = plan(facts(), kick(ta=1581, am=1001), trusted=True)
    assert (step.kind, step.status) == ("done", "flagged")


def test_a_product_payment_is_believed_only_from_the_search() -> None:
    product = facts(item_code="ITEM001", amount=1, tax=0, shipping=0)
    assert plan(product, kick(), trusted=True).kind == "search"
    assert plan(product, kick(), trusted=True, confirmed=True).target == Status.CAPTURED


def test_an_untrusted_success_needs_the_search() -> None:
    assert plan(facts(), kick(), trusted=False).kind == "search"


@pytest.mark.parametrize("trusted", [True, False])
def test_a_failure_of_a_payment_that_may_be_charged_needs_the_search(trusted: bool) -> None:
    for status in (Status.PENDING, Status.UNKNOWN):
        assert plan(facts(status), kick(rst=2), trusted=trusted).kind == "search"
        confirmed = plan(facts(status), kick(rst=2), trusted=trusted, confirmed=True)
        assert (confirmed.kind, confirmed.target) == ("settle", Status.FAILED)


def test_a_refusal_without_gid_is_left_to_reconciliation() -> None:
    step = plan(facts(Status.UNKNOWN), kick(rst=2, gid=0), trusted=True)
    assert (step.kind, step.status) == ("done", "flagged")


@pytest.mark.parametrize("status", [Status.FAILED, Status.CANCELED])
def test_a_success_for_a_failed_or_canceled_payment_is_a_contradiction(status: Status) -> None:
    assert plan(facts(status), kick(), trusted=True).kind == "contradiction"
    assert plan(facts(status), kick(), trusted=False).kind == "search"
    assert plan(facts(status), kick(), trusted=False, confirmed=True).kind == "contradiction"


def test_a_late_success_of_a_payment_canceled_since_changes_nothing() -> None:
    step = plan(facts(Status.CANCELED, gid=501), kick(), trusted=True)
    assert (step.kind, step.status) == ("done", "applied")


def test_a_failure_for_a_failed_payment_only_records_its_gid() -> None:
    step = plan(facts(Status.FAILED), kick(rst=2), trusted=True)
    assert (step.kind, step.target) == ("settle", None)
    assert plan(facts(Status.FAILED), kick(rst=2), trusted=False).kind == "search"
    done = plan(facts(Status.FAILED, gid=501), kick(rst=2), trusted=False)
    assert (done.kind, done.status) == ("done", "applied")


@pytest.mark.parametrize("status", [Status.AUTHORIZED, Status.CAPTURED])
def test_never_backwards(status: Status) -> None:
    step = plan(facts(status, gid=501, job="AUTH"), kick(rst=2), trusted=True)
    assert (step.kind, step.status) == ("done", "applied")


def test_a_kickback_with_another_gid_than_the_payment_it_names_is_flagged() -> None:
    step = plan(facts(gid=777), kick(gid=501), trusted=True)
    assert (step.kind, step.status) == ("done", "flagged")


# --- judge ---------------------------------------------------------------------------------


def row(**kw: Any) -> ChargeRecord:
    values: dict[str, Any] = {"gid": 501, "jb": "CAPTURE", "rst": 1, "cod": "order1 ", "ta": 1580}
    values |= {"cd": T0 + timedelta(seconds=5)}
    values.update(kw)
    return charge_record(**values)


def expected(**kw: Any) -> Expected:
    values: dict[str, Any] = {
        "gid": 501,
        "cod": "order1",
        "total": 1580,
        "created_at": T0,
        "success": True,
    }
    values.update(kw)
    return Expected(**values)


def test_the_search_confirms_this_payments_charge() -> None:
    assert judge(expected(), [row(gid=500), row()])[0] == Verdict.CONFIRMED
    assert judge(expected(success=False), [row(rst=4)])[0] == Verdict.CONFIRMED
    assert judge(expected(total=None), [row(ta=9999)])[0] == Verdict.CONFIRMED


@pytest.mark.parametrize(
    ("rows", "claim", "verdict"),
    [
        ([], {}, Verdict.MISSING),
        ([row(cod="someoneelse")], {}, Verdict.REFUTED),  # a borrowed gid
        ([row(ta=1000)], {}, Verdict.REFUTED),
        ([row(cd=T0 + MATCH_WINDOW + timedelta(seconds=1))], {}, Verdict.REFUTED),
        ([row(cd=None)], {}, Verdict.REFUTED),
        ([row(rst=4)], {}, Verdict.REFUTED),  # a success claimed for a decline
        ([row()], {"success": False}, Verdict.REFUTED),  # a failure claimed for a charge
        ([row(jb="CANCEL")], {"success": False}, Verdict.REFUTED),
        ([row(jb="CANCEL")], {}, Verdict.REFUTED),
        ([row(rst=3)], {}, Verdict.UNSETTLED),
        ([row(rst=2)], {"success": False}, Verdict.UNSETTLED),
    ],
)
def test_the_search_refutes_anything_else(
    rows: list[ChargeRecord], claim: dict[str, Any], verdict: Verdict
) -> None:
    assert judge(expected(**claim), rows)[0] == verdict


# --- trust ---------------------------------------------------------------------------------

SECRET = "a-kickback-secret-of-some-length-0001"


def settings(allowed: str = "") -> Settings:
    return Settings(_env_file=None, kickback_secret=SECRET, kickback_allowed_ips=allowed)


def test_trust_needs_the_secret_and_an_allowed_peer() -> None:
    assert trust.is_trusted(settings(), SECRET, "198.51.100.1")
    assert not trust.is_trusted(settings(), None, "198.51.100.1")
    assert not trust.is_trusted(settings(), SECRET[:-1], "198.51.100.1")
    assert not trust.is_trusted(settings(), SECRET + "x", "198.51.100.1")
    gated = settings("203.0.113.7, 203.0.113.8")
    assert trust.is_trusted(gated, SECRET, "203.0.113.8")
    assert not trust.is_trusted(gated, SECRET, "198.51.100.1")
    assert not trust.is_trusted(gated, "wrong-secret-value-000000", "203.0.113.7")
    assert trust.allowed_peer(gated, "203.0.113.7") and not trust.allowed_peer(settings(), "x")
    assert trust.secret_path(settings()) == f"/kickback/{SECRET}"


def test_the_secret_is_a_path_segment_and_live_wants_a_strong_one() -> None:
    with pytest.raises(ValueError, match="KICKBACK_SECRET"):
        Settings(_env_file=None, kickback_secret="has/slash-in-it-000")
    with pytest.raises(ValueError, match="KICKBACK_SECRET"):
        Settings(_env_file=None, kickback_secret="short")
    live: dict[str, Any] = {
        "gateway_mode": "live",
        "gateway_aid": "123456",
        "api_keys": "a-long-secret-value:merchant",
        "gateway_base_url": "https://credit.j-payment.co.jp",
        "search_api_base_url": "https://api.j-payment.co.jp",
        "search_api_key": "real-key",
        "webhook_secret_key": "w" * 32,
    }
    with pytest.raises(ValueError, match="KICKBACK_SECRET"):
        Settings(_env_file=None, **live)  # the sandbox default
    with pytest.raises(ValueError, match="KICKBACK_SECRET"):
        Settings(_env_file=None, **live, kickback_secret="x" * 31)
    assert Settings(_env_file=None, **live, kickback_secret="x" * 32).gateway_mode == "live"


def test_the_secret_path_is_scrubbed_from_log_lines() -> None:
    line = f'127.0.0.1:5 - "GET /kickback/{SECRET}?gid=1&rst=1 HTTP/1.1" 200'
    assert SECRET not in scrub(line) and "/kickback/***?gid=1" in scrub(line)
    assert scrub("GET /kickback?gid=1") == "GET /kickback?gid=1"


# --- budgets -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_per_minute_and_zero_is_no_limit() -> None:
    clock = Clock()
    bucket = TokenBucket(3, clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now = 20.0  # a third of a minute: one token back
    assert [bucket.take() for _ in range(2)] == [True, False]
    assert all(TokenBucket(0, clock).take() for _ in range(1000))


def test_intake_budget_per_source_and_in_all_with_bounded_memory() -> None:
    clock = Clock()
    budget = IntakeBudget(per_source=2, total=5, max_sources=3, clock=clock)
    assert [budget.allow("a") for _ in range(3)] == [True, True, False]
    assert [budget.allow("b") for _ in range(3)] == [True, True, False]
    # Fresh addresses still meet the total.
    assert [budget.allow(f"c{i}") for i in range(3)] == [True, False, False]
    assert len(budget._sources) == 3


class Gateway:
    def __init__(self) -> None:
        self.calls: list[int] = []

    async def search_charges(self, *, charge_id: int | None = None, **_: Any) -> list[ChargeRecord]:
        assert charge_id is not None
        self.calls.append(charge_id)
        return [row(gid=charge_id)]


async def test_verifier_caches_per_gid_and_budgets_untrusted_lookups() -> None:
    clock = Clock()
    gateway = Gateway()
    verifier = Verifier(per_minute=2, cache_size=2, ttl=30.0, clock=clock)
    for gid in (1, 1, 1, 2):
        await verifier.rows(gateway, gid, trusted=False)  # type: ignore[arg-type]
    assert gateway.calls == [1, 2]
    with pytest.raises(OverBudget):
        await verifier.rows(gateway, 3, trusted=False)  # type: ignore[arg-type]
    await verifier.rows(gateway, 3, trusted=True)  # type: ignore[arg-type]
    assert gateway.calls == [1, 2, 3]
    clock.now = 31.0  # expired, and one token back
    await verifier.rows(gateway, 1, trusted=False)  # type: ignore[arg-type]
    assert gateway.calls == [1, 2, 3, 1] and len(verifier._cache) <= 2
