"""3-D Secure 2.0 with GATEWAY_PROVIDER=sbps: the app under uvicorn against the SBPS simulator
process over HTTP. A token pay answers with where the shopper goes (TA02-00101-101); the test
plays the browser at the simulator's 3-D Secure page and back to our return URL, whose one
server-side call (ST01-00118-101) decides the payment. Money is counted in the simulator's
ledger (ST01-00118-101 is the only 3-D Secure call that makes a transaction)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.payments import three_ds
from app.payments.models import Payment
from app.reconcile.service import reconcile_due
from app.sandbox.sbps.cards import CARD_3DS_CHALLENGE, CARD_3DS_FAIL, CARD_OK
from app.sandbox.sbps.testing import make_tds_info_token, make_token
from tests.integration.test_sbps_checkout import SESSION, ledger, new_session
from tests.support import sbps
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration


@pytest.fixture
async def tds_app(make_app: AppFactory, sbps_simulator_url: str) -> RunningApp:
    return await make_app(
        gateway_provider="sbps",
        sbps_api_url=f"{sbps_simulator_url}/api/xmlapi.do",
        sbps_merchant_id=sbps.MERCHANT_ID,
        sbps_service_id=sbps.SERVICE_ID,
        sbps_hash_key=sbps.HASH_KEY,
        reconcile_interval_seconds=0,
        orphan_sweep_interval_seconds=0,
    )


async def start(
    app: RunningApp, sim: httpx.AsyncClient, card: str, cs_id: str, **choice: Any
) -> dict[str, Any]:
    """What the page does: both tokens, then the pay; answers the pending payment."""
    pair = await make_token(sim, card=card)
    info = await make_tds_info_token(sim, email=str(SESSION["email"]))
    r = await app.client.post(
        f"/v1/checkout/sessions/{cs_id}/pay",
        json={
            "token": pair.token,
            "token_key": pair.token_key,
            "tds_info_token": info.token,
            "tds_info_token_key": info.token_key,
            **choice,
        },
    )
    assert r.status_code == 202, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "pending" and body["three_ds_url"], body
    return body


async def at_issuer(sim: httpx.AsyncClient, url: str, *, code: str | None = None) -> str:
    """The shopper at the simulator's 3-D Secure page: where it sends them back to."""
    r = await sim.get(url)
    if r.status_code == 200:  # a challenge
        assert code is not None, r.text
        r = await sim.post(url, data={"action": "complete", "code": code})
    assert r.status_code == 303, r.text
    return r.headers["location"]


async def back(app: RunningApp, return_url: str) -> httpx.Response:
    parts = urlsplit(return_url)
    assert f"{parts.scheme}://{parts.netloc}" == app.url  # our PUBLIC_BASE_URL
    return await app.client.get(f"{parts.path}?{parts.query}")


async def status_of(app: RunningApp, cs_id: str) -> str:
    body: dict[str, Any] = (await app.client.get(f"/checkout/{cs_id}/status")).json()
    return str(body["status"])


async def test_the_page_loads_the_info_token_script_and_posts_both_tokens(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    """The form post of a page whose script made both tokens: a browser is sent to our
    result page, which links to the issuer's page (followed by three_ds.js, no inline script)."""
    cs = await new_session(tds_app)
    page = await tds_app.client.get(f"/checkout/{cs['id']}")
    assert "com_sbps_system_tds2infotoken.js" in page.text and 'id="tds_tkn"' in page.text
    assert "未対応" not in page.text and "行われません" not in page.text
    pair = await make_token(sbps_sim)
    # Without the info token: refused before anything is claimed (3-D Secure is required).
    refused = await tds_app.client.post(
        f"/checkout/{cs['id']}", data={"tkn": pair.token, "tkn_key": pair.token_key}
    )
    assert refused.status_code == 422
    info = await make_tds_info_token(sbps_sim)
    r = await tds_app.client.post(
        f"/checkout/{cs['id']}",
        data={
            "tkn": pair.token,
            "tkn_key": pair.token_key,
            "tds_tkn": info.token,
            "tds_tkn_key": info.token_key,
        },
        headers={"Sec-Fetch-Mode": "navigate"},
    )
    assert r.status_code == 303, r.text
    result = await tds_app.client.get(r.headers["location"])
    assert result.status_code == 200
    assert 'id="three-ds-continue"' in result.text and "three_ds.js" in result.text
    assert "<script>" not in result.text  # no inline script
    # A reload shows the same way on; the JSON pay of a second attempt is refused (one live).
    again = await tds_app.client.get(f"/checkout/{cs['id']}")
    assert 'id="three-ds-continue"' in again.text
    assert await ledger(sbps_sim) == []


async def test_frictionless_authorizes_once_after_the_return(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    cs = await new_session(tds_app)
    paid = await start(tds_app, sbps_sim, CARD_OK, cs["id"])
    assert await ledger(sbps_sim) == []  # TA02 charges nothing
    return_url = await at_issuer(sbps_sim, paid["three_ds_url"])
    assert parse_qs(urlsplit(return_url).query)["result"] == ["ok"]
    r = await back(tds_app, return_url)
    assert r.status_code == 303
    assert r.headers["location"].startswith(f"/checkout/{cs['id']}/payments/{paid['id']}")
    assert await status_of(tds_app, cs["id"]) == "succeeded"
    [row] = await ledger(sbps_sim)
    assert row["approved"] is True and row["amount"] == 1580


async def test_installments_go_with_the_authentication_and_are_charged(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    cs = await new_session(tds_app, payment_methods=["10", "61"], installment_counts=[3, 12])
    paid = await start(tds_app, sbps_sim, CARD_OK, cs["id"], method="61", installments=12)
    r = await back(tds_app, await at_issuer(sbps_sim, paid["three_ds_url"]))
    assert r.status_code == 303
    [row] = await ledger(sbps_sim)
    assert (row["approved"], row["dealings_type"], row["divide_times"]) == (True, "61", "12")


async def test_challenge_passed_authorizes(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    cs = await new_session(tds_app)
    paid = await start(tds_app, sbps_sim, CARD_3DS_CHALLENGE, cs["id"])
    r = await back(tds_app, await at_issuer(sbps_sim, paid["three_ds_url"], code="1234"))
    assert r.status_code == 303
    assert await status_of(tds_app, cs["id"]) == "succeeded"
    assert [row["approved"] for row in await ledger(sbps_sim)] == [True]


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_challenge_failed_is_a_readable_decline(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient, lang: str
) -> None:
    cs = await new_session(tds_app)
    paid = await start(tds_app, sbps_sim, CARD_3DS_CHALLENGE, cs["id"])
    return_url = await at_issuer(sbps_sim, paid["three_ds_url"], code="0000")
    assert parse_qs(urlsplit(return_url).query)["result"] == ["ng"]
    r = await back(tds_app, return_url.replace("lang=ja", f"lang={lang}"))
    assert r.status_code == 303
    page = await tds_app.client.get(r.headers["location"])
    assert page.status_code == 200
    expected = "本人認証" if lang == "ja" else "3-D Secure"
    assert expected in page.text
    assert await status_of(tds_app, cs["id"]) == "failed"
    assert await ledger(sbps_sim) == []  # nothing authorized
    # The session may be paid again, with a new card.
    again = await start(tds_app, sbps_sim, CARD_OK, cs["id"])
    assert again["id"] != paid["id"]


async def test_fail_card_goes_back_declined(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    cs = await new_session(tds_app)
    paid = await start(tds_app, sbps_sim, CARD_3DS_FAIL, cs["id"])
    await back(tds_app, await at_issuer(sbps_sim, paid["three_ds_url"]))
    assert await status_of(tds_app, cs["id"]) == "failed"
    assert await ledger(sbps_sim) == []


async def test_a_forged_ok_does_not_authorize_a_failed_authentication(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    """The query is a hint: an ng return rewritten to ok still gets SBPS's own answer."""
    cs = await new_session(tds_app)
    paid = await start(tds_app, sbps_sim, CARD_3DS_FAIL, cs["id"])
    return_url = await at_issuer(sbps_sim, paid["three_ds_url"])
    forged = return_url.replace("result=ng", "result=ok").replace("res_result=NG", "res_result=OK")
    await back(tds_app, forged)
    assert await status_of(tds_app, cs["id"]) == "failed"
    assert await ledger(sbps_sim) == []


async def test_return_replayed_authorizes_once(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    cs = await new_session(tds_app)
    paid = await start(tds_app, sbps_sim, CARD_OK, cs["id"])
    return_url = await at_issuer(sbps_sim, paid["three_ds_url"])
    # Twice at once (a double reload) and once more later.
    answers = await asyncio.gather(back(tds_app, return_url), back(tds_app, return_url))
    assert [a.status_code for a in answers] == [303, 303]
    assert (await back(tds_app, return_url)).status_code == 303
    assert await status_of(tds_app, cs["id"]) == "succeeded"
    assert len(await ledger(sbps_sim)) == 1


async def test_return_forged_for_another_payment_is_refused(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    mine = await new_session(tds_app)
    theirs = await new_session(tds_app)
    my_pay = await start(tds_app, sbps_sim, CARD_OK, mine["id"])
    their_pay = await start(tds_app, sbps_sim, CARD_OK, theirs["id"])
    my_return = await at_issuer(sbps_sim, my_pay["three_ds_url"])
    # Their payment under my session's path: no such step of my session.
    path = f"/checkout/{mine['id']}/payments/{their_pay['id']}/3ds?result=ok"
    assert (await tds_app.client.get(path)).status_code == 404
    # Their payment with my authentication id: refused, nothing called.
    my_auth = parse_qs(urlsplit(my_return).query)["res_tds_authentication_id"][0]
    forged = (
        f"/checkout/{theirs['id']}/payments/{their_pay['id']}/3ds"
        f"?res_tds_authentication_id={my_auth}"
    )
    assert (await tds_app.client.get(forged)).status_code == 422
    assert await ledger(sbps_sim) == []
    assert await status_of(tds_app, theirs["id"]) == "pending"
    # My own return still works.
    await back(tds_app, my_return)
    assert await status_of(tds_app, mine["id"]) == "succeeded"
    assert len(await ledger(sbps_sim)) == 1


async def test_authentication_expired_is_a_decline(
    tds_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    cs = await new_session(tds_app)
    paid = await start(tds_app, sbps_sim, CARD_OK, cs["id"])
    return_url = await at_issuer(sbps_sim, paid["three_ds_url"])
    # SBPS's side of the authentication has expired by the time the shopper is back.
    r = await sbps_sim.post("_sandbox/config", json={"tds_authentication_ttl_seconds": 0})
    assert r.status_code == 200, r.text
    await asyncio.sleep(1.1)
    await back(tds_app, return_url)
    assert await status_of(tds_app, cs["id"]) == "failed"
    assert await ledger(sbps_sim) == []


async def test_never_back_is_failed_by_reconciliation_and_a_late_return_does_nothing(
    tds_app: RunningApp,
    sbps_sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cs = await new_session(tds_app)
    paid = await start(tds_app, sbps_sim, CARD_OK, cs["id"])
    return_url = await at_issuer(sbps_sim, paid["three_ds_url"])
    async with sessions() as session:  # the window has passed
        past = utcnow() - three_ds.THREE_DS_WINDOW - timedelta(minutes=1)
        await session.execute(
            update(Payment)
            .where(Payment.id == paid["id"])
            .values(created_at=past, next_check_at=past)
        )
        await session.commit()
    await reconcile_due(sessions, tds_app.app.state.gateway)
    assert await status_of(tds_app, cs["id"]) == "failed"
    await back(tds_app, return_url)  # too late: nothing is authorized
    assert await status_of(tds_app, cs["id"]) == "failed"
    assert await ledger(sbps_sim) == []


async def test_restart_between_the_steps_and_a_claimed_step_is_never_sent_again(
    make_app: AppFactory,
    tds_app: RunningApp,
    sbps_simulator_url: str,
    sbps_sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Another process (a restart) takes the return: everything is in the database. A step
    whose authorization was claimed by a process that then died (the fence committed, the call
    maybe made) is never sent again by a replayed return: at most one charge."""
    other = await make_app(
        gateway_provider="sbps",
        sbps_api_url=f"{sbps_simulator_url}/api/xmlapi.do",
        sbps_merchant_id=sbps.MERCHANT_ID,
        sbps_service_id=sbps.SERVICE_ID,
        sbps_hash_key=sbps.HASH_KEY,
        reconcile_interval_seconds=0,
        orphan_sweep_interval_seconds=0,
    )
    cs = await new_session(tds_app)
    paid = await start(tds_app, sbps_sim, CARD_OK, cs["id"])
    return_url = await at_issuer(sbps_sim, paid["three_ds_url"])
    parts = urlsplit(return_url)
    r = await other.client.get(f"{parts.path}?{parts.query}")
    assert r.status_code == 303
    assert await status_of(other, cs["id"]) == "succeeded"
    assert len(await ledger(sbps_sim)) == 1

    cs2 = await new_session(tds_app)
    paid2 = await start(tds_app, sbps_sim, CARD_OK, cs2["id"])
    return2 = await at_issuer(sbps_sim, paid2["three_ds_url"])
    assert await three_ds.claim_authorization(sessions, paid2["id"])  # then the process died
    await back(tds_app, return2)
    parts = urlsplit(return2)
    assert (await other.client.get(f"{parts.path}?{parts.query}")).status_code == 303
    assert await status_of(tds_app, cs2["id"]) == "pending"  # for reconciliation, not failed
    assert len(await ledger(sbps_sim)) == 1  # the first session's charge only


async def test_failed_authentications_count_against_the_card_testing_limit(
    make_app: AppFactory, sbps_simulator_url: str, sbps_sim: httpx.AsyncClient
) -> None:
    """The pay's reservation ends at the redirect; the refusal that comes with the return
    still counts (per client IP here), so a card tester cannot use 3-D Secure to go unseen."""
    app = await make_app(
        gateway_provider="sbps",
        sbps_api_url=f"{sbps_simulator_url}/api/xmlapi.do",
        sbps_merchant_id=sbps.MERCHANT_ID,
        sbps_service_id=sbps.SERVICE_ID,
        sbps_hash_key=sbps.HASH_KEY,
        velocity_max_failures_per_ip=2,
    )
    for _ in range(2):
        cs = await new_session(app)
        paid = await start(app, sbps_sim, CARD_3DS_FAIL, cs["id"])
        await back(app, await at_issuer(sbps_sim, paid["three_ds_url"]))
        assert await status_of(app, cs["id"]) == "failed"
    cs = await new_session(app)
    pair = await make_token(sbps_sim, card=CARD_OK)
    info = await make_tds_info_token(sbps_sim, email=str(SESSION["email"]))
    refused = await app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay",
        json={
            "token": pair.token,
            "token_key": pair.token_key,
            "tds_info_token": info.token,
            "tds_info_token_key": info.token_key,
        },
    )
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "too_many_failures"
    assert await ledger(sbps_sim) == []
