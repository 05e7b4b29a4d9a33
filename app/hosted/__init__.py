"""Hosted pages as one aggregate: a `checkout_sessions` row with an explicit `Kind` (a
payment page, a customer's card page, a billing payer's card page), ONE constructor
(`service.open_page`) used by checkout, customers and billing, the guards of a page's form
post, and the handler shape each kind provides (`pages.PageHandler`). A low package: it
imports only platform and leaf modules, never checkout, customers, billing or payments."""

# A checkout session's event rendering (app.events.outbox) is registered with its schema, so
# that any process that can change a session can tell the shop of it.
from app.hosted import schemas as _schemas  # noqa: F401
