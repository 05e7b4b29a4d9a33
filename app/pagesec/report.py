"""The evidence report (`python -m app pci-report`): what a QSA asks for 6.4.3 and 11.6.1, as
one dated Markdown file for people and one JSON file for tools, from the database as it is.

CSP violation reports are summarised from `csp_reports` (app/pagesec/reports.py, the collector)."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.pagesec import service
from app.pagesec.inventory import inventory
from app.pagesec.models import CspReport, ScriptCheck, ScriptState

MAX_ROWS = 200


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def _csp_reports(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(CspReport)
                .order_by(CspReport.count.desc(), CspReport.last_seen.desc())
                .limit(MAX_ROWS)
            )
        ).all()
        total = await session.scalar(select(func.coalesce(func.sum(CspReport.count), 0)))
    shown = [
        {
            "directive": r.directive,
            "blocked_uri": r.blocked_uri,
            "page": r.page,
            "first_seen": _at(r.first_seen),
            "last_seen": _at(r.last_seen),
            "count": int(r.count),
        }
        for r in rows
    ]
    return {"rows": shown, "total": int(total or 0)}


async def build(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> dict[str, Any]:
    """The report's content (what both files show)."""
    async with sessions() as session:
        states = {s.key: s for s in (await session.execute(select(ScriptState))).scalars()}
        alerts = (
            await session.execute(
                select(ScriptCheck)
                .where(ScriptCheck.status != "ok")
                .order_by(ScriptCheck.id.desc())
                .limit(MAX_ROWS)
            )
        ).scalars()
        script_alerts = [
            {
                "key": c.key,
                "url": c.url,
                "fetched_at": _at(c.fetched_at),
                "status": c.status,
                "sha384": c.sha384,
                "error": c.error,
            }
            for c in alerts
        ]
    scripts = []
    for s in inventory(settings):
        state = states.get(s.key)
        scripts.append(
            {
                "key": s.key,
                "url": s.url,
                "party": s.party,
                "pages": list(s.pages),
                "purpose": s.purpose,
                "justification": s.justification,
                "sri": s.sri,
                "status": (state.status if state else "pending") if s.party == "gateway" else None,
                "current_sha384": state.current_sha384 if state else None,
                "approved_sha384": state.approved_sha384 if state else None,
                "last_checked_at": _at(state.last_checked_at) if state else None,
            }
        )
    approvals = [
        {
            "key": a.key,
            "sha384": a.sha384,
            "approved_by": a.approved_by,
            "reason": a.reason,
            "approved_at": _at(a.approved_at),
        }
        for a in await service.approvals(sessions, limit=1000)
    ]
    pages = [
        {
            "page": p.page,
            "url": p.url,
            "checked_at": _at(p.checked_at),
            "status": p.status,
            "problems": list(p.problems),
            "error": p.error,
        }
        for p in await service.last_page_checks(sessions)
    ]
    page_alerts = [
        {
            "page": p.page,
            "checked_at": _at(p.checked_at),
            "status": p.status,
            "problems": list(p.problems),
            "error": p.error,
        }
        for p in await service.page_alerts(sessions, limit=MAX_ROWS)
    ]
    return {
        "generated_at": utcnow().isoformat(),
        "settings": {
            "gateway_mode": settings.gateway_mode,
            "gateway_provider": settings.gateway_provider,
            "public_base_url": settings.public_base_url,
            "checkout_mode": settings.checkout_mode,
            "script_watch_interval_seconds": settings.script_watch_interval_seconds,
            "script_watch_on_change": settings.script_watch_on_change,
        },
        "fallback": await service.page_fallback(sessions, settings),
        "inventory": scripts,
        "approvals": approvals,
        "csp_reports": await _csp_reports(sessions),
        "page_checks": pages,
        "alerts": {"scripts": script_alerts, "pages": page_alerts},
    }


def _cell(value: object) -> str:
    shown = "—" if value is None or value == "" else str(value)
    return shown.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def markdown(report: dict[str, Any]) -> str:
    s = report["settings"]
    out = [
        f"# Payment-page integrity report ({report['generated_at'][:10]})",
        "",
        "PCI DSS 4.0.1 requirements 6.4.3 (payment page scripts: inventory, authorization, "
        "integrity) and 11.6.1 (change and tamper detection of the payment pages' scripts and "
        "security-impacting headers).",
        "",
        f"- Generated: {report['generated_at']}",
        f"- Mode: {s['gateway_mode']}, provider: {s['gateway_provider']}, "
        f"public URL: {s['public_base_url']}",
        f"- Watch interval: {s['script_watch_interval_seconds']:g} s; on change: "
        f"{s['script_watch_on_change']}; fallback now: {report['fallback'] or 'none'}",
        "",
        "## Script inventory (6.4.3)",
        "",
    ]
    out += _table(
        [
            "Key",
            "Party",
            "URL",
            "Pages",
            "Purpose",
            "Justification",
            "Status",
            "Current",
            "Approved / SRI",
        ],
        [
            [
                i["key"],
                i["party"],
                i["url"],
                ", ".join(i["pages"]),
                i["purpose"],
                i["justification"],
                i["status"],
                i["current_sha384"],
                i["approved_sha384"] or i["sri"],
            ]
            for i in report["inventory"]
        ],
    )
    out += ["", "## Approvals (who and why)", ""]
    out += (
        _table(
            ["Key", "SHA-384", "Approved by", "Reason", "At"],
            [
                [a["key"], a["sha384"], a["approved_by"], a["reason"], a["approved_at"]]
                for a in report["approvals"]
            ],
        )
        if report["approvals"]
        else ["No approvals recorded."]
    )
    csp = report["csp_reports"]
    out += ["", "## CSP violation reports", ""]
    if not csp["rows"]:
        out.append("No CSP violation reports received.")
    else:
        out.append(f"{csp['total']} reports in all; the most frequent:")
        out.append("")
        out += _table(
            ["Directive", "Blocked URI", "Page", "First seen", "Last seen", "Count"],
            [
                [
                    r["directive"],
                    r["blocked_uri"],
                    r["page"],
                    r["first_seen"],
                    r["last_seen"],
                    r["count"],
                ]
                for r in csp["rows"]
            ],
        )
    out += ["", "## Page header and script checks (11.6.1): last check per page", ""]
    out += (
        _table(
            ["Page", "URL", "Checked", "Result", "Differences"],
            [
                [
                    p["page"],
                    p["url"],
                    p["checked_at"],
                    p["status"],
                    "; ".join(p["problems"]) or p["error"],
                ]
                for p in report["page_checks"]
            ],
        )
        if report["page_checks"]
        else ["No page checks recorded."]
    )
    alerts = report["alerts"]
    out += ["", "## Alerts", "", "### Scripts", ""]
    out += (
        _table(
            ["Key", "At", "Verdict", "SHA-384 / error"],
            [
                [a["key"], a["fetched_at"], a["status"], a["sha384"] or a["error"]]
                for a in alerts["scripts"]
            ],
        )
        if alerts["scripts"]
        else ["None."]
    )
    out += ["", "### Pages", ""]
    out += (
        _table(
            ["Page", "At", "Result", "Differences"],
            [
                [a["page"], a["checked_at"], a["status"], "; ".join(a["problems"]) or a["error"]]
                for a in alerts["pages"]
            ],
        )
        if alerts["pages"]
        else ["None."]
    )
    return "\n".join(out) + "\n"


def write_files(report: dict[str, Any], out: Path, day: date) -> tuple[Path, Path]:
    """pci-report-YYYY-MM-DD.md and .json in `out` (made if missing); their paths."""
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / f"pci-report-{day.isoformat()}.md", out / f"pci-report-{day.isoformat()}.json"
    md.write_text(markdown(report), encoding="utf-8")
    js.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return md, js


async def write(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    out: Path,
    *,
    today: date | None = None,
) -> tuple[Path, Path]:
    """Builds the report and writes both files into `out`; their paths."""
    report = await build(sessions, settings)
    return await asyncio.to_thread(write_files, report, out, today or utcnow().date())
