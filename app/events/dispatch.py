"""The dispatcher: every replica runs one. It leases due deliveries (`FOR UPDATE SKIP LOCKED`,
so replicas never send the same one at once), POSTs each signed event, and records how it went.

Order: a delivery is due only when no older delivery of the same object to the same endpoint
is still pending, so a payment's events reach an endpoint in the order they happened (a later
one waits while an earlier one is retried). At least once: a dispatcher that dies mid-send
leaves its lease to run out and the event is sent again; receivers dedupe on `RP-Event-Id`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from app import waits
from app.config import Settings
from app.db import utcnow
from app.events import addresses, signing
from app.events.models import DeliveryAttempt, Event, EventDelivery, WebhookEndpoint
from app.events.schemas import EventOut
from app.events.secrets import SecretBox
from app.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LATENCY

log = logging.getLogger("app.events")

# A retry never waits longer than this.
MAX_BACKOFF = timedelta(hours=1)
EXCERPT_BYTES = 500
USER_AGENT = "rp-merchant-webhooks/1"


@dataclass(frozen=True)
class DispatchSettings:
    batch_size: int = 100
    concurrency: int = 16
    timeout: float = 10.0
    retry_base: float = 30.0
    retry_window: timedelta = timedelta(hours=72)
    allow_loopback: bool = True
    live: bool = False
    poll: float = 0.5
    retention: timedelta = timedelta(days=30)

    @classmethod
    def of(cls, s: Settings) -> DispatchSettings:
        return cls(
            batch_size=s.webhook_batch_size,
            concurrency=s.webhook_concurrency,
            timeout=s.webhook_timeout_seconds,
            retry_base=s.webhook_retry_base_seconds,
            retry_window=timedelta(hours=s.webhook_retry_hours),
            allow_loopback=s.webhook_loopback_allowed,
            live=s.gateway_mode == "live",
            poll=s.webhook_poll_seconds,
            retention=timedelta(days=s.event_retention_days),
        )

    @property
    def lease(self) -> timedelta:
        # Longer than any attempt (the look-up and the POST), so a live send is never re-sent.
        return timedelta(seconds=self.timeout * 2 + 30)


def backoff(attempts: int, base: float) -> timedelta:
    """After the n-th failed attempt: base * 2^(n-1), at most an hour, with +-25% jitter (so
    many deliveries that failed together do not come back together)."""
    seconds = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF.total_seconds())
    return timedelta(seconds=seconds * random.uniform(0.75, 1.25))


@dataclass(frozen=True)
class _Job:
    seq: int
    attempts: int
    event_id: str
    event_created_at: datetime
    body: bytes
    endpoint_id: str
    url: str
    secrets: list[str]


@dataclass(frozen=True)
class _Result:
    job: _Job
    http_status: int | None
    error: str | None
    latency_ms: int
    excerpt: str | None

    @property
    def delivered(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300


def body_of(event: Event) -> bytes:
    """The POSTed bytes: the event as the API shows it (GET /v1/events/{id})."""
    shown = EventOut.of(event).model_dump(mode="json")
    return json.dumps(shown, ensure_ascii=False, separators=(",", ":")).encode()


def _secrets(box: SecretBox, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    found = [box.open(endpoint.secret)]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        found.append(box.open(endpoint.previous_secret))
    return found


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        http: httpx.AsyncClient,
        box: SecretBox,
        settings: DispatchSettings,
    ) -> None:
        self._sessions = sessions
        self._http = http
        self._box = box
        self._settings = settings
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look now rather than at the next poll (this process just committed events)."""
        self._wake.set()

    async def _lease(self) -> list[_Job]:
        s = self._settings
        now = utcnow()
        older = aliased(EventDelivery)
        held_back = (
            select(older.seq)
            .where(
                older.endpoint_id == EventDelivery.endpoint_id,
                older.object_key == EventDelivery.object_key,
                older.status == "pending",
                older.seq < EventDelivery.seq,
            )
            .exists()
        )
        stmt = (
            select(EventDelivery, Event, WebhookEndpoint)
            .join(Event, Event.id == EventDelivery.event_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == EventDelivery.endpoint_id)
            .where(
                EventDelivery.status == "pending",
                EventDelivery.next_attempt_at <= now,
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.deleted_at.is_(None),
                ~held_back,
            )
            .order_by(EventDelivery.next_attempt_at, EventDelivery.seq)
            .limit(s.batch_size)
            .with_for_update(of=EventDelivery, skip_locked=True)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
            jobs: list[_Job] = []
            for delivery, event, endpoint in rows:
                delivery.attempts += 1
                delivery.next_attempt_at = now + s.lease
                jobs.append(
                    _Job(
                        seq=delivery.seq,
                        attempts=delivery.attempts,
                        event_id=event.id,
                        event_created_at=event.created_at,
                        body=body_of(event),
                        endpoint_id=endpoint.id,
                        url=endpoint.url,
                        secrets=_secrets(self._box, endpoint, now),
                    )
                )
            await session.commit()
        return jobs

    async def _send(self, job: _Job) -> _Result:
        started = time.perf_counter()

        def took() -> int:
            return round((time.perf_counter() - started) * 1000)

        problem = addresses.url_problem(job.url, live=self._settings.live)
        if problem is not None:
            return _Result(job, None, f"url {problem}", took(), None)
        try:
            # Bounded: a look-up that hangs must not outlive the lease.
            ip = await asyncio.wait_for(
                addresses.resolve(job.url, allow_loopback=self._settings.allow_loopback),
                timeout=self._settings.timeout,
            )
        except addresses.AddressRefused as exc:
            return _Result(job, None, str(exc)[:200], took(), None)
        except TimeoutError:
            return _Result(job, None, "the host name look-up timed out", took(), None)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            signing.SIGNATURE_HEADER: signing.header(job.secrets, timestamp, job.body),
            signing.EVENT_ID_HEADER: job.event_id,
        }
        # To the address just checked (no second look-up a rebinding name could answer
        # differently); the name still goes in Host and in TLS (SNI and the certificate).
        host, _port = addresses.target(job.url)
        try:
            url = httpx.URL(job.url)
            pinned = url.copy_with(host=ip)
        except httpx.InvalidURL as exc:
            return _Result(job, None, f"url {exc}"[:200], took(), None)
        headers["Host"] = url.netloc.decode("ascii")
        extensions = {"sni_hostname": host} if url.scheme == "https" else {}
        try:
            # httpx's timeouts are per read: a receiver trickling bytes is cut off here.
            async with (
                asyncio.timeout(self._settings.timeout),
                self._http.stream(
                    "POST", pinned, content=job.body, headers=headers, extensions=extensions
                ) as answer,
            ):
                excerpt = b""
                async for chunk in answer.aiter_raw():
                    excerpt += chunk
                    if len(excerpt) >= EXCERPT_BYTES:
                        break
                text = excerpt[:EXCERPT_BYTES].decode("utf-8", "replace")
                return _Result(job, answer.status_code, None, took(), text)
        except (httpx.TimeoutException, TimeoutError):
            return _Result(job, None, "timed out", took(), None)
        except httpx.HTTPError as exc:
            return _Result(job, None, f"{type(exc).__name__}: {exc}"[:200], took(), None)

    async def _record(self, results: list[_Result]) -> None:
        now = utcnow()
        s = self._settings
        async with self._sessions() as session:
            for r in results:
                job = r.job
                session.add(
                    DeliveryAttempt(
                        delivery_seq=job.seq,
                        at=now,
                        http_status=r.http_status,
                        error=r.error,
                        latency_ms=r.latency_ms,
                        response_excerpt=r.excerpt,
                    )
                )
                WEBHOOK_LATENCY.observe(r.latency_ms / 1000)
                # Only while the lease is still ours (the same attempt count): a dispatcher
                # that outran its lease records its attempt but decides nothing.
                mine = (
                    EventDelivery.seq == job.seq,
                    EventDelivery.status == "pending",
                    EventDelivery.attempts == job.attempts,
                )
                if r.delivered:
                    await session.execute(
                        update(EventDelivery)
                        .where(*mine)
                        .values(status="delivered", delivered_at=now)
                    )
                    await session.execute(
                        update(WebhookEndpoint)
                        .where(
                            WebhookEndpoint.id == job.endpoint_id,
                            WebhookEndpoint.failing_since.is_not(None),
                        )
                        .values(failing_since=None)
                    )
                    WEBHOOK_DELIVERIES.labels("delivered").inc()
                elif now - job.event_created_at >= s.retry_window:
                    await self._give_up(session, r, now, mine)
                else:
                    await session.execute(
                        update(EventDelivery)
                        .where(*mine)
                        .values(next_attempt_at=now + backoff(job.attempts, s.retry_base))
                    )
                    WEBHOOK_DELIVERIES.labels("retry").inc()
            await session.commit()

    async def _give_up(
        self, session: AsyncSession, r: _Result, now: datetime, mine: tuple[object, ...]
    ) -> None:
        job = r.job
        await session.execute(update(EventDelivery).where(*mine).values(status="failed"))  # type: ignore[arg-type]
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == job.endpoint_id, WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=now)
        )
        WEBHOOK_DELIVERIES.labels("failed").inc()
        log.error(
            "webhook: gave up on event %s to endpoint %s after %d attempts (last: %s); the "
            "endpoint is marked failing",
            job.event_id,
            job.endpoint_id,
            job.attempts,
            r.http_status or r.error,
            extra={
                "event": "webhook_given_up",
                "event_id": job.event_id,
                "endpoint_id": job.endpoint_id,
                "attempts": job.attempts,
            },
        )

    async def run_once(self) -> int:
        """One lease, send and record; how many deliveries it attempted."""
        jobs = await self._lease()
        if not jobs:
            return 0
        gate = asyncio.Semaphore(self._settings.concurrency)

        async def send(job: _Job) -> _Result:
            async with gate:
                return await self._send(job)

        results = await asyncio.gather(*(send(j) for j in jobs))
        await self._record(list(results))
        return len(jobs)

    async def loop(self) -> None:
        """Forever: as fast as there is work, else every `poll` seconds (or when woken)."""
        s = self._settings
        last_purge = 0.0
        clock = asyncio.get_running_loop()
        while True:
            try:
                done = await self.run_once()
                if clock.time() - last_purge >= 600:
                    last_purge = clock.time()
                    await purge(self._sessions, utcnow() - s.retention)
            except Exception as exc:  # the database may be down: try again next round
                log.warning("webhook dispatch deferred: %s", exc)
                done = 0
            if done >= s.batch_size:
                continue
            self._wake.clear()
            await waits.any_of(self._wake, seconds=s.poll)


async def purge(sessions: async_sessionmaker[AsyncSession], before: datetime) -> int:
    """Deletes events older than `before` with their deliveries and attempts, in batches."""
    total = 0
    while True:
        async with sessions() as session:
            old = (
                await session.execute(
                    select(Event.seq, Event.id).where(Event.created_at < before).limit(500)
                )
            ).all()
            if not old:
                return total
            ids = [i for _, i in old]
            seqs = select(EventDelivery.seq).where(EventDelivery.event_id.in_(ids))
            await session.execute(
                delete(DeliveryAttempt).where(DeliveryAttempt.delivery_seq.in_(seqs))
            )
            await session.execute(delete(EventDelivery).where(EventDelivery.event_id.in_(ids)))
            await session.execute(delete(Event).where(Event.seq.in_([s for s, _ in old])))
            await session.commit()
            total += len(old)
