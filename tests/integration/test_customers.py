"""Stored customers and cards through the real HTTP API, against the simulator process:
every endpoint, its gateway error codes, bad input, and drift repaired by sync."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.customers.models import Card, CustomerEvent
from app.db import utcnow
from app.hosted.models import CheckoutSession
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.support.db import gateway_call_count
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration

EMAIL = "taro@example.com"
# What the card-registration 3-D Secure binds: am=tx=sf=0 and the customer's e-mail.
ZERO_3DS = {"am": "0", "tx": "0", "sf": "0", "em": EMAIL}


async def new_customer(app: RunningApp, uid: str = "cust001", **extra: Any) -> dict[str, Any]:
    r = await app.merchant.post("/v1/customers", json={"uid": uid, "email": EMAIL, **extra})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def new_card(
    app: RunningApp, sim: httpx.AsyncClient, uid: str = "cust001", card: str = cards.CARD_OK
) -> dict[str, Any]:
    token = await make_token(sim, card=card, three_ds=ZERO_3DS)
    r = await app.merchant.post(f"/v1/customers/{uid}/cards", json={"token": token})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def sim_user(sim: httpx.AsyncClient, uid: str) -> dict[str, Any] | None:
    users: list[dict[str, Any]] = (await sim.get("/_sandbox/users")).json()
    return next((u for u in users if u["uid"] == uid), None)


async def carduser(sim: httpx.AsyncClient, **form: str) -> list[str]:
    """A direct call to the gateway, as another system (or a lost answer) would make."""
    r = await sim.post("/gateway/carduser.aspx", data={"aid": "100001", "rt": "1", **form})
    return r.text.strip().split(",")


async def test_customer_lifecycle(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app()
    created = await new_customer(app, phone="0312345678")
    assert created["uid"] == "cust001" and created["status"] == "active"
    assert "key" not in created, "the gateway key is a credential: never shown"
    gw = await sim_user(sim, "cust001")
    assert gw is not None and gw["em"] == EMAIL and gw["pn"] == "0312345678"

    dup = await app.merchant.post("/v1/customers", json={"uid": "cust001"})
    assert dup.status_code == 409 and dup.json()["code"] == "duplicate_customer"
    assert dup.headers["content-type"].startswith("application/problem+json")

    got = (await app.merchant.get("/v1/customers/cust001")).json()
    assert got["refreshed"] is True and got["cards"] == []
    assert [e["type"] for e in got["events"]] == ["customer_created"]

    patched = await app.merchant.patch("/v1/customers/cust001", json={"email": "new@example.jp"})
    assert patched.status_code == 200 and patched.json()["email"] == "new@example.jp"
    gw = await sim_user(sim, "cust001")
    assert gw is not None and gw["em"] == "new@example.jp"

    assert (await app.merchant.delete("/v1/customers/cust001")).status_code == 204
    gw = await sim_user(sim, "cust001")
    assert gw is not None and gw["deleted"] is True
    after = (await app.merchant.get("/v1/customers/cust001")).json()
    assert after["status"] == "deleted"
    assert [e["type"] for e in after["events"]][-1] == "customer_deleted"
    again = await app.merchant.post("/v1/customers", json={"uid": "cust001"})
    assert again.status_code == 409 and again.json()["code"] == "customer_deleted"
    assert again.json()["gateway_code"] == "ER653"
    patch_deleted = await app.merchant.patch("/v1/customers/cust001", json={"phone": "0311112222"})
    assert patch_deleted.status_code == 404


async def test_uid_known_only_at_the_gateway(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app()
    assert (await carduser(sim, cmd="0", uid="elsewhere1", em=EMAIL))[0] == "1"
    r = await app.merchant.post("/v1/customers", json={"uid": "elsewhere1"})
    assert r.status_code == 409 and r.json()["gateway_code"] == "ER652"
    assert "sync" in r.json()["detail"]
    assert (await app.merchant.get("/v1/customers/elsewhere1")).status_code == 404
    synced = await app.merchant.post("/v1/customers/elsewhere1/sync")
    assert synced.status_code == 200, synced.text
    assert [c["type"] for c in synced.json()["changes"]] == ["customer_imported"]
    assert synced.json()["customer"]["email"] == EMAIL
    nobody = await app.merchant.post("/v1/customers/nobody1/sync")
    assert nobody.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"uid": "a" * 51}, "uid"),
        ({"uid": "not-alnum"}, "uid"),
        ({"uid": "ユーザー"}, "uid"),
        ({"uid": ""}, "uid"),
        ({"uid": "ok1", "email": "x" * 95 + "@ex.jp"}, "email"),
        ({"uid": "ok1", "phone": "03-1234-5678"}, "phone"),
        ({"uid": "ok1", "phone": "1" * 21}, "phone"),
        ({"uid": "ok1", "key": "abc"}, "key"),
    ],
)
async def test_bad_customer_input_names_the_field(
    make_app: AppFactory, sim: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    app = await make_app()
    r = await app.merchant.post("/v1/customers", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in r.json()["errors"]}
    assert await sim_user(sim, "ok1") is None, "nothing reached the gateway"


async def test_bad_path_and_patch_input(make_app: AppFactory) -> None:
    app = await make_app()
    await new_customer(app)
    r = await app.merchant.get("/v1/customers/" + "a" * 51)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "uid"
    r = await app.merchant.patch("/v1/customers/cust001", json={"phone": "12-34"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "phone"
    r = await app.merchant.patch("/v1/customers/cust001", json={})
    assert r.status_code == 422
    assert (await app.merchant.get("/v1/customers/cust001/cards/abc")).status_code == 422
    assert (await app.client.get("/v1/customers/cust001")).status_code == 401


async def test_cards_register_list_refresh_replace_delete(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await new_customer(app)
    first = await new_card(app, sim)
    assert first["num"] == 1 and first["masked_number"].endswith("1111")
    assert first["expiry"] and len(first["expiry"]) == 4
    assert first["first_name"] == "TARO" and first["status"] == "active"
    second = await new_card(app, sim, card=cards.CARD_DECLINE_G55)
    assert second["num"] == 2 and second["masked_number"].endswith("0556")

    listed = (await app.merchant.get("/v1/customers/cust001/cards")).json()["data"]
    assert [c["num"] for c in listed] == [1, 2]
    assert all(cards.CARD_OK not in str(c) for c in listed)

    got = await app.merchant.get("/v1/customers/cust001/cards/1")
    assert got.status_code == 200 and got.json()["masked_number"].endswith("1111")

    token = await make_token(sim, card=cards.CARD_DECLINE_G83, three_ds=ZERO_3DS)
    replaced = await app.merchant.put("/v1/customers/cust001/cards/1", json={"token": token})
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["num"] == 1 and replaced.json()["masked_number"].endswith("0838")
    gw = await sim_user(sim, "cust001")
    assert gw is not None and {c["num"]: c["cn"][-4:] for c in gw["cards"]} == {
        1: "0838",
        2: "0556",
    }

    assert (await app.merchant.delete("/v1/customers/cust001/cards/2")).status_code == 204
    gone = await app.merchant.get("/v1/customers/cust001/cards/2")
    assert gone.status_code == 404 and gone.json()["code"] == "card_not_found"
    assert (await app.merchant.delete("/v1/customers/cust001/cards/2")).status_code == 404
    listed = (await app.merchant.get("/v1/customers/cust001/cards")).json()["data"]
    assert [c["num"] for c in listed] == [1]

    async with sessions() as session:
        types = list(
            (
                await session.execute(
                    select(CustomerEvent.type, CustomerEvent.card_num).order_by(CustomerEvent.id)
                )
            ).all()
        )
    assert types == [
        ("customer_created", None),
        ("card_registered", 1),
        ("card_registered", 2),
        ("card_updated", 1),
        ("card_deleted", 2),
    ]


async def test_card_errors(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app()
    await new_customer(app)
    await new_customer(app, uid="other1")
    await new_card(app, sim, uid="other1")
    token = await make_token(sim, three_ds=ZERO_3DS)
    unknown = await app.merchant.post("/v1/customers/nobody1/cards", json={"token": token})
    assert unknown.status_code == 404 and unknown.json()["code"] == "customer_not_found"
    # Card 1 is other1's: cust001 has none.
    for method in ("GET", "DELETE"):
        r = await app.merchant.request(method, "/v1/customers/cust001/cards/1")
        assert r.status_code == 404 and r.json()["errors"][0]["field"] == "num"
    r = await app.merchant.put("/v1/customers/cust001/cards/1", json={"token": token})
    assert r.status_code == 404

    ok = await app.merchant.post("/v1/customers/cust001/cards", json={"token": token})
    assert ok.status_code == 201
    reused = await app.merchant.post("/v1/customers/cust001/cards", json={"token": token})
    assert reused.status_code == 422 and reused.json()["gateway_code"] == "ER584"
    assert reused.json()["errors"][0]["field"] == "token"
    # 3-D Secure run for a payment's amounts does not authorize a registration.
    paid_3ds = await make_token(sim, three_ds={**ZERO_3DS, "am": "1000"})
    mismatch = await app.merchant.post("/v1/customers/cust001/cards", json={"token": paid_3ds})
    assert mismatch.status_code == 402 and mismatch.json()["gateway_code"] == "ER901"
    failed_3ds = await make_token(sim, card=cards.CARD_3DS_FAIL, three_ds=ZERO_3DS)
    declined = await app.merchant.post("/v1/customers/cust001/cards", json={"token": failed_3ds})
    assert declined.status_code == 402 and declined.json()["gateway_code"] == "ER900"
    card_data = await app.merchant.post(
        "/v1/customers/cust001/cards", json={"token": "abcdefgh12", "cn": cards.CARD_OK}
    )
    assert card_data.status_code == 422 and cards.CARD_OK not in card_data.text
    listed = (await app.merchant.get("/v1/customers/cust001/cards")).json()["data"]
    assert [c["num"] for c in listed] == [1], "failed registrations left nothing behind"


async def test_maintenance_is_a_clear_503(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app()
    await new_customer(app)
    await sim.post("/_sandbox/maintenance", json={"on": True})
    r = await app.merchant.post("/v1/customers", json={"uid": "cust002"})
    assert r.status_code == 503 and r.json()["gateway_code"] == "ER999"
    got = await app.merchant.get("/v1/customers/cust001")
    assert got.status_code == 200 and got.json()["refreshed"] is False
    await sim.post("/_sandbox/maintenance", json={"on": False})
    assert (await app.merchant.get("/v1/customers/cust002")).status_code == 404


async def test_sync_repairs_drift(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await new_customer(app)
    await new_card(app, sim)
    await new_card(app, sim, card=cards.CARD_DECLINE_G55)
    # Drift: card 3 registered at the gateway but our write "failed" (row removed); card 2
    # deleted and the e-mail changed by someone else; our copy of card 1 tampered with.
    await new_card(app, sim, card=cards.CARD_DECLINE_G83)
    async with sessions() as session:
        await session.execute(delete(Card).where(Card.num == 3))
        card1 = (await session.execute(select(Card).where(Card.num == 1))).scalar_one()
        card1.expiry = "0001"
        await session.commit()
    key = (await sim_user(sim, "cust001") or {})["key"]
    assert (await carduser(sim, cmd="5", uid="cust001", key=key, num="2"))[0] == "1"
    assert (await carduser(sim, cmd="1", uid="cust001", key=key, em="moved@example.jp"))[0] == "1"

    r = await app.merchant.post("/v1/customers/cust001/sync")
    assert r.status_code == 200, r.text
    body = r.json()
    changes = {(c["type"], c["card_num"]) for c in body["changes"]}
    assert changes == {
        ("customer_repaired", None),
        ("card_refreshed", 1),
        ("card_repaired", 2),
        ("card_added", 3),
    }
    assert body["customer"]["email"] == "moved@example.jp"
    by_num = {c["num"]: c for c in body["customer"]["cards"]}
    assert set(by_num) == {1, 3} and by_num[3]["masked_number"].endswith("0838")
    assert by_num[1]["expiry"] != "0001"
    assert all(c["actor"].startswith("merchant:") for c in body["changes"])

    again = (await app.merchant.post("/v1/customers/cust001/sync")).json()
    assert again["changes"] == [], "a second sync finds nothing to fix"

    # Deleted at the gateway behind our back: the copy follows, cards included.
    assert (await carduser(sim, cmd="2", uid="cust001", key=key))[0] == "1"
    gone = (await app.merchant.post("/v1/customers/cust001/sync")).json()
    assert [c["type"] for c in gone["changes"]] == ["customer_repaired"]
    assert gone["customer"]["status"] == "deleted" and gone["customer"]["cards"] == []


async def test_card_refresh_notices_a_deleted_card(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await new_customer(app)
    await new_card(app, sim)
    key = (await sim_user(sim, "cust001") or {})["key"]
    await carduser(sim, cmd="5", uid="cust001", key=key, num="1")
    r = await app.merchant.get("/v1/customers/cust001/cards/1")
    assert r.status_code == 404 and r.json()["gateway_code"] == "ER149"
    assert (await app.merchant.get("/v1/customers/cust001/cards")).json()["data"] == []


async def test_card_page_delete_button_only_reaches_its_own_customer(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await new_customer(app, "owner01")
    await new_card(app, sim, "owner01")
    await new_customer(app, "other01")
    await new_card(app, sim, "other01")
    page = (await app.merchant.post("/v1/customers/owner01/card-sessions", json={})).json()
    sid = page["id"]

    # Another customer's card number that the owner does not have: not found, nothing deleted.
    r = await app.client.post(f"/checkout/{sid}/cards/2/delete", data={"lang": "en"})
    assert r.status_code == 404 and "text/html" in r.headers["content-type"]
    # A payment session is not a card page.
    pay = await app.merchant.post(
        "/v1/checkout/sessions",
        json={"amount": 100, "job": "AUTH", "customer_id": "other01", "email": EMAIL},
    )
    r = await app.client.post(f"/checkout/{pay.json()['id']}/cards/1/delete")
    assert r.status_code == 404
    assert (await app.merchant.get("/v1/customers/other01/cards")).json()["data"]

    # The owner's card: deleted at the gateway and in our copy, then back to the page.
    r = await app.client.post(f"/checkout/{sid}/cards/1/delete", data={"lang": "en"})
    assert r.status_code == 303 and r.headers["location"] == f"/checkout/{sid}?lang=en&deleted=1"
    assert (await app.merchant.get("/v1/customers/owner01/cards")).json()["data"] == []
    assert (await app.merchant.get("/v1/customers/owner01/cards/1")).status_code == 404
    shown = await app.client.get(r.headers["location"])
    assert "The card has been deleted." in shown.text and "registered-cards" not in shown.text

    # An expired page deletes nothing.
    async with sessions() as s:
        cs = await s.get(CheckoutSession, sid)
        assert cs is not None
        cs.expires_at = utcnow() - timedelta(minutes=1)
        await s.commit()
    await new_card(app, sim, "owner01")
    r = await app.client.post(f"/checkout/{sid}/cards/2/delete")
    assert r.status_code == 410
    assert len((await app.merchant.get("/v1/customers/owner01/cards")).json()["data"]) == 1


async def test_checkout_form_pays_a_saved_card_by_num(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await new_customer(app, "formnum1")
    await new_card(app, sim, "formnum1")
    cs = await app.merchant.post(
        "/v1/checkout/sessions",
        json={"amount": 500, "job": "AUTH", "customer_id": "formnum1", "email": EMAIL},
    )
    sid = cs.json()["id"]
    # The page posts `card_num`; the contract also names the field `num`: both work.
    r = await app.client.post(f"/checkout/{sid}", data={"num": "1"})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    listed = (await app.ops.get("/v1/payments", params={"customer_id": "formnum1"})).json()
    [p] = listed["data"]
    assert p["status"] == "authorized" and p["card_num"] == 1 and p["kind"] == "checkout"


async def test_idempotency_key_replays_customer_card_and_page_creation(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A merchant retrying after a lost answer gets the first answer, not "already exists" or
    "token already used", and nothing is done twice."""
    app = await make_app()
    customer = {"uid": "idem01", "email": EMAIL}
    first = await app.merchant.post(
        "/v1/customers", json=customer, headers={"Idempotency-Key": "c1"}
    )
    again = await app.merchant.post(
        "/v1/customers", json=customer, headers={"Idempotency-Key": "c1"}
    )
    assert first.status_code == again.status_code == 201, again.text
    assert again.json() == first.json()
    other = await app.merchant.post(
        "/v1/customers", json={"uid": "idem02"}, headers={"Idempotency-Key": "c1"}
    )
    assert other.status_code == 422, other.text

    token = await make_token(sim, three_ds=ZERO_3DS)
    path, key = "/v1/customers/idem01/cards", {"Idempotency-Key": "card-1"}
    calls_before = await gateway_call_count(sessions)
    added = await app.merchant.post(path, json={"token": token}, headers=key)
    calls_after_first = await gateway_call_count(sessions)
    replayed = await app.merchant.post(path, json={"token": token}, headers=key)
    assert added.status_code == replayed.status_code == 201, replayed.text
    assert replayed.json() == added.json()
    calls_now = await gateway_call_count(sessions)
    assert calls_now == calls_after_first > calls_before, "the retry made no call"
    gw = await sim_user(sim, "idem01")
    assert gw is not None and len(gw["cards"]) == 1
    # Without a key the same token is refused as used (ER584), as before.
    reused = await app.merchant.post(path, json={"token": token})
    assert reused.status_code == 422 and reused.json()["gateway_code"] == "ER584"

    pages = [
        await app.merchant.post(
            "/v1/customers/idem01/card-sessions", json={}, headers={"Idempotency-Key": "p1"}
        )
        for _ in range(2)
    ]
    assert [p.status_code for p in pages] == [201, 201]
    assert pages[0].json()["id"] == pages[1].json()["id"], "one page per key"


async def test_a_card_page_claim_left_by_a_dead_process_is_taken_over(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A page whose registration was running when its process died is 'processing' forever
    unless the claim expires: a fresh claim still refuses a second post, an old one does not."""
    app = await make_app()
    await new_customer(app, "claim01")
    sid = (await app.merchant.post("/v1/customers/claim01/card-sessions", json={})).json()["id"]

    async def claimed(minutes_ago: int) -> None:
        async with sessions() as session:
            cs = await session.get(CheckoutSession, sid)
            assert cs is not None
            cs.status, cs.attempts = "processing", 1
            await session.flush()
            cs.updated_at = utcnow() - timedelta(minutes=minutes_ago)
            await session.commit()

    await claimed(1)
    token = await make_token(sim, three_ds=ZERO_3DS)
    busy = await app.client.post(f"/checkout/{sid}", data={"tkn": token, "lang": "en"})
    assert busy.status_code == 409 and "already being registered" in busy.text
    await claimed(11)
    done = await app.client.post(f"/checkout/{sid}", data={"tkn": token, "lang": "en"})
    assert done.status_code == 200, done.text
    async with sessions() as session:
        cs = await session.get(CheckoutSession, sid)
    assert cs is not None and cs.status == "completed" and cs.card_num == 1
