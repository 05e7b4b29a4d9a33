"""ROBOT PAYMENT (credit.j-payment.co.jp): client, wire codec, error codes, masking."""

from app.gateway.codes import lookup
from app.gateway.http import make_http_client
from app.gateway.masking import mask_header_value, mask_params, mask_text
from app.gateway.robotpayment.client import RobotPaymentClient
from app.gateway.robotpayment.codec import (
    CarduserResponse,
    CodecError,
    KickbackData,
    PaymentResponse,
    Rt0Response,
    decode_bytes,
    encode_form,
    parse_carduser_response,
    parse_kickback,
    parse_payment_response,
    parse_query_bytes,
    parse_rt0_body,
)

__all__ = [
    "CarduserResponse",
    "CodecError",
    "KickbackData",
    "PaymentResponse",
    "RobotPaymentClient",
    "Rt0Response",
    "decode_bytes",
    "encode_form",
    "lookup",
    "make_http_client",
    "mask_header_value",
    "mask_params",
    "mask_text",
    "parse_carduser_response",
    "parse_kickback",
    "parse_payment_response",
    "parse_query_bytes",
    "parse_rt0_body",
]
