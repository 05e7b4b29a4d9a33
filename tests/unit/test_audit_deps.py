"""The dependency audit's verdict (scripts/audit_deps.py) on pip-audit's JSON reports: a known
vulnerability fails the build; a vulnerability source that was not reached is a notice, never a
silent pass and never a failure."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


audit = _module()
SKIP = "Dependency not found on PyPI and could not be audited: fastapi (0.165.0)"


def test_a_known_vulnerability_fails_the_build() -> None:
    report = {
        "dependencies": [
            {"name": "fastapi", "version": "0.165.0", "vulns": []},
            {
                "name": "jinja2",
                "version": "3.1.2",
                "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "fix_versions": ["3.1.3"]}],
            },
        ],
        "fixes": [],
    }
    verdict = audit.judge(report)
    assert verdict.exit_code == 1
    assert "jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fix: 3.1.3)" in "\n".join(verdict.lines)


def test_nothing_checked_is_a_notice_not_a_pass() -> None:
    report = {"dependencies": [{"name": "fastapi", "skip_reason": SKIP}] * 3, "fixes": []}
    verdict = audit.judge(report)
    assert verdict.exit_code == 0
    assert "NOTICE" in verdict.lines[0] and "nothing was checked" in verdict.lines[0]


def test_a_clean_report_passes_and_names_what_was_skipped() -> None:
    report = {
        "dependencies": [
            {"name": "fastapi", "version": "0.165.0", "vulns": []},
            {"name": "rp-local", "skip_reason": "not on PyPI"},
        ]
    }
    verdict = audit.judge(report)
    assert verdict.exit_code == 0
    assert verdict.lines == [
        "audit: 1 locked packages checked, no known vulnerabilities",
        "audit: not checked (1): rp-local",
    ]


def test_an_unreachable_service_is_a_notice_and_any_other_error_fails() -> None:
    offline = "requests.exceptions.ConnectionError: Max retries exceeded with url: /v1/query"
    assert audit.judge_failure(1, offline).exit_code == 0
    assert "NOTICE" in audit.judge_failure(1, offline).lines[0]
    broken = "pip_audit: error: unrecognized arguments: --nope"
    assert audit.judge_failure(2, broken).exit_code == 1
