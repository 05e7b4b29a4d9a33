"""Imports every table so Base.metadata is complete (alembic, tests)."""

from app.billing.models import BillingCardRegistration, BillingCardSession
from app.customers.models import Card, Customer, CustomerEvent
from app.db import Base
from app.events.models import DeliveryAttempt, Event, EventDelivery, WebhookEndpoint
from app.gateway.audit import GatewayCallLog
from app.hosted.models import CheckoutSession
from app.idempotency import IdempotencyKey
from app.kickbacks.models import Kickback
from app.ops.models import OpsSession
from app.pagesec.models import (
    CspReport,
    PageCheck,
    ScriptApproval,
    ScriptCheck,
    ScriptState,
    WatchLease,
)
from app.payments.models import Payment, PaymentEvent
from app.reconcile.models import SweepCursor
from app.velocity import PayFailure

__all__ = [
    "Base",
    "BillingCardRegistration",
    "BillingCardSession",
    "Card",
    "CheckoutSession",
    "CspReport",
    "Customer",
    "CustomerEvent",
    "DeliveryAttempt",
    "Event",
    "EventDelivery",
    "GatewayCallLog",
    "IdempotencyKey",
    "Kickback",
    "OpsSession",
    "PageCheck",
    "PayFailure",
    "Payment",
    "PaymentEvent",
    "ScriptApproval",
    "ScriptCheck",
    "ScriptState",
    "SweepCursor",
    "WatchLease",
    "WebhookEndpoint",
]
