"""The redirect 3-D Secure step's pure parts: a REDIRECT answer keeps the payment pending
(never unknown, never failed), and what the shopper is shown follows tds_state."""

from __future__ import annotations

from datetime import UTC, datetime

from app.gateway.base import ChargeResult, GatewayCall, Outcome
from app.payments import three_ds
from app.payments.evidence import Claim, Facts, claim_of, decide, from_answer
from app.payments.models import Payment
from app.payments.states import Status

CALL = GatewayCall(
    operation="three_ds_start",
    endpoint="api/xmlapi.do",
    request={},
    http_status=200,
    response_body=None,
    latency_ms=1.0,
    outcome=Outcome.SUCCESS,
    error_code=None,
    ref="pay_1",
    started_at=datetime.now(UTC),
)
REDIRECT = ChargeResult(
    outcome=Outcome.REDIRECT,
    redirect_url="https://issuer.example/tds2/authenticate/a1",
    authentication_id="a1",
    call=CALL,
)


def test_a_redirect_is_pending_not_unknown() -> None:
    assert claim_of(Outcome.REDIRECT) == Claim.PENDING
    decision = decide(Facts(status=Status.PENDING, job="AUTH"), from_answer(REDIRECT))
    assert decision.status is None and decision.flag is None and decision.error is None


def test_the_way_on_is_shown_only_while_redirected_and_pending() -> None:
    p = Payment(id="pay_1", status="pending")
    three_ds.note_redirect(p, REDIRECT)
    assert p.tds_authentication_id == "a1" and p.tds_state == three_ds.REDIRECTED
    assert p.three_ds_url == REDIRECT.redirect_url and p.next_check_at is not None
    p.tds_state = three_ds.AUTHORIZING
    assert p.three_ds_url is None
    p.tds_state, p.status = three_ds.REDIRECTED, "failed"
    assert p.three_ds_url is None


def test_other_answers_leave_the_step_alone() -> None:
    p = Payment(id="pay_1", status="pending")
    three_ds.note_redirect(p, ChargeResult(outcome=Outcome.SUCCESS, call=CALL))
    assert p.tds_state is None and p.three_ds_url is None
