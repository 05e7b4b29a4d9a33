"""All settings, from the environment (and `.env`), in one place.

With no configuration at all the service runs on a local SQLite file and the in-process
sandbox gateway. `GATEWAY_MODE=live` refuses to start until everything a real shop needs is set.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent

SANDBOX_AID = "100001"
# Development keys, printed at start in sandbox mode; live mode refuses to run with them.
SANDBOX_API_KEYS = "sk_test_merchant_0001:merchant,sk_test_ops_0001:ops"
SANDBOX_SEARCH_API_KEY = "sandbox-search-key"
SANDBOX_MOUNT = "/sandbox"
# The SBPS simulator's mount in sandbox mode with GATEWAY_PROVIDER=sbps, and the ids and hash
# key the app and that simulator share there (live refuses them).
SANDBOX_SBPS_MOUNT = "/sandbox-sbps"
SANDBOX_SBPS_MERCHANT_ID = "30132"
SANDBOX_SBPS_SERVICE_ID = "002"
SANDBOX_SBPS_HASH_KEY = "sandbox-sbps-hash-key-not-for-live-000000"
SBPS_TOKEN_JS = "com_sbps_system_token.js"
SBPS_TDS2_JS = "com_sbps_system_tds2infotoken.js"
# Where the SBPS simulator serves the token script (app/sandbox/sbps/browser.py).
SANDBOX_SBPS_TOKEN_JS_PATH = f"/sbpstoken/{SBPS_TOKEN_JS}"
# research/sbps-notes.md "Transport": the connection-test and production API endpoints.
SBPS_API_PATH = "/api/xmlapi.do"
SBPS_TEST_API_URL = "https://stbfep.sps-system.com/api/xmlapi.do"
SBPS_PRODUCTION_API_URL = "https://api.sps-system.com/api/xmlapi.do"
_SBPS_MERCHANT_ID = re.compile(r"[0-9]{5}")
_SBPS_SERVICE_ID = re.compile(r"[0-9]{3}")
# SBPS item_id: up to 32 half-width characters (sent on every authorization).
_SBPS_ITEM_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# The simulator's billing-robo login (the standalone simulator defaults to the same).
SANDBOX_BILLING_ROBO_USER_ID = "sandbox@billing-robo.example"
SANDBOX_BILLING_ROBO_ACCESS_KEY = "sandbox-billing-robo-key"
# The kickback path's secret in sandbox (the gateway's URL setting is /kickback/<secret>).
SANDBOX_KICKBACK_SECRET = "sandbox-kickback-secret"
# What encrypts webhook signing secrets at rest in sandbox; live needs its own.
SANDBOX_WEBHOOK_SECRET_KEY = "sandbox-webhook-secret-key-not-for-live"
WEBHOOK_SECRET_KEY_MIN_LIVE = 32
KICKBACK_SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
KICKBACK_SECRET_MIN_LIVE = 32
# SHOP_ACCENT_COLOR: one colour, written as CSS and HTML write it.
ACCENT_COLOR_PATTERN = re.compile(r"#[0-9a-fA-F]{6}")
# A logo URL's host name (letters, digits, dots, hyphens): nothing that could end a CSP source.
_HOST_PATTERN = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")

# PAY_CLAIM_SECONDS' default (also what callers without settings use: payments.service).
PAY_CLAIM_SECONDS = 120.0
# KICKBACK_EXPECTED_SECONDS' default: the kickback comes within about 30 s (GATEWAY.md).
KICKBACK_EXPECTED_SECONDS = 30.0

Role = Literal["merchant", "ops"]


@dataclass(frozen=True)
class ApiKey:
    """An API key kept only as its SHA-256 digest, with the role it grants."""

    digest: bytes
    role: Role
    # A short, non-secret name for logs and audit rows: the start of the key's SHA-256, never
    # the key's own characters (8 of a 12-character key would leave 4 to guess).
    label: str


def key_label(digest: bytes) -> str:
    return "key_" + digest.hex()[:8]


def parse_api_keys(raw: str) -> list[ApiKey]:
    keys: list[ApiKey] = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        secret, sep, role = item.rpartition(":")
        if not sep or not secret or role not in ("merchant", "ops"):
            raise ValueError(
                "API_KEYS must be comma-separated 'secret:role' pairs with role merchant or ops"
            )
        if len(secret) < 12:
            raise ValueError("API_KEYS: every secret must be at least 12 characters")
        digest = hashlib.sha256(secret.encode()).digest()
        keys.append(
            ApiKey(
                digest=digest,
                role=role,  # type: ignore[arg-type]  # checked just above
                label=key_label(digest),
            )
        )
    return keys


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # --- storage ---------------------------------------------------------------------------
    database_url: str = Field(default=f"sqlite+aiosqlite:///{ROOT / 'data' / 'rp.sqlite3'}")
    db_pool_size: int = 10

    # --- gateway ---------------------------------------------------------------------------
    gateway_mode: Literal["sandbox", "live"] = "sandbox"
    # Which payment service the checkout charges through (README "SBPS").
    gateway_provider: Literal["robotpayment", "sbps"] = "robotpayment"
    # Where .../gateway/*.aspx and .../gateway/js/*.js live. Empty in sandbox = in-process.
    gateway_base_url: str = ""
    # Where the shopper's browser loads the gateway JS from, when it differs from the server's
    # route to the gateway (e.g. a standalone simulator behind another host name).
    gateway_js_base_url: str = ""
    gateway_aid: str = SANDBOX_AID
    # Result mode sent as `rt`: 1 = synchronous response, 0 = result by kickback.
    gateway_result_mode: Literal[0, 1] = 1
    gateway_connect_timeout: float = 5.0
    gateway_read_timeout: float = 30.0
    # Optional egress proxy so every replica leaves through the one registered fixed IP.
    gateway_proxy: str = ""
    # 接続認証 (connection authentication) code from the control panel; empty = off. When set,
    # every request to the gateway's .aspx endpoints carries ut + hak (docs/gateway.md).
    gateway_connection_auth_code: SecretStr = SecretStr("")
    # Charges search API (seed 003). Empty in sandbox = the in-process simulator's.
    search_api_base_url: str = ""
    search_api_key: SecretStr = SecretStr(SANDBOX_SEARCH_API_KEY)
    # The charges search answers no shopper: it may wait longer than a charge does.
    search_api_read_timeout: float = Field(default=30.0, gt=0)
    # Billing robo (請求管理ロボ) API root, e.g. https://billing-robo.jp. Empty in sandbox = the
    # simulator (in-process, or GATEWAY_BASE_URL's standalone one); empty live = not used.
    billing_robo_base_url: str = ""
    billing_robo_user_id: str = SANDBOX_BILLING_ROBO_USER_ID
    billing_robo_access_key: SecretStr = SecretStr(SANDBOX_BILLING_ROBO_ACCESS_KEY)

    # SBPS (GATEWAY_PROVIDER=sbps). SBPS_API_URL: the xmlapi.do endpoint (empty in sandbox =
    # the in-process SBPS simulator); SBPS_TOKEN_JS_URL: com_sbps_system_token.js as SBPS
    # gives it at the start of service (empty in sandbox = the in-process simulator's).
    sbps_merchant_id: str = SANDBOX_SBPS_MERCHANT_ID
    sbps_service_id: str = SANDBOX_SBPS_SERVICE_ID
    sbps_hash_key: SecretStr = SecretStr(SANDBOX_SBPS_HASH_KEY)
    sbps_api_url: str = ""
    sbps_token_js_url: str = ""
    sbps_item_id: str = "item"
    # SBPS token pays run 3-D Secure 2.0 first (TA02-00101-101, the shopper's redirect, then
    # ST01-00118-101): mandatory for Japanese EC since 2025-03. Off only for a shop whose SBPS
    # contract has no 3-D Secure (the page then charges the token directly).
    sbps_three_ds: bool = True
    # com_sbps_system_tds2infotoken.js as SBPS issues it (empty in sandbox: the simulator's).
    sbps_tds2_js_url: str = ""

    # --- our HTTP surface -------------------------------------------------------------------
    api_keys: SecretStr = SecretStr(SANDBOX_API_KEYS)
    public_base_url: str = "http://127.0.0.1:8000"
    checkout_mode: Literal["custom", "popup"] = "custom"
    checkout_session_ttl_minutes: int = 30
    # The ops console's sign-in lasts this long without use (and 8 hours at most).
    ops_session_minutes: int = Field(default=30, ge=1, le=480)
    # The merchant's branding on the shopper's pages. SHOP_NAME: the header and every page's
    # title (empty: the generic "セキュアチェックアウト" / "Secure checkout"). SHOP_LOGO_URL: a
    # path on this server (/static/...) or the shop's https URL (sandbox also takes http, for
    # a local test): the pages' CSP then allows images from that URL's origin, nothing more.
    # SHOP_ACCENT_COLOR: #rrggbb for buttons, links and focus rings (served as /static/theme.css).
    shop_name: str = Field(default="", max_length=100)
    shop_logo_url: str = Field(default="", max_length=2000)
    shop_accent_color: str = ""
    # Kickbacks are trusted only on /kickback/<KICKBACK_SECRET> (the URL set as 決済結果通知URL)
    # and, when this list is set, only from these TCP peers; all others are verified through
    # the charges search before they change anything.
    kickback_secret: SecretStr = SecretStr(SANDBOX_KICKBACK_SECRET)
    kickback_allowed_ips: str = ""
    # Untrusted kickbacks (not the secret path, nor an allowed peer) stored per minute, per
    # source address and in all (per process); beyond that they are answered but not stored.
    kickback_untrusted_per_source_per_minute: int = Field(default=30, ge=0)
    kickback_untrusted_per_minute: int = Field(default=300, ge=0)
    # Charges-search calls per minute (per process) that verifying kickbacks may spend.
    kickback_verify_searches_per_minute: int = Field(default=30, ge=0)
    # Processed kickbacks are deleted after this many days; junk (unreadable, or untrusted and
    # unmatched/flagged) after the second.
    kickback_retention_days: int = Field(default=180, ge=1)
    kickback_junk_retention_days: int = Field(default=7, ge=1)
    spool_dir: Path = ROOT / "data" / "spool"
    # The proxies whose X-Forwarded-For is believed (comma-separated addresses or networks):
    # `python -m app serve` gives them to uvicorn; empty (the default) = none, the client
    # address is the connection's. The same variable uvicorn itself reads, which trusts
    # 127.0.0.1 when it is unset (README: "What the service trusts for the client address").
    forwarded_allow_ips: str = ""
    # Card testing: pay attempts per checkout session, and failed pays (declines, failed 3-D
    # Secure, bad tokens) plus attempts in flight per customer and per client IP within the
    # window; 0 = no limit.
    velocity_max_attempts_per_session: int = Field(default=5, ge=0)
    velocity_max_failures_per_customer: int = Field(default=10, ge=0)
    velocity_max_failures_per_ip: int = Field(default=20, ge=0)
    velocity_window_seconds: int = Field(default=3600, ge=1)

    # CSP violation reports (POST /csp-reports, from any browser): taken per minute per client
    # address and in all (per process); beyond that 429 with Retry-After. 0 = no limit.
    csp_reports_per_client_per_minute: int = Field(default=30, ge=0)
    csp_reports_per_minute: int = Field(default=600, ge=0)

    # Request bodies: larger is a 413 before anything reads it; one that has not arrived this
    # many seconds after the request started is a 408 (kickbacks get their 200 regardless).
    max_request_body_bytes: int = Field(default=64 * 1024, ge=1024)
    request_body_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- operations -------------------------------------------------------------------------
    # How often each replica's janitor settles unknown/stale payments from the charges search
    # (seconds; 0 disables the loop: run `python -m app reconcile` from a scheduler instead).
    reconcile_interval_seconds: float = Field(default=30.0, ge=0)
    reconcile_batch_size: int = Field(default=100, ge=1, le=1000)
    # How long a request holding an Idempotency-Key is presumed alive: a retry within this
    # time is 409; after it the key is taken over (longer than any request, gateway call
    # included).
    idempotency_claim_seconds: float = Field(default=300.0, gt=0)
    # How long a pay may take from claiming its payment to the "about to send" mark; after it
    # a pending payment without the mark provably never left and is failed, so the session can
    # be paid again.
    pay_claim_seconds: float = Field(default=PAY_CLAIM_SECONDS, gt=0)
    # rt=0: how long after an accepted pay its kickback is expected; without one by then
    # the janitor asks the charges search (instead of after its first minute).
    kickback_expected_seconds: float = Field(default=KICKBACK_EXPECTED_SECONDS, gt=0)
    # A card a payment registered is read back (masked number, expiry) right after its
    # commit; one still unread this long after (a crash or a gateway error between the two)
    # is read by the kickback loop.
    card_read_back_after_seconds: float = Field(default=60.0, gt=0)
    # The orphan sweep: successful charges in the gateway's records that no payment of ours
    # holds become flagged payments. Every interval a replica searches each complete window
    # that ended at least `grace` ago (one search per window); 0 = off.
    orphan_sweep_interval_seconds: float = Field(default=300.0, ge=0)
    orphan_sweep_window_seconds: float = Field(default=900.0, gt=0, le=7 * 86400)
    orphan_sweep_grace_seconds: float = Field(default=900.0, ge=0)
    # Payment-page integrity (README "Payment-page integrity"): how often a pass fetches the
    # gateway's scripts and our payment pages and compares them (one replica at a time, one
    # pass per interval across replicas; 0 = off: run `python -m app scripts check` from a
    # scheduler instead, at least weekly). On a gateway script whose hash is not approved:
    # popup = the card pages stop offering our custom form (ROBOT PAYMENT: popup mode; SBPS,
    # which has no popup: card payment unavailable) until a person approves the hash; keep =
    # alert only.
    script_watch_interval_seconds: float = Field(default=3600.0, ge=0)
    script_watch_on_change: Literal["keep", "popup"] = "popup"
    # --- merchant events (webhooks) ----------------------------------------------------------
    # Encrypts the endpoints' signing secrets in the database (comma-separated: the first
    # encrypts, all decrypt, so the key can be rotated); live needs its own.
    webhook_secret_key: SecretStr = SecretStr(SANDBOX_WEBHOOK_SECRET_KEY)
    # How often each replica's dispatcher looks for due deliveries, how many it takes at once,
    # and how many it sends side by side.
    webhook_poll_seconds: float = Field(default=0.5, gt=0)
    webhook_batch_size: int = Field(default=100, ge=1, le=1000)
    webhook_concurrency: int = Field(default=16, ge=1, le=256)
    # One POST's time limit (connect + answer).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Retries: the first after about WEBHOOK_RETRY_BASE_SECONDS, doubling (with jitter) up to
    # an hour apart, for WEBHOOK_RETRY_HOURS after the event; then it is given up on and its
    # endpoint is marked failing.
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_hours: float = Field(default=72.0, gt=0)
    # Loopback receivers (http://127.0.0.1:...) are allowed in sandbox (the demo shop, a
    # developer's machine); private and link-local addresses never are, nor anything in live.
    webhook_allow_loopback: bool = True
    # Events (and their deliveries and attempts) are deleted after this many days.
    event_retention_days: int = Field(default=30, ge=1)
    log_level: str = "INFO"
    # auto: human-readable in a terminal, one JSON object per line otherwise.
    log_format: Literal["auto", "text", "json"] = "auto"

    # --- sandbox simulator ------------------------------------------------------------------
    # Source IPs the simulator accepts (ER003 otherwise); empty = any.
    sandbox_allowed_ips: str = ""

    @field_validator("gateway_result_mode", mode="before")
    @classmethod
    def _result_mode_from_text(cls, value: object) -> object:
        # The environment gives "0"/"1"; an int Literal accepts only the numbers themselves.
        if isinstance(value, str) and value.strip() in ("0", "1"):
            return int(value)
        return value

    @field_validator("sbps_merchant_id")
    @classmethod
    def _sbps_merchant_id(cls, value: str) -> str:
        if not _SBPS_MERCHANT_ID.fullmatch(value.strip()):
            raise ValueError(f"SBPS_MERCHANT_ID must be 5 digits (got {value!r})")
        return value.strip()

    @field_validator("sbps_service_id")
    @classmethod
    def _sbps_service_id(cls, value: str) -> str:
        if not _SBPS_SERVICE_ID.fullmatch(value.strip()):
            raise ValueError(f"SBPS_SERVICE_ID must be 3 digits (got {value!r})")
        return value.strip()

    @field_validator("sbps_hash_key")
    @classmethod
    def _sbps_hash_key(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if not key or not key.isascii() or not key.isprintable() or key != key.strip():
            # Not echoed: the message must not carry the secret.
            raise ValueError("SBPS_HASH_KEY must be printable ASCII without spaces at the ends")
        return value

    @field_validator("sbps_item_id")
    @classmethod
    def _sbps_item_id(cls, value: str) -> str:
        if not _SBPS_ITEM_ID.fullmatch(value.strip()):
            raise ValueError(f"SBPS_ITEM_ID must be 1-32 of A-Z a-z 0-9 _ - (got {value!r})")
        return value.strip()

    @field_validator("sbps_api_url")
    @classmethod
    def _sbps_api_url(cls, value: str) -> str:
        value = value.strip()
        if value and (
            urlsplit(value).scheme not in ("http", "https") or not value.endswith(SBPS_API_PATH)
        ):
            raise ValueError(
                f"SBPS_API_URL must be the http(s) URL of {SBPS_API_PATH}, e.g. "
                f"{SBPS_TEST_API_URL} (got {value!r})"
            )
        return value

    @field_validator("sbps_token_js_url")
    @classmethod
    def _sbps_token_js_url(cls, value: str) -> str:
        value = value.strip()
        if value and (
            urlsplit(value).scheme not in ("http", "https")
            or not urlsplit(value).path.endswith(SBPS_TOKEN_JS)
        ):
            raise ValueError(
                f"SBPS_TOKEN_JS_URL must be the http(s) URL of {SBPS_TOKEN_JS} (got {value!r})"
            )
        return value

    @field_validator("kickback_secret")
    @classmethod
    def _kickback_secret_is_a_path_segment(cls, value: SecretStr) -> SecretStr:
        if not KICKBACK_SECRET_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError(
                "KICKBACK_SECRET must be 16-128 characters of A-Z a-z 0-9 _ - "
                "(it is one segment of the kickback URL)"
            )
        return value

    @field_validator("shop_name")
    @classmethod
    def _shop_name_is_one_line(cls, value: str) -> str:
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise ValueError("SHOP_NAME must be one line of text (no control characters)")
        return value.strip()

    @field_validator("shop_accent_color")
    @classmethod
    def _accent_is_a_colour(cls, value: str) -> str:
        value = value.strip()
        if value and not ACCENT_COLOR_PATTERN.fullmatch(value):
            raise ValueError(
                f"SHOP_ACCENT_COLOR must be a colour written #rrggbb, e.g. #0b5cad (got {value!r})"
            )
        return value.lower()

    @field_validator("shop_logo_url")
    @classmethod
    def _logo_is_ours_or_the_shops(cls, value: str) -> str:
        value = value.strip()
        if value:
            logo_origin(value)  # raises with what is wrong
        return value

    @model_validator(mode="after")
    def _check_live(self) -> Settings:
        parse_api_keys(self.api_keys.get_secret_value())  # fail early on a malformed value
        if self.gateway_mode != "live":
            return self
        missing = self._live_gateway_gaps() + self._live_billing_robo_gaps()
        if self.gateway_provider == "sbps":
            missing += self._live_sbps_gaps()
        if self.shop_logo_url.startswith("http://"):
            # A shopper's payment page must not load anything over plain http.
            missing.append("SHOP_LOGO_URL (https://..., or a path on this server: /static/...)")
        if missing:
            raise ValueError("GATEWAY_MODE=live refuses to start; set " + "; ".join(missing))
        return self

    def _live_gateway_gaps(self) -> list[str]:
        """What live mode lacks for the gateway, the API and kickbacks (sandbox values too)."""
        missing: list[str] = []
        keys = self.api_keys.get_secret_value()
        if not keys.strip() or keys == SANDBOX_API_KEYS:
            missing.append("API_KEYS (your own 'secret:role' pairs, not the sandbox keys)")
        if self.gateway_provider == "robotpayment":
            missing += self._live_robotpayment_gaps()
        secret = self.kickback_secret.get_secret_value()
        if secret == SANDBOX_KICKBACK_SECRET or len(secret) < KICKBACK_SECRET_MIN_LIVE:
            missing.append(
                f"KICKBACK_SECRET (at least {KICKBACK_SECRET_MIN_LIVE} random characters, "
                "e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        webhook_key = self.webhook_secret_key.get_secret_value()
        if SANDBOX_WEBHOOK_SECRET_KEY in webhook_key or len(webhook_key) < (
            WEBHOOK_SECRET_KEY_MIN_LIVE
        ):
            missing.append(
                f"WEBHOOK_SECRET_KEY (at least {WEBHOOK_SECRET_KEY_MIN_LIVE} random characters; "
                "it encrypts the webhook signing secrets)"
            )
        return missing

    def _live_robotpayment_gaps(self) -> list[str]:
        missing: list[str] = []
        if not re.fullmatch(r"\d{6}", self.gateway_aid) or self.gateway_aid == SANDBOX_AID:
            missing.append("GATEWAY_AID (your 6-digit shop id)")
        if not self.gateway_base_url.startswith("https://"):
            missing.append("GATEWAY_BASE_URL (the real gateway, https://...)")
        if not self.search_api_base_url.startswith("https://"):
            missing.append("SEARCH_API_BASE_URL (the charges search API, https://...)")
        if self.search_api_key.get_secret_value() in ("", SANDBOX_SEARCH_API_KEY):
            missing.append("SEARCH_API_KEY (issued in the control panel)")
        return missing

    def _live_sbps_gaps(self) -> list[str]:
        """What live mode with GATEWAY_PROVIDER=sbps lacks (the sandbox values count as unset)."""
        missing: list[str] = []
        if self.sbps_merchant_id == SANDBOX_SBPS_MERCHANT_ID:
            missing.append("SBPS_MERCHANT_ID (your 5-digit merchant id from SBPS)")
        if self.sbps_service_id == SANDBOX_SBPS_SERVICE_ID:
            missing.append("SBPS_SERVICE_ID (your 3-digit service id from SBPS)")
        if self.sbps_hash_key.get_secret_value() == SANDBOX_SBPS_HASH_KEY:
            missing.append("SBPS_HASH_KEY (the hash key SBPS issued)")
        if not self.sbps_api_url.startswith("https://"):
            missing.append(
                f"SBPS_API_URL ({SBPS_PRODUCTION_API_URL}, or {SBPS_TEST_API_URL} to test)"
            )
        if not self.sbps_token_js_url.startswith("https://"):
            missing.append(f"SBPS_TOKEN_JS_URL (the https URL of {SBPS_TOKEN_JS} SBPS gave you)")
        return missing

    def _live_billing_robo_gaps(self) -> list[str]:
        """What live mode lacks for billing robo, when it is configured at all."""
        if not self.billing_robo_base_url:
            return []
        missing: list[str] = []
        if not self.billing_robo_base_url.startswith("https://"):
            missing.append("BILLING_ROBO_BASE_URL (https://billing-robo.jp)")
        if self.billing_robo_user_id in ("", SANDBOX_BILLING_ROBO_USER_ID):
            missing.append("BILLING_ROBO_USER_ID (your billing robo login id)")
        key = self.billing_robo_access_key.get_secret_value()
        if key in ("", SANDBOX_BILLING_ROBO_ACCESS_KEY):
            missing.append("BILLING_ROBO_ACCESS_KEY (issued in billing robo)")
        return missing

    # --- derived ----------------------------------------------------------------------------
    @property
    def sandbox_in_process(self) -> bool:
        return self.gateway_mode == "sandbox" and not self.gateway_base_url

    @property
    def sbps_in_process(self) -> bool:
        """Sandbox with SBPS and no SBPS_API_URL: the SBPS simulator mounted in this process."""
        return (
            self.gateway_mode == "sandbox"
            and self.gateway_provider == "sbps"
            and not self.sbps_api_url
        )

    @property
    def sbps_token_js(self) -> str:
        """Where the shopper's browser loads com_sbps_system_token.js from."""
        if self.sbps_token_js_url:
            return self.sbps_token_js_url
        if self.sbps_in_process:
            return SANDBOX_SBPS_MOUNT + SANDBOX_SBPS_TOKEN_JS_PATH
        # A standalone simulator (sandbox, SBPS_API_URL = its xmlapi.do) serves it itself.
        return self.sbps_api_root + SANDBOX_SBPS_TOKEN_JS_PATH

    @property
    def sbps_tds2_js(self) -> str:
        """Where the browser loads com_sbps_system_tds2infotoken.js from: SBPS_TDS2_JS_URL,
        else beside the token script (the simulator serves both from /sbpstoken/)."""
        if self.sbps_tds2_js_url:
            return self.sbps_tds2_js_url
        return self.sbps_token_js.removesuffix(SBPS_TOKEN_JS) + SBPS_TDS2_JS

    @property
    def sbps_api_root(self) -> str:
        """SBPS_API_URL without its /api/xmlapi.do (the client adds it); "" = in-process."""
        return self.sbps_api_url.removesuffix(SBPS_API_PATH)

    @property
    def page_script_base(self) -> str:
        """The URL (or our own path) whose origin the payment pages' CSP lets scripts from:
        the gateway's JS base, or SBPS's token script."""
        return self.sbps_token_js if self.gateway_provider == "sbps" else self.gateway_public_base

    @property
    def search_api_url(self) -> str:
        """The charges search API; a standalone simulator serves it under its own `/api`."""
        if self.search_api_base_url or self.gateway_mode == "live":
            return self.search_api_base_url
        return f"{self.gateway_base_url.rstrip('/')}/api" if self.gateway_base_url else ""

    @property
    def billing_robo_url(self) -> str:
        """Billing robo's root; in sandbox a standalone simulator serves it at its own root.
        Empty: the in-process simulator (sandbox) or not configured (live)."""
        if self.billing_robo_base_url or self.gateway_mode == "live":
            return self.billing_robo_base_url
        return self.gateway_base_url

    @property
    def gateway_public_base(self) -> str:
        """Base the shopper's browser loads CPToken.js/EMV3DSAdapter.js from."""
        if self.gateway_js_base_url:
            return self.gateway_js_base_url.rstrip("/")
        return SANDBOX_MOUNT if self.sandbox_in_process else self.gateway_base_url.rstrip("/")

    @property
    def demo_api_key(self) -> str | None:
        """The merchant key the sandbox demo shop (app/sandbox/demo_shop.py) calls the merchant
        API with: the first merchant key configured; None outside sandbox mode."""
        if self.gateway_mode != "sandbox":
            return None
        for item in self.api_keys.get_secret_value().split(","):
            secret, _, role = item.strip().rpartition(":")
            if role == "merchant" and secret:
                return secret
        return None

    @property
    def parsed_api_keys(self) -> list[ApiKey]:
        return parse_api_keys(self.api_keys.get_secret_value())

    @property
    def kickback_allowed_ip_list(self) -> list[str]:
        return [ip.strip() for ip in self.kickback_allowed_ips.split(",") if ip.strip()]

    @property
    def sandbox_allowed_ip_list(self) -> list[str]:
        return [ip.strip() for ip in self.sandbox_allowed_ips.split(",") if ip.strip()]

    @property
    def pay_claim(self) -> timedelta:
        return timedelta(seconds=self.pay_claim_seconds)

    @property
    def card_read_back_after(self) -> timedelta:
        return timedelta(seconds=self.card_read_back_after_seconds)

    @property
    def webhook_loopback_allowed(self) -> bool:
        return self.gateway_mode == "sandbox" and self.webhook_allow_loopback

    @property
    def kickback_expected(self) -> timedelta:
        return timedelta(seconds=self.kickback_expected_seconds)

    @property
    def trusted_proxies(self) -> str:
        """FORWARDED_ALLOW_IPS normalised for uvicorn's --forwarded-allow-ips; "" = none."""
        return ",".join(ip.strip() for ip in self.forwarded_allow_ips.split(",") if ip.strip())

    @property
    def shop_logo_origin(self) -> str:
        """The origin the pages' CSP must allow images from for SHOP_LOGO_URL ("https://cdn.
        shop.example"); "" when there is no logo or it is on our own origin ('self')."""
        return logo_origin(self.shop_logo_url) if self.shop_logo_url else ""

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def logo_origin(url: str) -> str:
    """SHOP_LOGO_URL's origin ("" for a path on our own origin), or ValueError saying what is
    wrong: only a path starting with one "/" or an http(s) URL with a plain host name (no user,
    no odd characters) can be put into the CSP's img-src as it is."""
    problem = (
        "SHOP_LOGO_URL must be a path on this server (/static/...) or the shop's https URL"
        f" (got {url!r})"
    )
    # Browsers read "\\" as "/" ("/\\evil.example/x" is another origin), spaces end a source.
    if not url or any(ch.isspace() or ch == "\\" or ord(ch) < 0x20 for ch in url):
        raise ValueError(problem)
    if url.startswith("/"):
        if url.startswith("//"):  # scheme-relative: another origin
            raise ValueError(problem)
        return ""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(problem) from None
    host = parts.hostname or ""
    if (
        parts.scheme not in ("https", "http")
        or not _HOST_PATTERN.fullmatch(host)
        or parts.username is not None
        or parts.password is not None
        or not parts.path.startswith("/")
    ):
        raise ValueError(problem)
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


@lru_cache
def get_settings() -> Settings:
    return Settings()
