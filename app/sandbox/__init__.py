"""In-memory simulator of the ROBOT PAYMENT card gateway (credit.j-payment.co.jp) and its charges
search API: token + 3-D Secure, payments, stored cards, SALES/CANCEL, re-auth, kickbacks, magic
test cards (`cards.py`), fault injection and a `_sandbox/` control API."""

from app.sandbox.app import create_sandbox_app
from app.sandbox.config import SandboxConfig

__all__ = ["SandboxConfig", "create_sandbox_app"]
