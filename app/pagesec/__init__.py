"""Payment-page integrity (PCI DSS 4.0.1 6.4.3 and 11.6.1): the script inventory, the vendor
script watcher and its approvals, the page header check, and the evidence report."""
