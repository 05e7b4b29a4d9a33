"""README.md runs as written: its shell blocks, against a fresh `scripts/serve` started from a
clean copy of the tree (the files git knows, no .venv, no data), as a newcomer runs them.

Every ```bash / ```sh block in the README is preceded by `<!-- example: NAME -->` (run here, and
checked by EXPECT[NAME]: the status and a key field of every curl it makes) or `<!-- illustrative:
why -->` (not run). The only change made to a block is the port: `127.0.0.1:8000` (and `PORT`
for `scripts/app`) become the test server's, `8001` a second free port."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from tests.support.fixtures import ROOT
from tests.support.pg import free_port

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
_BLOCK = re.compile(r"^```(?:bash|sh)\n(.*?)^```$", re.S | re.M)
_MARK = re.compile(r"<!-- (example|illustrative): ?(.*?) -->\n$")

# A curl that also records each call (arguments, HTTP status, body) for the checks below; it
# prints the body as curl does, so pipes and $(...) in the README work unchanged.
_RECORDING_CURL = r"""
curl() {
  local n
  n="$README_CALLS/$(date +%s%N)"
  printf '%s\n' "$*" > "$n.args"
  command curl "$@" -o "$n.body" -w '%{http_code}' > "$n.status" || return $?
  cat "$n.body"
}
set -e
"""


@dataclass
class Block:
    kind: str  # example | illustrative
    name: str
    code: str
    line: int


def readme_blocks() -> list[Block]:
    text = README.read_text()
    blocks = []
    for match in _BLOCK.finditer(text):
        before = text[: match.start()]
        mark = _MARK.search(before[-400:])
        line = before.count("\n") + 1
        assert mark, f"README.md line {line}: a shell block with no <!-- example/illustrative -->"
        blocks.append(Block(mark.group(1), mark.group(2).strip(), match.group(1), line))
    return blocks


@dataclass
class Call:
    args: str
    status: int
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Ran:
    code: int
    output: str
    calls: list[Call]


# --- what each example must answer ---------------------------------------------------------


def _statuses(ran: Ran) -> list[int]:
    return [c.status for c in ran.calls]


def _test_selection(ran: Ran, port: int) -> None:
    assert ran.code == 0, ran.output[-3000:]
    assert re.search(r"\b[1-9]\d* passed", ran.output), ran.output[-3000:]
    assert "no test selected in the e2e tier" in ran.output


def _ops_list(ran: Ran, port: int) -> None:
    [call] = ran.calls
    assert call.status == 200 and isinstance(call.json()["data"], list)


def _checkout_session(ran: Ran, port: int) -> None:
    [call] = ran.calls
    body = call.json()
    assert call.status == 201 and body["id"].startswith("cs_")
    assert body["url"] == f"http://127.0.0.1:{port}/checkout/{body['id']}"


def _pay_with_token(ran: Ran, port: int) -> None:
    session, pay = ran.calls
    assert session.status == 201
    assert pay.status == 200, pay.body
    # The shopper's answer names no gid (sequential, a pointer for forged kickbacks).
    assert pay.json()["status"] == "authorized" and "gid" not in pay.json()


def _sandbox_ledger(ran: Ran, port: int) -> None:
    [call] = ran.calls
    assert call.status == 200 and any(t["status"] == "authorized" for t in call.json())


def _second_instance(ran: Ran, port: int) -> None:
    raise AssertionError("started as a server, not run to completion")  # pragma: no cover


def _cli(ran: Ran, port: int) -> None:
    assert ran.code == 0, ran.output
    assert "migrate: done" in ran.output
    assert f"asking the server at http://127.0.0.1:{port}" in ran.output
    assert re.search(r"reconcile: \d+ checked", ran.output)
    assert "replay-spool: 0 kickbacks moved" in ran.output
    assert re.search(r"^sk_\S+:ops$", ran.output, re.M)
    assert re.search(r"^pay_[0-9a-f]{32}  \w+", ran.output, re.M), ran.output
    assert "setup plugin" not in ran.output


def _gateway_charges(ran: Ran, port: int) -> None:
    [call] = ran.calls
    body = call.json()
    assert call.status == 200 and body["page"] == 1 and body["per_page"] == 20, call.body
    # The payments the examples above made are at the gateway, each beside ours.
    assert body["data"] and all(row["payment_id"] for row in body["data"]), body


def _ops(ran: Ran, port: int) -> None:
    listed, pick, reauth, pick_new, capture, cancel = ran.calls
    assert listed.status == 200 and pick.status == 200
    assert reauth.status == 201, reauth.body
    new = reauth.json()
    assert new["kind"] == "reauth" and new["status"] == "authorized"
    assert pick_new.json()["data"][0]["id"] == new["id"]
    assert capture.status == 200 and capture.json()["status"] == "captured", capture.body
    assert cancel.status == 200 and cancel.json()["status"] == "canceled", cancel.body


def _unknown(ran: Ran, port: int) -> None:
    faults_on, s1, p1, s2, p2, faults_off, picked, resolve, reconcile = ran.calls
    assert faults_on.status == faults_off.status == picked.status == 200
    assert s1.status == s2.status == 201
    for paid in (p1, p2):
        assert paid.status == 202 and paid.json()["status"] == "unknown", paid.body
    assert resolve.status == 200 and resolve.json()["status"] == "authorized", resolve.body
    summary = reconcile.json()
    assert reconcile.status == 200 and summary["settled"] == 1, reconcile.body
    assert summary["results"][0]["to_status"] == "authorized"
    assert ran.code == 0 and re.search(r"reconcile: \d+ checked", ran.output), ran.output


def _customers(ran: Ran, port: int) -> None:
    customer, page, card, charge = ran.calls
    assert customer.status == 201, customer.body
    assert page.status == 201 and page.json()["kind"] == "card_registration", page.body
    assert card.status == 201 and card.json()["num"] == 1, card.body
    assert charge.status == 201 and charge.json()["status"] == "captured", charge.body


def _billing(ran: Ran, port: int) -> None:
    payer, registration = ran.calls
    assert payer.status in (200, 201), payer.body
    assert registration.status == 201, registration.body
    assert registration.json()["status"] == "succeeded"


EXPECT: dict[str, Callable[[Ran, int], None]] = {
    "test-selection": _test_selection,
    "ops-list": _ops_list,
    "checkout-session": _checkout_session,
    "pay-with-token": _pay_with_token,
    "sandbox-ledger": _sandbox_ledger,
    "second-instance": _second_instance,
    "cli": _cli,
    "ops": _ops,
    "gateway-charges": _gateway_charges,
    "unknown": _unknown,
    "customers": _customers,
    "billing": _billing,
}
SERVERS = {"second-instance"}  # blocks that start a server: run in the background, then stopped


# --- running -------------------------------------------------------------------------------


def _clean_env(**extra: str) -> dict[str, str]:
    """This machine's environment without any of the service's settings: a fresh shell."""
    names = {name.upper() for name in Settings.model_fields} | {"PORT", "HOST"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names}
    return {**env, **extra}


def _fresh_copy(dest: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} not ready after {timeout} s:\n{log.read_text()[-4000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@dataclass
class Served:
    tree: Path
    port: int
    log: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, code: str, port: int, name: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.log.with_name(f"{name}.log")
        proc = subprocess.Popen(
            ["bash", "-c", code],
            cwd=self.tree,
            env={**self.env, "PORT": str(port)} if "PORT=" not in code else self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )
        return proc, log

    def run(self, block: Block, calls_dir: Path) -> Ran:
        calls_dir.mkdir()
        code = block.code.replace("127.0.0.1:8000", f"127.0.0.1:{self.port}")
        env = {**self.env, "PORT": str(self.port), "README_CALLS": str(calls_dir)}
        proc = subprocess.run(
            ["bash", "-c", _RECORDING_CURL + code],
            cwd=self.tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        calls = [
            Call(
                args=f.with_suffix(".args").read_text(),
                status=int(f.with_suffix(".status").read_text() or 0),
                body=f.with_suffix(".body").read_text() if f.with_suffix(".body").exists() else "",
            )
            for f in sorted(calls_dir.glob("*.status"))
        ]
        return Ran(proc.returncode, proc.stdout + proc.stderr, calls)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tree = _fresh_copy(tmp_path_factory.mktemp("fresh-clone"))
    logs = tmp_path_factory.mktemp("readme-logs")
    env = _clean_env(TEST_LOG_DIR=str(logs / "nested-test-logs"))
    served = Served(tree, free_port(), logs / "serve.log", env)
    proc, log = served.start("scripts/serve", served.port, "serve")
    try:
        _wait_ready(served.url, proc, log)
        yield served
    finally:
        _stop(proc)


def test_every_shell_block_is_marked_and_every_example_is_checked() -> None:
    blocks = readme_blocks()
    examples = [b.name for b in blocks if b.kind == "example"]
    assert len(examples) == len(set(examples)), "two examples with one name"
    assert set(examples) == set(EXPECT), "README examples and EXPECT differ"
    assert all(b.name for b in blocks if b.kind == "illustrative"), "say why it is not run"


# A fresh virtualenv, a server start, the nested scripts/test of one example: minutes, not 120 s.
@pytest.mark.timeout(1500)
def test_readme_runs_as_written(served: Served, tmp_path: Path) -> None:
    log = served.log.read_text()
    # What a newcomer sees: what is installed (runtime only), the migration, the banner.
    assert "bootstrap: Python packages for serving (uv sync --frozen --no-dev)" in log
    assert "migrate: done" in log
    base = served.url
    assert f"Demo shop {base}/ | API docs {base}/docs | simulator {base}/sandbox/" in log
    assert not (served.tree / ".venv" / "bin" / "pytest").exists(), "dev tools came with serve"

    failures: list[str] = []
    for block in readme_blocks():
        if block.kind != "example":
            continue
        if block.name in SERVERS:
            _second_server(served, block)
            continue
        ran = served.run(block, tmp_path / block.name)
        try:
            EXPECT[block.name](ran, served.port)
        except Exception as exc:
            calls = "\n".join(
                f"  {c.status} {c.args.strip()}\n    {c.body[:300]}" for c in ran.calls
            )
            failures.append(
                f"README.md line {block.line} ({block.name}): {exc!r}\n"
                f"exit {ran.code}, output:\n{ran.output[-2000:]}\ncalls:\n{calls}"
            )
    assert not failures, "\n\n".join(failures)


def _second_server(served: Served, block: Block) -> None:
    """The second-instance block starts a server: it must come up on its own port and data
    while the first runs; the same command without its own database is refused."""
    port = free_port()
    proc, log = served.start(block.code.replace("8001", str(port)), port, "second")
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc, log)
        assert f"Demo shop http://127.0.0.1:{port}/" in log.read_text()
    finally:
        _stop(proc)
    same_file, same_log = served.start("scripts/serve", free_port(), "same-file")
    assert same_file.wait(300) == 3, same_log.read_text()
    refused = same_log.read_text()
    assert "serve: refusing to start: another server" in refused
    assert "DATABASE_URL=sqlite+aiosqlite:///./data/second.sqlite3" in refused
