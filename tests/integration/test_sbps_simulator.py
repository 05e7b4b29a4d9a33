"""The SBPS simulator (`python -m app.sandbox.sbps`) as a real process over HTTP, driven with
hand-built XML (tests/support/sbps.py computes the hash itself): the payment lifecycle, the
wire checks, tokens, stored cards, 3-D Secure, faults and the ledger."""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.sandbox.sbps.cards import (
    CARD_3DS_CHALLENGE,
    CARD_3DS_FAIL,
    CARD_DECLINE_G12,
    CARD_DECLINE_G55,
    CARD_DECLINE_G83,
    CARD_OK,
    CARD_SLOW,
    CARD_TIMEOUT,
)
from app.sandbox.sbps.testing import (
    SbpsTokenError,
    TokenPair,
    future_expiration,
    make_tds_info_token,
    make_token,
)
from tests.support.sbps import (
    HASH_KEY,
    MERCHANT_ID,
    SERVICE_ID,
    Answer,
    Field,
    SbpsApi,
    build,
    hashcode,
    jst_stamp,
    read_answer,
)

AUTHORIZE = "ST01-00131-101"
COMMIT = "ST02-00101-101"
SALES = "ST02-00201-101"
CANCEL = "ST02-00305-101"
REFUND = "ST02-00303-101"
PARTIAL = "ST02-00307-101"
LOOKUP = "MG01-00101-101"
SAVE_CARD = "MG02-00131-101"
CARD = "MG02-00104-101"
DELETE_CARD = "MG02-00103-101"
REAUTH = "ST01-00133-101"
TDS_START = "TA02-00101-101"
TDS_AUTHORIZE = "ST01-00118-101"
RETURN = "https://shop.example/sbps/3ds"


@pytest.fixture
def api(sbps_sim: httpx.AsyncClient) -> SbpsApi:
    return SbpsApi(sbps_sim)


def order(
    order_id: str,
    *,
    amount: int = 1000,
    token: TokenPair | None = None,
    cust_code: str = "cust-1",
    save: bool = False,
    item_name: str = "テスト商品",
) -> list[Field]:
    """ST01-00131-101's elements after merchant_id/service_id, in the notes' order."""
    manage: list[Field] = []
    if token is not None:
        manage = [("token", token.token), ("token_key", token.token_key)]
    manage += [("cust_manage_flg", "1" if save else "0"), ("cardbrand_return_flg", "1")]
    return [
        ("cust_code", cust_code),
        ("order_id", order_id),
        ("item_id", "ITEM-1"),
        ("item_name", item_name),
        ("amount", str(amount)),
        ("pay_method_info", [("dealings_type", "10")]),
        ("pay_option_manage", manage),
        ("encrypted_flg", "0"),
    ]


def target(answer: Answer, amount: int | None = None) -> list[Field]:
    items: list[Field] = [
        ("sps_transaction_id", answer["res_sps_transaction_id"]),
        ("tracking_id", answer["res_tracking_id"]),
        ("processing_datetime", jst_stamp()),
    ]
    if amount is not None:
        items.append(("pay_option_manage", [("amount", str(amount))]))
    return items


async def authorize(api: SbpsApi, order_id: str, *, card: str = CARD_OK, **kwargs: Any) -> Answer:
    token = await make_token(api.http, card=card)
    return await api.call(AUTHORIZE, order(order_id, token=token, **kwargs))


async def lookup(api: SbpsApi, items: Sequence[Field]) -> Answer:
    answer = await api.call(LOOKUP, items)
    assert answer.ok, answer.raw
    return answer


async def ledger(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("_sandbox/ledger")
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()
    return rows


# --- lifecycle -----------------------------------------------------------------------------


async def test_authorize_commit_sales_partial_refund_and_refund(api: SbpsApi) -> None:
    auth = await authorize(api, "ord-life-1", amount=1500)
    assert auth.ok and auth.code == ""
    assert re.fullmatch(r"[0-9A-Z]{32}", auth["res_sps_transaction_id"])
    assert re.fullmatch(r"\d{14}", auth["res_tracking_id"])
    assert re.fullmatch(r"\d{7}", auth["res_pay_method_info/recognized_no"])
    assert auth["res_pay_method_info/cardbrand_code"] == "V"
    assert re.fullmatch(r"\d{14}", auth["res_date"])

    seen = await lookup(api, [("sps_transaction_id", auth["res_sps_transaction_id"])])
    info = "res_pay_method_info"
    assert seen["res_status"] == "0"
    assert seen[f"{info}/res_pay_method_info_detail/cc_number"] == "************1111"
    assert seen[f"{info}/res_pay_method_info_detail/cc_expiration"] == future_expiration()
    assert seen[f"{info}/res_pay_method_info_detail/dealings_type"] == "10"
    assert (seen[f"{info}/commit_status"], seen[f"{info}/payment_status"]) == ("0", "1")

    assert (await api.call(COMMIT, target(auth))).ok
    seen = await lookup(api, [("tracking_id", auth["res_tracking_id"])])
    assert (seen[f"{info}/commit_status"], seen[f"{info}/payment_status"]) == ("1", "1")

    sold = await api.call(SALES, target(auth, 1200))  # lower than authorized: allowed
    assert sold.ok and sold["res_sps_transaction_id"] == auth["res_sps_transaction_id"]
    seen = await lookup(api, [("order_id", "ord-life-1")])
    assert seen[f"{info}/payment_status"] == "2"

    assert (await api.call(PARTIAL, target(auth, 200))).ok
    assert (await api.call(PARTIAL, target(auth, 1001))).code == "101K0999"  # over what is left
    assert (await api.call(REFUND, target(auth))).ok
    seen = await lookup(api, [("sps_transaction_id", auth["res_sps_transaction_id"])])
    assert seen[f"{info}/payment_status"] == "3"
    assert (await api.call(PARTIAL, target(auth, 100))).code == "101K1999"
    assert (await api.call(REFUND, target(auth))).code == "10140999"

    [row] = await ledger(api.http)
    assert row["item_name"] == "テスト商品"  # Base64 of Shift_JIS on the wire
    assert (row["amount"], row["sold_amount"], row["refunded_amount"]) == (1500, 1200, 1200)
    assert [r["amount"] for r in row["refunds"]] == [200, 1000]
    assert row["balance"] == 0


async def test_sales_rules_and_cancel(api: SbpsApi) -> None:
    auth = await authorize(api, "ord-sales-1", amount=1000)
    assert (await api.call(SALES, target(auth))).code == "10140999"  # not committed yet
    assert (await api.call(COMMIT, target(auth))).ok
    assert (await api.call(COMMIT, target(auth))).code == "10140999"  # committed twice
    assert (await api.call(SALES, target(auth, 1001))).code == "10179999"  # over: 79
    assert (await api.call(SALES, target(auth))).ok
    assert (await api.call(SALES, target(auth))).code == "10141999"  # already sold
    assert (await api.call(CANCEL, target(auth))).code == "10141999"  # sold: refund instead

    other = await authorize(api, "ord-cancel-1", amount=700)
    assert (await api.call(CANCEL, target(other))).ok
    assert (await api.call(CANCEL, target(other))).code == "10140999"
    seen = await lookup(api, [("sps_transaction_id", other["res_sps_transaction_id"])])
    assert seen["res_pay_method_info/payment_status"] == "4"
    unknown = [("sps_transaction_id", "Z" * 32), ("processing_datetime", jst_stamp())]
    assert (await api.call(COMMIT, unknown)).code == "10111999"


async def test_sales_after_the_third_month_is_refused(api: SbpsApi) -> None:
    auth = await authorize(api, "ord-late-1")
    assert (await api.call(COMMIT, target(auth))).ok
    await api.http.post("_sandbox/clock", json={"advance_seconds": 130 * 86400})
    # The clock moved: the request_date must follow it.
    clock = (await api.http.get("_sandbox/clock")).json()
    stamp = clock["now"][:19].replace("-", "").replace("T", "").replace(":", "")
    answer = await api.call(SALES, target(auth), request_date=stamp)
    assert answer.code == "10142999"


async def test_reauthorization_on_a_tracking_id(api: SbpsApi) -> None:
    first = await authorize(api, "ord-re-1", amount=1000)
    items: list[Field] = [
        ("tracking_id", first["res_tracking_id"]),
        ("cust_code", "cust-1"),
        ("order_id", "ord-re-2"),
        ("item_id", "ITEM-1"),
        ("amount", "1200"),
        (
            "pay_option_manage",
            [
                ("cust_manage_flg", "0"),
                ("pay_info_control_type", "B"),
                ("pay_info_detail_control_type", "B"),
            ],
        ),
    ]
    again = await api.call(REAUTH, items)
    assert again.ok and again["res_tracking_id"] != first["res_tracking_id"]
    assert (await api.call(REAUTH, items)).code == "10196999"  # same new order_id
    assert (await api.call(CANCEL, target(first))).ok
    rows = {r["order_id"]: r for r in await ledger(api.http)}
    assert rows["ord-re-2"]["reauth_of"] == first["res_tracking_id"]
    assert rows["ord-re-2"]["card"] == rows["ord-re-1"]["card"]
    assert (rows["ord-re-1"]["balance"], rows["ord-re-2"]["balance"]) == (0, 1200)
    bad = [("tracking_id", "99999999999999"), *items[1:2], ("order_id", "ord-re-3"), *items[3:]]
    assert (await api.call(REAUTH, bad)).code == "10111031"


# --- duplicates, declines and magic cards ------------------------------------------------------


async def test_the_same_order_again_is_96_and_charges_nothing(api: SbpsApi) -> None:
    token = await make_token(api.http)
    body = build(AUTHORIZE, order("ord-dup-1", token=token))
    first = read_answer(await api.post(body))
    assert first.ok
    resent = read_answer(await api.post(body))  # the very same request (token already used)
    assert (resent.ok, resent.code, resent.id) == (False, "10196999", None)
    assert set(resent.values) == {"res_result", "res_err_code", "res_date"}
    assert (await authorize(api, "ord-dup-1")).code == "10196999"  # a fresh token too
    assert len(await ledger(api.http)) == 1


@pytest.mark.parametrize(
    ("card", "code"),
    [
        (CARD_DECLINE_G12, "10126G12"),
        (CARD_DECLINE_G55, "10122G55"),
        (CARD_DECLINE_G83, "10127G83"),
    ],
)
async def test_decline_cards(api: SbpsApi, card: str, code: str) -> None:
    answer = await authorize(api, "ord-decline-1", card=card)
    assert answer.code == code
    [row] = await ledger(api.http)
    assert (row["approved"], row["err_code"], row["balance"]) == (False, code, 0)
    assert (await authorize(api, "ord-decline-1")).code == "10196999"  # it arrived: 96
    seen = await lookup(api, [("order_id", "ord-decline-1")])
    assert (seen["res_status"], seen["res_tracking_id"]) == ("1", "")


async def test_slow_and_timeout_cards(api: SbpsApi) -> None:
    await api.http.post("_sandbox/config", json={"slow_seconds": 0.4, "hang_seconds": 1.5})
    started = time.monotonic()
    assert (await authorize(api, "ord-slow-1", card=CARD_SLOW)).ok
    assert time.monotonic() - started >= 0.4
    token = await make_token(api.http, card=CARD_TIMEOUT)
    with pytest.raises(httpx.ReadTimeout):
        await api.http.post(
            "api/xmlapi.do",
            content=build(AUTHORIZE, order("ord-hang-1", token=token)),
            auth=(MERCHANT_ID + SERVICE_ID, HASH_KEY),
            timeout=0.5,
        )
    seen = await lookup(api, [("order_id", "ord-hang-1")])  # settled by lookup
    assert (seen["res_status"], seen["res_pay_method_info/payment_status"]) == ("0", "1")


# --- the wire: auth, hash, dates, XML ---------------------------------------------------------


async def test_basic_auth(api: SbpsApi) -> None:
    body = build(LOOKUP, [("order_id", "x")])
    for auth in ((MERCHANT_ID + SERVICE_ID, "wrong"), (MERCHANT_ID, HASH_KEY)):
        response = await api.post(body, auth=auth)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")
    bare = await api.http.post("api/xmlapi.do", content=body)
    assert bare.status_code == 401


async def test_hash_date_and_envelope_checks(api: SbpsApi) -> None:
    items: list[Field] = [("order_id", "nothing-here")]
    assert (await api.call(LOOKUP, items)).code == "10111999"  # well-formed: gets that far
    assert (await api.call(LOOKUP, items, key="another-key")).code == "10109999"
    assert (await api.call(LOOKUP, items, sps_hashcode="0" * 40)).code == "10109999"
    assert (await api.call(LOOKUP, items, request_date=jst_stamp(-601))).code == "10110999"
    late = await api.call(LOOKUP, items, request_date=jst_stamp(-90), limit_second="60")
    assert late.code == "10110999"
    assert (await api.call(LOOKUP, items, request_date=jst_stamp(-30), limit_second="")).code == (
        "10111999"  # limit_second left out: 600
    )
    assert (await api.call(LOOKUP, items, request_date=jst_stamp(3600))).code == "10110999"
    assert (await api.call("ZZ99-00000-101", items)).code == "10107999"
    tabbed = await api.call(LOOKUP, [("order_id", "a\tb")])
    assert tabbed.code == "10104004"
    assert (await api.call(AUTHORIZE, order("o-1")[1:])).code == "10103003"  # no cust_code

    def raw(text: str) -> bytes:
        return text.encode("shift_jis")

    for hostile in (
        raw(
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "v">]><sps-api-request id="'
            f'{LOOKUP}"><order_id>&e;</order_id></sps-api-request>'
        ),
        raw("not xml at all"),
        raw(f'<?xml version="1.0" encoding="UTF-8"?><sps-api-request id="{LOOKUP}"/>'),
        b'<?xml version="1.0" encoding="Shift_JIS"?><a>\x82</a>',
    ):
        answer = read_answer(await api.post(hostile))
        assert (answer.code, answer.id) == ("99904999", None)


async def test_multibyte_fields_hash_before_base64(api: SbpsApi) -> None:
    token = await make_token(api.http)
    items = order("ord-mb-1", token=token, item_name="日本語の商品名")
    assert (await api.call(AUTHORIZE, items)).ok
    # A client that hashed the Base64 text instead: 09.
    encoded = base64.b64encode("日本語".encode("shift_jis")).decode()
    wrong = order("ord-mb-2", token=await make_token(api.http), item_name="日本語")
    everything: list[Field] = [("merchant_id", MERCHANT_ID), ("service_id", SERVICE_ID)]
    swapped = [(t, encoded if t == "item_name" else v) for t, v in wrong]
    stamp = jst_stamp()
    digest = hashcode([*everything, *swapped, ("request_date", stamp), ("limit_second", "600")])
    answer = await api.call(AUTHORIZE, wrong, request_date=stamp, sps_hashcode=digest)
    assert answer.code == "10109999"


async def test_answers_are_shift_jis_xml_with_a_session_cookie(api: SbpsApi) -> None:
    response = await api.post(build(LOOKUP, [("order_id", "none")]))
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "JSESSIONID" in response.headers["set-cookie"]
    assert response.content.startswith(b'<?xml version="1.0" encoding="Shift_JIS"?>')
    assert b"<res_err_code>10111999</res_err_code>" in response.content


# --- tokens -------------------------------------------------------------------------------


async def test_token_shape_reuse_and_expiry(api: SbpsApi) -> None:
    token = await make_token(api.http)
    assert re.fullmatch(r"[0-9a-f]{232}", token.token)
    assert token.token_key.startswith("3059301306072A8648CE3D020106082A8648CE3D030107034200")
    assert token.answer["maskedCcNumber"] == "************1111"
    assert token.answer["cardBrandCode"] == "V"
    assert (await api.call(AUTHORIZE, order("ord-tok-1", token=token))).ok
    reused = await api.call(AUTHORIZE, order("ord-tok-2", token=token))
    assert reused.code == "101T1022"

    other = await make_token(api.http)
    mixed = TokenPair(other.token, token.token_key, {})
    assert (await api.call(AUTHORIZE, order("ord-tok-3", token=mixed))).code == "101T1022"

    await api.http.post("_sandbox/config", json={"token_ttl_seconds": 1})
    await asyncio.sleep(1.2)
    expired = await api.call(AUTHORIZE, order("ord-tok-4", token=other))
    assert expired.code == "101T2022"
    assert len([r for r in await ledger(api.http) if r["approved"]]) == 1


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"merchantId": ""}, "03001"),
        ({"merchantId": "3013x"}, "04001"),
        ({"merchantId": "99999"}, "07001"),
        ({"serviceId": "02"}, "05002"),
        ({"ccNumber": ""}, "03003"),
        ({"ccNumber": "4444-3333"}, "04003"),
        ({"ccNumber": "4444333322221112"}, "07003"),
        ({"ccNumber": "44443333222211110"}, "05003"),
        ({"ccExpiration": "2099"}, "05004"),
        ({"ccExpiration": "209913"}, "07004"),
        ({"ccExpiration": "201001"}, "07004"),
        ({"securityCode": "12"}, "05005"),
        ({"securityCode": "12a"}, "04005"),
    ],
)
async def test_token_errors(sbps_sim: httpx.AsyncClient, form: dict[str, str], code: str) -> None:
    base = {
        "merchantId": MERCHANT_ID,
        "serviceId": SERVICE_ID,
        "ccNumber": CARD_OK,
        "ccExpiration": future_expiration(),
        "securityCode": "123",
    }
    response = await sbps_sim.post("sbpstoken/token", data={**base, **form})
    assert response.json() == {"result": "NG", "errorCode": code}
    assert response.headers["access-control-allow-origin"] == "*"


async def test_token_scripts_are_served(sbps_sim: httpx.AsyncClient) -> None:
    for name, symbol in (
        ("com_sbps_system_token.js", "com_sbps_system.generateToken"),
        ("com_sbps_system_tds2infotoken.js", "com_sbps_system_tds2.generateToken"),
    ):
        response = await sbps_sim.get(f"sbpstoken/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/javascript")
        assert symbol in response.text
    with pytest.raises(SbpsTokenError) as caught:
        await make_tds_info_token(sbps_sim, email="")
    assert caught.value.code == "03006"


# --- maintenance, stored cards ----------------------------------------------------------------


async def test_maintenance_codes(api: SbpsApi) -> None:
    for code in ("10121999", "10123999", "10128999", "10136999"):
        r = await api.http.post("_sandbox/maintenance", json={"on": True, "code": code})
        assert r.json() == {"on": True, "code": code}
        assert (await authorize(api, "ord-mnt-1")).code == code
        assert (await api.call(LOOKUP, [("order_id", "x")])).code == code
    await api.http.post("_sandbox/maintenance", json={"on": False})
    assert (await authorize(api, "ord-mnt-1")).ok


async def test_stored_card_save_lookup_pay_and_delete(api: SbpsApi) -> None:
    cust = [("cust_code", "cust-9")]
    assert (await api.call(CARD, cust)).code == "10195999"
    assert (await api.call(AUTHORIZE, order("ord-st-0", cust_code="cust-9"))).code == "10195999"
    token = await make_token(api.http, card="5555555555554444")
    items: list[Field] = [
        *cust,
        ("pay_option_manage", [("token", token.token), ("token_key", token.token_key)]),
    ]
    saved = await api.call(SAVE_CARD, items)
    assert saved.ok and saved["res_pay_method_info/cardbrand_code"] == "M"
    card = await api.call(CARD, cust)
    assert card["res_pay_method_info/cc_number"] == "************4444"
    assert card["res_pay_method_info/cc_expiration"] == future_expiration()
    paid = await api.call(AUTHORIZE, order("ord-st-1", cust_code="cust-9"))
    assert paid.ok and paid["res_pay_method_info/cardbrand_code"] == "M"
    assert (await api.call(DELETE_CARD, cust)).ok
    assert (await api.call(CARD, cust)).code == "10195999"
    assert (await api.call(DELETE_CARD, cust)).code == "10195999"

    # cust_manage_flg=1 on an authorization saves its card on cust_code.
    assert (await authorize(api, "ord-st-2", cust_code="cust-10", save=True)).ok
    card = await api.call(CARD, [("cust_code", "cust-10")])
    assert card["res_pay_method_info/cc_number"] == "************1111"
    declined = await make_token(api.http, card=CARD_DECLINE_G12)
    items = [("cust_code", "cust-11"), *items[1:]]
    items[1] = ("pay_option_manage", [("token", declined.token), ("token_key", declined.token_key)])
    assert (await api.call(SAVE_CARD, items)).code == "10126G12"


# --- 3-D Secure ------------------------------------------------------------------------------


async def tds_start(api: SbpsApi, order_id: str, card: str) -> Answer:
    token = await make_token(api.http, card=card)
    info = await make_tds_info_token(api.http)
    items = order(order_id, token=token)
    manage = dict(items)["pay_option_manage"]
    assert not isinstance(manage, str)
    items[-2] = (
        "pay_option_manage",
        [
            *manage[:2],
            ("tds_info_token", info.token),
            ("tds_info_token_key", info.token_key),
            ("ok_return_url", f"{RETURN}/ok?o={order_id}"),
            ("ng_return_url", f"{RETURN}/ng?o={order_id}"),
        ],
    )
    started = await api.call(TDS_START, items)
    assert started.ok, started.raw
    return started


def returned(response: httpx.Response) -> tuple[str, dict[str, list[str]]]:
    assert response.status_code == 303, response.text
    parts = urlsplit(response.headers["location"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


async def tds_authorize(api: SbpsApi, started: Answer) -> Answer:
    auth_id = started["res_tds_authentication_id"]
    return await api.call(
        TDS_AUTHORIZE, [("pay_option_manage", [("tds_authentication_id", auth_id)])]
    )


async def test_3ds_frictionless(api: SbpsApi) -> None:
    started = await tds_start(api, "ord-3ds-1", CARD_OK)
    redirect = started["redirect_url"]
    assert redirect.startswith(str(api.http.base_url))
    url, query = returned(await api.http.get(redirect))
    assert url == f"{RETURN}/ok"
    assert query["o"] == ["ord-3ds-1"] and query["res_result"] == ["OK"]
    assert query["res_tds_authentication_id"] == [started["res_tds_authentication_id"]]
    auth = await tds_authorize(api, started)
    assert auth.ok and len(auth["res_tracking_id"]) == 14
    assert (await api.call(COMMIT, target(auth))).ok
    assert (await tds_authorize(api, started)).code == "10196999"  # used
    [row] = await ledger(api.http)
    assert (row["via"], row["commit_status"]) == ("3ds", "1")


async def test_3ds_challenge_passed_failed_and_canceled(api: SbpsApi) -> None:
    started = await tds_start(api, "ord-3ds-2", CARD_3DS_CHALLENGE)
    page = await api.http.get(started["redirect_url"])
    assert page.status_code == 200 and "<form" in page.text and "<script" not in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "https://shop.example" in csp
    assert (await tds_authorize(api, started)).code == "101D1999"  # not authenticated yet
    url, query = returned(
        await api.http.post(started["redirect_url"], data={"action": "complete", "code": "1234"})
    )
    assert url == f"{RETURN}/ok" and query["res_result"] == ["OK"]
    assert (await tds_authorize(api, started)).ok

    wrong = await tds_start(api, "ord-3ds-3", CARD_3DS_CHALLENGE)
    await api.http.get(wrong["redirect_url"])
    url, query = returned(
        await api.http.post(wrong["redirect_url"], data={"action": "complete", "code": "0000"})
    )
    assert url == f"{RETURN}/ng" and query["res_result"] == ["NG"]
    assert (await tds_authorize(api, wrong)).code == "101D1999"
    url, _ = returned(await api.http.get(wrong["redirect_url"]))  # a reload: the same answer
    assert url == f"{RETURN}/ng"

    canceled = await tds_start(api, "ord-3ds-4", CARD_3DS_CHALLENGE)
    await api.http.get(canceled["redirect_url"])
    url, _ = returned(await api.http.post(canceled["redirect_url"], data={"action": "cancel"}))
    assert url == f"{RETURN}/ng"
    assert [r["order_id"] for r in await ledger(api.http)] == ["ord-3ds-2"]


async def test_3ds_fail_card_and_unknown_authentication(api: SbpsApi) -> None:
    started = await tds_start(api, "ord-3ds-5", CARD_3DS_FAIL)
    url, query = returned(await api.http.get(started["redirect_url"]))
    assert url == f"{RETURN}/ng" and query["res_result"] == ["NG"]
    assert (await tds_authorize(api, started)).code == "101D1999"
    unknown = [("pay_option_manage", [("tds_authentication_id", "0" * 32)])]
    assert (await api.call(TDS_AUTHORIZE, unknown)).code == "10111037"
    assert (await api.http.get("tds2/authenticate/nope")).status_code == 404
    again = await tds_start(api, "ord-3ds-6", CARD_OK)
    await api.http.get(again["redirect_url"])
    assert (await authorize(api, "ord-3ds-6")).ok  # authorized without 3-D Secure meanwhile
    assert (await tds_authorize(api, again)).code == "10196999"


# --- faults and the ledger --------------------------------------------------------------------


async def test_timeout_after_charge_keeps_the_charge(api: SbpsApi) -> None:
    await api.http.post("_sandbox/config", json={"hang_seconds": 2})
    await api.http.post("_sandbox/faults", json={"timeout_after_charge": 1.0})
    token = await make_token(api.http)
    with pytest.raises(httpx.ReadTimeout):
        await api.http.post(
            "api/xmlapi.do",
            content=build(AUTHORIZE, order("ord-fault-1", token=token, amount=2500)),
            auth=(MERCHANT_ID + SERVICE_ID, HASH_KEY),
            timeout=0.5,
        )
    [row] = await ledger(api.http)
    assert (row["order_id"], row["approved"], row["amount"]) == ("ord-fault-1", True, 2500)
    await api.http.post("_sandbox/faults", json={})
    assert (await authorize(api, "ord-fault-1")).code == "10196999"  # the re-send: evidence


async def test_http_500_and_garbage(api: SbpsApi) -> None:
    await api.http.post("_sandbox/faults", json={"http_500": 1.0})
    token = await make_token(api.http)
    response = await api.post(build(AUTHORIZE, order("ord-500", token=token)))
    assert response.status_code == 500
    assert await ledger(api.http) == []  # refused before anything happened
    assert (await api.call(LOOKUP, [("order_id", "x")])).code == "10111999"  # not money: no fault

    await api.http.post("_sandbox/faults", json={"garbage_after_charge": 1.0})
    response = await api.post(build(AUTHORIZE, order("ord-500", token=token)))
    assert response.status_code == 200
    with pytest.raises(UnicodeDecodeError):
        response.content.decode("shift_jis")
    assert [r["order_id"] for r in await ledger(api.http)] == ["ord-500"]
    # A decline's answer can be lost as well: the attempt is recorded, the body is garbage.
    declined = await make_token(api.http, card=CARD_DECLINE_G12)
    response = await api.post(build(AUTHORIZE, order("ord-500-d", token=declined)))
    assert b"<sps-api-response" not in response.content
    rows = {r["order_id"]: r for r in await ledger(api.http)}
    assert (rows["ord-500-d"]["approved"], rows["ord-500-d"]["err_code"]) == (False, "10126G12")


async def test_the_ledger_is_what_happened(api: SbpsApi) -> None:
    expected: dict[str, tuple[bool, int]] = {}
    for i, card in enumerate((CARD_OK, CARD_DECLINE_G55, CARD_OK, CARD_OK)):
        answer = await authorize(api, f"ord-l-{i}", card=card, amount=1000 + i)
        expected[f"ord-l-{i}"] = (answer.ok, 1000 + i if answer.ok else 0)
        if i == 2:
            assert (await api.call(CANCEL, target(answer))).ok
            expected[f"ord-l-{i}"] = (True, 0)
        if i == 3:
            assert (await api.call(COMMIT, target(answer))).ok
            assert (await api.call(SALES, target(answer, 900))).ok
            assert (await api.call(PARTIAL, target(answer, 100))).ok
            expected[f"ord-l-{i}"] = (True, 800)
    rows = await ledger(api.http)
    assert {r["order_id"]: (r["approved"], r["balance"]) for r in rows} == expected
    assert (await api.http.post("_sandbox/reset")).json() == {"ok": True}
    assert await ledger(api.http) == []
