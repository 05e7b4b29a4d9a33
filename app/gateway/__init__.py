"""Payment gateways behind one neutral protocol; providers live in subpackages."""

from app.gateway.base import (
    CallRecorder,
    CardResult,
    ChargeRecord,
    ChargeResult,
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

__all__ = [
    "CallRecorder",
    "CardResult",
    "ChargeRecord",
    "ChargeResult",
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
]
