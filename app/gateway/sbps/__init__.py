"""SBPS (SoftBank Payment Service), API type: the wire codec, sps_hashcode, error codes and
request layouts (issue 20), pure; and SbpsGateway (client.py), the HTTP client built on them."""

from app.gateway.sbps.apis import LAYOUTS, build_elements, build_request
from app.gateway.sbps.chars import SbpsValueError, replace_text
from app.gateway.sbps.client import SbpsGateway
from app.gateway.sbps.codec import (
    PayMethodInfo,
    SbpsCodecError,
    SbpsResponse,
    decode_multibyte,
    encode_request,
    parse_response,
)
from app.gateway.sbps.credentials import Credentials
from app.gateway.sbps.elements import Block, Element, Leaf
from app.gateway.sbps.errors import lookup, outcome_for
from app.gateway.sbps.hashcode import LIMIT_SECOND, HashKey, request_date, sps_hashcode
from app.gateway.sbps.token_errors import TokenErrorMessage, message_for

__all__ = [
    "LAYOUTS",
    "LIMIT_SECOND",
    "Block",
    "Credentials",
    "Element",
    "HashKey",
    "Leaf",
    "PayMethodInfo",
    "SbpsCodecError",
    "SbpsGateway",
    "SbpsResponse",
    "SbpsValueError",
    "TokenErrorMessage",
    "build_elements",
    "build_request",
    "decode_multibyte",
    "encode_request",
    "lookup",
    "message_for",
    "outcome_for",
    "parse_response",
    "replace_text",
    "request_date",
    "sps_hashcode",
]
