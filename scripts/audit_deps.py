"""Dependency audit: pip-audit over the locked packages (uv.lock), telling a real finding (exit 1)
from a vulnerability source that cannot be reached (a notice, exit 0).

pip-audit asks a vulnerability service (PyPI's JSON API by default, or OSV) about each pinned
package. Where that service cannot be reached it either fails with a connection error or, behind
a registry mirror without the vulnerability data, reports every package as "not found" and says
"No known vulnerabilities found" although nothing was checked: both are a notice here, never a
pass that means nothing, and never a failure of the build.

Usage: .venv/bin/python scripts/audit_deps.py [--service pypi|osv]   (or PIP_AUDIT_SERVICE)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Signs in pip-audit's error output that the service was not reached at all.
_NETWORK = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Failed to resolve",
    "Temporary failure in name resolution",
    "timed out",
    "Connection refused",
    "Network is unreachable",
    "SSLError",
)


@dataclass(frozen=True)
class Verdict:
    exit_code: int
    lines: list[str]


def judge(report: dict[str, Any]) -> Verdict:
    """What a pip-audit JSON report (`-f json`) means for the build."""
    deps: list[dict[str, Any]] = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    skipped = [d for d in deps if d.get("skip_reason")]
    audited = len(deps) - len(skipped)
    if vulnerable:
        lines = [f"audit: {len(vulnerable)} locked package(s) with known vulnerabilities:"]
        for d in vulnerable:
            for v in d["vulns"]:
                fixes = ", ".join(v.get("fix_versions") or []) or "no fixed version yet"
                lines.append(f"  {d['name']} {d.get('version', '?')}: {v.get('id')} (fix: {fixes})")
        return Verdict(1, lines)
    if deps and audited == 0:
        return Verdict(
            0,
            [
                f"audit: NOTICE: the vulnerability source could not be asked about any of the "
                f"{len(deps)} locked packages ({skipped[0]['skip_reason']}); nothing was "
                "checked. Run scripts/audit_deps.py where PyPI's JSON API or OSV is reachable."
            ],
        )
    lines = [f"audit: {audited} locked packages checked, no known vulnerabilities"]
    if skipped:
        names = ", ".join(d["name"] for d in skipped)
        lines.append(f"audit: not checked ({len(skipped)}): {names}")
    return Verdict(0, lines)


def judge_failure(returncode: int, stderr: str) -> Verdict:
    """pip-audit ended without a report: unreachable service (a notice) or a real error."""
    tail = stderr.strip().splitlines()[-1:] or [""]
    if any(sign in stderr for sign in _NETWORK):
        notice = "audit: NOTICE: the vulnerability source is unreachable, nothing was checked"
        return Verdict(0, [f"{notice}: {tail[0]}"])
    return Verdict(1, [f"audit: pip-audit failed (exit {returncode}):", stderr.strip()])


def run(service: str) -> Verdict:
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        exported = subprocess.run(
            ["uv", "export", "--frozen", "--no-emit-project", "--format", "requirements-txt"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        requirements.write_text(exported.stdout)
        out = Path(tmp) / "audit.json"
        audit = [sys.executable, "-m", "pip_audit", "-r", str(requirements)]
        # The lock pins (and hashes) every package: nothing to resolve, no pip needed.
        audit += ["--no-deps", "--disable-pip", "--progress-spinner", "off"]
        audit += ["-s", service, "-f", "json", "-o", str(out)]
        done = subprocess.run(audit, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if out.exists() and out.stat().st_size:
            report = json.loads(out.read_text())
            verdict = judge(report)
            # pip-audit exits 1 on findings; anything else non-zero with a report is odd.
            if verdict.exit_code == 0 and done.returncode not in (0, 1):
                return judge_failure(done.returncode, done.stderr)
            return verdict
        return judge_failure(done.returncode, done.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--service", default=os.environ.get("PIP_AUDIT_SERVICE", "pypi"), choices=("pypi", "osv")
    )
    args = parser.parse_args(argv)
    verdict = run(args.service)
    for line in verdict.lines:
        print(line)  # noqa: T201  (a CI step's output)
    return verdict.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
