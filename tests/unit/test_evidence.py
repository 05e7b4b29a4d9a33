"""payments.evidence.decide: the pure rule of what a source's news does to a payment."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.payments.evidence import (
    OPEN,
    SUCCEEDED,
    Amounts,
    Claim,
    Content,
    Decision,
    ErrorNote,
    Evidence,
    Facts,
    NextCheck,
    Source,
    decide,
    target_of,
)
from app.payments.states import ALLOWED, Status, is_forward

TIMEOUT = ErrorNote("timeout", "The gateway did not answer in time.")
DECLINE = ErrorNote("ER584", "The card was declined.")
MERCHANT = Amounts(5000, 0, 0)  # what the merchant asked for an item_code payment
GATEWAY = Amounts(1000, 100, 0)  # what the gateway's product register charged
CONTENT = Content("rpitem001", "pw1000a")  # the content ID/password a product payment issues


def facts(status: Status, **kw: object) -> Facts:
    base: dict[str, object] = {"status": status, "job": "AUTH"}
    return Facts(**(base | kw))  # type: ignore[arg-type]


def ev(source: Source, claim: Claim | None, **kw: object) -> Evidence:
    return Evidence(source=source, claim=claim, **kw)  # type: ignore[arg-type]


A, N, S, OP, Y = Source.ANSWER, Source.NOTIFICATION, Source.SEARCH, Source.OPERATOR, Source.SYSTEM
P, U, AU, CA, CN, F = (
    Status.PENDING,
    Status.UNKNOWN,
    Status.AUTHORIZED,
    Status.CAPTURED,
    Status.CANCELED,
    Status.FAILED,
)

# (current state, evidence) -> what the decision must say (only the keys named are checked).
TABLE: list[tuple[str, Facts, Evidence, dict[str, object]]] = [
    (
        "a success answer authorizes a pending AUTH payment and records its references",
        facts(P),
        ev(A, Claim.SUCCEEDED, charge_id=7, order_number="G7", approval_code="123"),
        {
            "status": AU,
            "charge_id": 7,
            "order_number": "G7",
            "approval_code": "123",
            "next_check": NextCheck.NONE,
        },
    ),
    (
        "a success of a CAPTURE job captures",
        facts(P, job="CAPTURE"),
        ev(N, Claim.SUCCEEDED, charge_id=7),
        {"status": CA},
    ),
    (
        "a timeout answer makes a pending payment unknown, records the timeout, checks soon",
        facts(P),
        ev(A, Claim.UNKNOWN, error=TIMEOUT),
        {"status": U, "error": TIMEOUT, "next_check": NextCheck.SOON},
    ),
    (
        "rt=0 (accepted for later) on a pending payment: no move, look when the kickback is due",
        facts(P),
        ev(A, Claim.PENDING),
        {"status": None, "next_check": NextCheck.KICKBACK},
    ),
    (
        "a late timeout answer does not replace a real decline reason",
        facts(F, gid=7, error_code=DECLINE.code),
        ev(A, Claim.UNKNOWN, error=TIMEOUT),
        {"status": None, "error": None, "behind": True, "flag": None},
    ),
    (
        "a late answer after a kickback authorized it changes nothing and flags nothing",
        facts(AU, gid=7),
        ev(A, Claim.UNKNOWN, error=TIMEOUT),
        {"status": None, "error": None, "flag": None, "next_check": NextCheck.KEEP},
    ),
    (
        "a decline from a kickback fails an unknown payment and replaces the timeout",
        facts(U, error_code=TIMEOUT.code),
        ev(N, Claim.FAILED, charge_id=7, error=DECLINE, confirmed=True),
        {"status": F, "error": DECLINE, "charge_id": 7},
    ),
    (
        "a success from the search clears the timeout that made the payment unknown",
        facts(U, error_code=TIMEOUT.code),
        ev(S, Claim.AUTHORIZED, charge_id=7),
        {"status": AU, "clear_error": True, "error": None},
    ),
    (
        "a failure without a reason keeps the reason the payment has",
        facts(U, error_code=TIMEOUT.code),
        ev(S, Claim.FAILED),
        {"status": F, "error": None, "clear_error": False},
    ),
    (
        "the search showing a backward status is a contradiction: flagged, nothing written",
        facts(CA, gid=7),
        ev(S, Claim.AUTHORIZED, charge_id=8, amounts=GATEWAY),
        {"status": None, "charge_id": None, "amounts": None, "next_check": NextCheck.NONE},
    ),
    (
        "a trusted kickback's success on a failed payment is a contradiction",
        facts(F),
        ev(N, Claim.SUCCEEDED, charge_id=7, trusted=True),
        {"status": None, "charge_id": None, "behind": True},
    ),
    (
        "an untrusted, unconfirmed late claim is just ignored",
        facts(F),
        ev(A, Claim.SUCCEEDED, charge_id=7),
        {"status": None, "flag": None},
    ),
    (
        "a notification that only names a failed charge's gid records it",
        facts(F, error_code=DECLINE.code),
        ev(N, None, charge_id=7, error=DECLINE),
        {"status": None, "charge_id": 7, "error": None},
    ),
    (
        "references are filled in, never replaced",
        facts(P, gid=7, god="G7", ap="1"),
        ev(A, Claim.SUCCEEDED, charge_id=8, order_number="G8", approval_code="2"),
        {"status": AU, "charge_id": None, "order_number": None, "approval_code": None},
    ),
    (
        "an item_code payment takes the gateway's amounts",
        facts(P, item_code="ITEM", amounts=MERCHANT),
        ev(A, Claim.SUCCEEDED, charge_id=7, amounts=GATEWAY),
        {"status": AU, "amounts": GATEWAY},
    ),
    (
        "an item_code payment's refusal keeps the merchant's figure (its am=0 is no price)",
        facts(P, item_code="ITEM", amounts=MERCHANT),
        ev(A, Claim.FAILED, amounts=Amounts(0), content=CONTENT, error=DECLINE),
        {"status": F, "amounts": None, "content": None},
    ),
    (
        "an item_code payment's success records its issued content",
        facts(P, item_code="ITEM", amounts=MERCHANT),
        ev(N, Claim.CAPTURED, charge_id=7, amounts=GATEWAY, content=CONTENT, confirmed=True),
        {"status": CA, "amounts": GATEWAY, "content": CONTENT},
    ),
    (
        "issued content is filled in once, never replaced",
        facts(CA, item_code="ITEM", amounts=GATEWAY, has_content=True),
        ev(N, Claim.CAPTURED, content=Content("other", "x"), confirmed=True),
        {"status": None, "content": None},
    ),
    (
        "a payment without a product takes no content",
        facts(P),
        ev(A, Claim.SUCCEEDED, content=CONTENT),
        {"status": AU, "content": None},
    ),
    (
        "a payment with amounts of its own never takes the gateway's",
        facts(P, amounts=MERCHANT),
        ev(A, Claim.SUCCEEDED, amounts=GATEWAY),
        {"amounts": None},
    ),
    (
        "a settled item_code payment's money fields never change",
        facts(AU, item_code="ITEM", amounts=GATEWAY),
        ev(S, Claim.CAPTURED, amounts=Amounts(9, 9, 9)),
        {"status": CA, "amounts": None},
    ),
    (
        "capture answer: authorized -> captured",
        facts(AU, gid=7),
        ev(A, Claim.CAPTURED),
        {"status": CA, "clear_error": False},
    ),
    (
        "never sent: our own records fail a pending payment with their reason",
        facts(P),
        ev(Y, Claim.FAILED, error=ErrorNote("not_sent", "Never sent.")),
        {"status": F, "error": ErrorNote("not_sent", "Never sent.")},
    ),
    (
        "an answer we could not store: unknown and flagged",
        facts(P),
        ev(Y, Claim.UNKNOWN, flag="result not recorded"),
        {"status": U, "flag": "result not recorded", "next_check": NextCheck.SOON},
    ),
    (
        "a person resolves an unknown payment: moved, flag cleared, no timeout cleared",
        facts(U, error_code=TIMEOUT.code),
        ev(OP, Claim.AUTHORIZED, charge_id=7),
        {"status": AU, "charge_id": 7, "clear_flag": True, "clear_error": False},
    ),
    (
        "a person confirms a flagged payment as it stands",
        facts(AU, gid=7),
        ev(OP, Claim.AUTHORIZED),
        {"status": None, "resolved": True, "clear_flag": True, "next_check": NextCheck.NONE},
    ),
    (
        "the same decline twice does not replace the first reason",
        facts(F, error_code="G12"),
        ev(A, Claim.FAILED, error=DECLINE),
        {"status": None, "error": None},
    ),
    (
        "the same status fills an empty reason",
        facts(F),
        ev(N, Claim.FAILED, error=DECLINE, confirmed=True),
        {"status": None, "error": DECLINE},
    ),
]


@pytest.mark.parametrize(("name", "current", "evidence", "want"), TABLE, ids=[t[0] for t in TABLE])
def test_table(name: str, current: Facts, evidence: Evidence, want: dict[str, object]) -> None:
    got = decide(current, evidence)
    assert {k: getattr(got, k) for k in want} == want, name


def test_a_contradiction_names_what_the_gateway_shows() -> None:
    got = decide(facts(F), ev(S, Claim.AUTHORIZED, charge_id=7))
    assert got.flag is not None and "authorized" in got.flag and "7" in got.flag


# --- properties ---------------------------------------------------------------------------

statuses = st.sampled_from(list(Status))
amounts = st.builds(Amounts, st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**5))
notes = st.none() | st.sampled_from([TIMEOUT, DECLINE])
facts_st = st.builds(
    Facts,
    status=statuses,
    job=st.sampled_from(["AUTH", "CAPTURE", "CHECK"]),
    gid=st.none() | st.integers(1, 10**9),
    god=st.none() | st.just("G1"),
    ap=st.none() | st.just("A1"),
    item_code=st.none() | st.just("ITEM"),
    amounts=amounts,
    error_code=st.none() | st.just("ER001"),
    has_content=st.booleans(),
)
evidence_st = st.builds(
    Evidence,
    source=st.sampled_from(list(Source)),
    claim=st.none() | st.sampled_from(list(Claim)),
    charge_id=st.none() | st.integers(1, 10**9),
    order_number=st.none() | st.just("G2"),
    approval_code=st.none() | st.just("A2"),
    amounts=st.none() | amounts,
    content=st.none() | st.just(CONTENT),
    error=notes,
    trusted=st.booleans(),
    confirmed=st.booleans(),
    flag=st.none() | st.just("look"),
)


@given(facts_st, evidence_st)
def test_never_moves_backwards(f: Facts, e: Evidence) -> None:
    d = decide(f, e)
    if d.status is not None:
        assert d.status != f.status and is_forward(f.status, d.status)
        assert d.status == target_of(e.claim, f.job)


@given(facts_st, evidence_st)
def test_never_changes_a_settled_payments_money(f: Facts, e: Evidence) -> None:
    d = decide(f, e)
    if f.status not in OPEN or not f.item_code:
        assert d.amounts is None


@given(facts_st, evidence_st)
def test_references_are_only_filled_in(f: Facts, e: Evidence) -> None:
    d = decide(f, e)
    assert d.charge_id is None or f.gid is None
    assert d.order_number is None or f.god is None
    assert d.approval_code is None or f.ap is None
    assert d.content is None or (not f.has_content and f.item_code)


@given(facts_st, evidence_st)
def test_only_a_success_sets_a_product_payments_price_and_content(f: Facts, e: Evidence) -> None:
    d = decide(f, e)
    target = target_of(e.claim, f.job)
    if target is not None and target not in SUCCEEDED:
        assert d.amounts is None and d.content is None


@given(facts_st, evidence_st)
def test_stale_evidence_changes_nothing_but_may_flag(f: Facts, e: Evidence) -> None:
    d = decide(f, e)
    if d.behind:
        assert (d.status, d.amounts, d.error, d.clear_error) == (None, None, None, False)
        assert d.content is None
        if e.from_records:
            assert d.flag is not None and d.charge_id is None


@given(facts_st, evidence_st)
def test_unknown_is_never_failed_by_a_non_answer(f: Facts, e: Evidence) -> None:
    d = decide(f, e)
    if e.claim in (Claim.UNKNOWN, Claim.PENDING, None):
        assert d.status != Status.FAILED


@given(facts_st, evidence_st)
def test_a_terminal_payment_never_moves(f: Facts, e: Evidence) -> None:
    if not ALLOWED[f.status]:
        assert decide(f, e).status is None


def test_decision_defaults_change_nothing() -> None:
    assert Decision() == decide(facts(CN, gid=1), ev(A, None))
