"""Payment-page integrity (PCI DSS 4.0.1 6.4.3 and 11.6.1): the inventory of every script the
payment pages load (inventory.py), the pages' CSP with a per-request nonce built from it
(csp.py), and the collector of the browsers' CSP violation reports (reports.py, router.py)."""
