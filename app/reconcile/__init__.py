"""Reconciliation: settle unknown and stale payments from the gateway's charges search."""
