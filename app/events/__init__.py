"""Merchant events: what the shop is told happened (a transactional outbox, issue 18)."""
