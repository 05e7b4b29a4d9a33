# The event rendering of this package's rows (app.events.outbox) is registered with its
# schemas, so that any process that can change them tells the shop of it.
from app.customers import schemas as _schemas  # noqa: F401
