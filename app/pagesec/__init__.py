"""Payment-page integrity (PCI DSS 4.0.1 6.4.3 and 11.6.1): the inventory of every script the
payment pages load (inventory.py), the pages' CSP with a per-request nonce built from it
(csp.py), the collector of the browsers' CSP violation reports (reports.py, router.py), the
vendor script watcher and its approvals (watcher.py, service.py), the page header check
(headercheck.py), and the evidence report (report.py)."""
