"""Payment gateways behind one neutral protocol; providers live in subpackages.

`build_gateway` and `build_billing_robo` are the only way in to a provider: the composition
roots (app.main, app.cli) call them, and nothing else outside app/gateway/ imports a provider
module. Providers are imported inside the factories so that importing the neutral types
(app.gateway.base) never loads a provider.
"""

from __future__ import annotations

import httpx

from app.config import Settings
from app.gateway.base import (
    BillingRobo,
    CallRecorder,
    CardResult,
    ChargePage,
    ChargeQuery,
    ChargeRecord,
    ChargeResult,
    ChargeSearchLimits,
    ChargeSort,
    ChargeStatus,
    ErrorKind,
    GatewayCall,
    GatewayErrorInfo,
    OnetouchCharge,
    OnetouchJob,
    Outcome,
    PaymentGateway,
    Reauthorization,
    SearchError,
    TokenCharge,
    TokenJob,
    UserResult,
)
from app.gateway.http import call_deadline

__all__ = [
    "BillingRobo",
    "CallRecorder",
    "CardResult",
    "ChargePage",
    "ChargeQuery",
    "ChargeRecord",
    "ChargeResult",
    "ChargeSearchLimits",
    "ChargeSort",
    "ChargeStatus",
    "ErrorKind",
    "GatewayCall",
    "GatewayErrorInfo",
    "OnetouchCharge",
    "OnetouchJob",
    "Outcome",
    "PaymentGateway",
    "Reauthorization",
    "SearchError",
    "TokenCharge",
    "TokenJob",
    "UserResult",
    "build_billing_robo",
    "build_gateway",
    "make_http_client",
    "page_messages",
]


def _deadline(settings: Settings) -> float:
    return call_deadline(settings.gateway_connect_timeout, settings.gateway_read_timeout)


def make_http_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The one HTTP client of a process's gateway clients (`transport`: the in-process
    simulator in sandbox mode)."""
    from app.gateway.http import make_http_client as make

    return make(
        connect_timeout=settings.gateway_connect_timeout,
        read_timeout=settings.gateway_read_timeout,
        proxy=settings.gateway_proxy or None,
        transport=transport,
    )


def build_gateway(
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    recorder: CallRecorder | None,
    base_url: str,
    search_url: str,
) -> PaymentGateway:
    """The one payment gateway client of a process: ROBOT PAYMENT, or SBPS with
    GATEWAY_PROVIDER=sbps (`base_url`: then SBPS's API root; `search_url` is not used)."""
    if settings.gateway_provider == "sbps":
        return _build_sbps(settings, http, recorder=recorder, base_url=base_url)
    from app.gateway.robotpayment import RobotPaymentClient

    return RobotPaymentClient(
        http=http,
        base_url=base_url,
        aid=settings.gateway_aid,
        result_mode=settings.gateway_result_mode,
        search_base_url=search_url,
        search_api_key=settings.search_api_key.get_secret_value(),
        search_read_timeout=settings.search_api_read_timeout,
        recorder=recorder,
        deadline_seconds=_deadline(settings),
        connection_auth_code=settings.gateway_connection_auth_code.get_secret_value(),
    )


def _build_sbps(
    settings: Settings, http: httpx.AsyncClient, *, recorder: CallRecorder | None, base_url: str
) -> PaymentGateway:
    from app.gateway.sbps import HashKey, SbpsGateway

    return SbpsGateway(
        http=http,
        base_url=base_url,
        merchant_id=settings.sbps_merchant_id,
        service_id=settings.sbps_service_id,
        hash_key=HashKey(settings.sbps_hash_key.get_secret_value()),
        recorder=recorder,
        deadline_seconds=_deadline(settings),
        item_id=settings.sbps_item_id,
    )


def page_messages(settings: Settings) -> dict[str, dict[str, str]]:
    """What the provider's page script must be able to say, per language, as `js_` keys of
    app/web/i18n.py (the composition root hands them to the pages): with SBPS, a readable
    message for every error code of com_sbps_system_token.js (`js_err_sbps_<code>`, and
    `js_err_sbps_unknown` with a {code} placeholder); ROBOT PAYMENT's are in i18n already."""
    if settings.gateway_provider != "sbps":
        return {}
    from app.gateway.sbps.token_errors import KNOWN_CODES, message_for

    ja: dict[str, str] = {}
    en: dict[str, str] = {}
    for code, message in KNOWN_CODES.items():
        ja[f"js_err_sbps_{code}"] = message.message_ja
        en[f"js_err_sbps_{code}"] = message.message_en
    # An unknown code's message names it: the script fills in {code}.
    unknown = message_for("{code}")
    ja["js_err_sbps_unknown"] = unknown.message_ja
    en["js_err_sbps_unknown"] = unknown.message_en
    return {"ja": ja, "en": en}


def build_billing_robo(
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    recorder: CallRecorder | None,
    base_url: str,
) -> BillingRobo | None:
    """The billing-robo client, or None when it is not configured (live without a URL)."""
    if not base_url:
        return None
    from app.gateway.billingrobo import BillingRoboClient

    return BillingRoboClient(
        http=http,
        base_url=base_url,
        user_id=settings.billing_robo_user_id,
        access_key=settings.billing_robo_access_key.get_secret_value(),
        recorder=recorder,
        deadline_seconds=_deadline(settings),
    )
