"""The crash-point seam: kills its process (SIGKILL) only where armed, only in sandbox mode."""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.support.fixtures import ROOT

_SCRIPT = """
import sys
from app import crash
crash.arm(sys.argv[1], sys.argv[2])
crash.crash_point("other")
print("first", flush=True)
crash.crash_point("here")
print("second", flush=True)
crash.crash_point("here")
print("third", flush=True)
"""


def _run(mode: str, points: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode, points],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_armed_point_kills_on_its_pass() -> None:
    died = _run("sandbox", "here@2")
    assert died.returncode == -signal.SIGKILL
    assert died.stdout.split() == ["first", "second"]
    assert _run("sandbox", "here").stdout.split() == ["first"]


def test_live_mode_never_arms_a_point() -> None:
    lived = _run("live", "here,other")
    assert lived.returncode == 0 and lived.stdout.split() == ["first", "second", "third"]
