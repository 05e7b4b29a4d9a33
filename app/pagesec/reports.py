"""CSP violation reports: read (both shapes browsers send), made safe to keep, counted and
stored deduplicated.

Shapes: `application/csp-report` (report-uri: `{"csp-report": {"document-uri", "blocked-uri",
"effective-directive" | "violated-directive", ...}}`) and `application/reports+json` (the
Reporting API, report-to: `[{"type": "csp-violation", "url", "body": {"documentURL",
"blockedURL", "effectiveDirective", ...}}, ...]`; reports of other types are skipped).

What is kept of a report: its directive (a fixed set of names, else "other": also the metric's
only label), and the blocked URI and page URL without query, fragment or user info (they may
carry tokens or card data), ids in their paths as {id}, run through the card-data guard."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.carddata import redact_text
from app.db import utcnow
from app.errors import AppError, FieldError
from app.metrics import CSP_REPORTS
from app.pagesec.models import CspReport

CSP_REPORT = "application/csp-report"
REPORTS_JSON = "application/reports+json"
# A report body is a few hundred bytes; a Reporting API batch a few of them.
MAX_BODY_BYTES = 16 * 1024
MAX_REPORTS_PER_BATCH = 50
# The directive names kept as they are (metric label, table); anything else is "other".
DIRECTIVES = frozenset(
    {
        "default-src",
        "script-src",
        "script-src-elem",
        "script-src-attr",
        "style-src",
        "style-src-elem",
        "style-src-attr",
        "img-src",
        "connect-src",
        "font-src",
        "frame-src",
        "child-src",
        "worker-src",
        "media-src",
        "object-src",
        "manifest-src",
        "form-action",
        "frame-ancestors",
        "base-uri",
    }
)
# What browsers put in blocked-uri instead of a URL.
_KEYWORDS = frozenset({"inline", "eval", "wasm-eval", "self", "data", "blob", "trusted-types"})
# A path segment that is one of our ids (cs_…, pay_…) or another long token: not kept.
_ID_SEGMENT = re.compile(r"[A-Za-z]{1,8}_[A-Za-z0-9_-]{8,}|[A-Za-z0-9_-]{24,}|[0-9]{6,}")
_MAX_URI = 512


class BadReport(AppError):
    status, type, title = 400, "bad-csp-report", "Not a CSP violation report"


class ReportTooLarge(AppError):
    status, type, title = 413, "body-too-large", "CSP report too large"


class UnsupportedReportType(AppError):
    status, type, title = 415, "unsupported-media-type", "Not a CSP report content type"


class _Legacy(BaseModel):
    """report-uri's body (the keys browsers send; unknown ones ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    document_uri: str = Field(alias="document-uri")
    blocked_uri: str = Field("", alias="blocked-uri")
    effective_directive: str | None = Field(None, alias="effective-directive", max_length=200)
    violated_directive: str | None = Field(None, alias="violated-directive")


class _LegacyEnvelope(BaseModel):
    model_config = ConfigDict(extra="ignore")
    csp_report: _Legacy = Field(alias="csp-report")


class _Body(BaseModel):
    """A Reporting API csp-violation's body."""

    model_config = ConfigDict(extra="ignore")
    documentURL: str = Field()
    blockedURL: str = Field("")
    effectiveDirective: str = Field(max_length=200)


class _Report(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str = Field(max_length=100)
    body: dict[str, Any] | None = None


@dataclass(frozen=True)
class Violation:
    """One report, safe to keep."""

    directive: str
    blocked_uri: str
    page: str

    @property
    def fingerprint(self) -> str:
        key = "\0".join((self.directive, self.blocked_uri, self.page))
        return hashlib.sha256(key.encode()).hexdigest()


def directive_of(raw: str | None) -> str:
    """The directive's name only ("script-src 'self' …" -> "script-src"), from the fixed set."""
    name = (raw or "").strip().split(" ")[0].lower()
    return name if name in DIRECTIVES else "other"


def clean_uri(raw: str) -> str:
    """A reported URL without what may be secret: query, fragment, user info; ids in its
    path as {id}; card-shaped digits masked. Keywords (inline, eval) stay as they are;
    data:/blob: URLs are kept as their scheme."""
    value = raw.strip()
    if value.lower() in _KEYWORDS:
        return value.lower()
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme in ("data", "blob", "filesystem"):
        return scheme
    if scheme not in ("http", "https", "ws", "wss"):
        # Not a URL we can take apart: its scheme, else nothing readable.
        return scheme[:20] if scheme.isalnum() else "other"
    host = (parts.hostname or "").lower()
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        port = ""
    segments = ["{id}" if _ID_SEGMENT.fullmatch(s) else s for s in parts.path.split("/")]
    cleaned = f"{scheme}://{host}{port}{'/'.join(segments)}"
    return redact_text(cleaned)[:_MAX_URI]


def _problem(exc: ValidationError, prefix: str) -> BadReport:
    errors = [
        FieldError(
            field=".".join(str(p) for p in (prefix, *e["loc"]) if p != ""),
            message=e["msg"],
        )
        for e in exc.errors()[:10]
    ]
    return BadReport("The body is not a CSP violation report of this type.", errors=errors)


def parse(content_type: str, body: bytes) -> list[Violation]:
    """The violations in a report body of `content_type`; BadReport when it is not one."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in (CSP_REPORT, REPORTS_JSON):
        raise UnsupportedReportType(f"Send {CSP_REPORT} or {REPORTS_JSON}.")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadReport(
            "The body is not JSON.", errors=[FieldError(field="body", message="not JSON")]
        ) from None
    if kind == CSP_REPORT:
        try:
            legacy = _LegacyEnvelope.model_validate(data).csp_report
        except ValidationError as exc:
            raise _problem(exc, "") from None
        directive = legacy.effective_directive or legacy.violated_directive
        return [_violation(directive, legacy.blocked_uri, legacy.document_uri)]
    if not isinstance(data, list) or not 0 < len(data) <= MAX_REPORTS_PER_BATCH:
        message = f"a list of 1 to {MAX_REPORTS_PER_BATCH} reports"
        raise BadReport(
            f"The body must be {message}.", errors=[FieldError(field="body", message=message)]
        )
    found = []
    for i, item in enumerate(data):
        try:
            report = _Report.model_validate(item)
            if report.type != "csp-violation":
                continue  # another kind of report (deprecation, intervention): not ours
            body_ = _Body.model_validate(report.body)
        except ValidationError as exc:
            raise _problem(exc, str(i)) from None
        found.append(_violation(body_.effectiveDirective, body_.blockedURL, body_.documentURL))
    return found


def _violation(directive: str | None, blocked: str, page: str) -> Violation:
    return Violation(directive_of(directive), clean_uri(blocked), clean_uri(page))


async def record(sessions: async_sessionmaker[AsyncSession], found: list[Violation]) -> None:
    """Count and store `found`: a repeat increments its row's count and last_seen."""
    now = utcnow()
    for v in found:
        CSP_REPORTS.labels(v.directive).inc()
    if not found:
        return
    async with sessions() as session:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        for v in found:
            stmt = insert(CspReport).values(
                fingerprint=v.fingerprint,
                directive=v.directive,
                blocked_uri=v.blocked_uri,
                page=v.page,
                first_seen=now,
                last_seen=now,
                count=1,
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[CspReport.fingerprint],
                set_={"count": CspReport.count + 1, "last_seen": now},
            )
            await session.execute(stmt)
        await session.commit()


async def seen_since(session: AsyncSession, since: datetime) -> int:
    """How many distinct violations were reported since `since` (rows last seen since)."""
    query = select(func.count()).select_from(CspReport).where(CspReport.last_seen >= since)
    return int(await session.scalar(query) or 0)
