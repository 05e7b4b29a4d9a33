"""The SBPS token scripts run by Node against a live, mounted SBPS simulator (so they must find
their endpoint from their own src): generateToken's OK and NG answers, the 3-D Secure info
token, and what a strict CSP would refuse."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from app.sandbox.sbps import SbpsConfig, create_sbps_app
from app.sandbox.sbps.browser import SCRIPTS
from app.sandbox.sbps.cards import CARD_OK
from app.sandbox.sbps.testing import future_expiration

NODE = shutil.which("node")

# A page with the two scripts: document.currentScript names each one's src, window is global.
HARNESS = r"""
const vm = require("vm");
const fs = require("fs");
const [base, tokenJs, tdsJs, card, expiry] = process.argv.slice(2);
const window = { navigator: { language: "ja-JP" }, screen: { colorDepth: 24, height: 900,
  width: 1440 } };
const context = vm.createContext({ window, fetch, URLSearchParams, console });
for (const [file, name] of [[tokenJs, "com_sbps_system_token.js"],
                            [tdsJs, "com_sbps_system_tds2infotoken.js"]]) {
  window.document = context.document = { currentScript: { src: base + "sbpstoken/" + name },
    getElementsByTagName: () => [] };
  vm.runInContext(fs.readFileSync(file, "utf8"), context);
}
const ids = { merchantId: "30132", serviceId: "002" };
const call = (fn, req) => new Promise((resolve) => fn(req, resolve));
(async () => {
  const out = {};
  out.ok = await call(window.com_sbps_system.generateToken,
    { ...ids, ccNumber: " " + card + " ", ccExpiration: expiry, securityCode: "123" });
  out.ng = await call(window.com_sbps_system.generateToken,
    { ...ids, ccNumber: card, ccExpiration: "20991", securityCode: "123" });
  out.tds = await call(window.com_sbps_system_tds2.generateToken,
    { ...ids, email: "taro@example.com" });
  out.tdsNg = await call(window.com_sbps_system_tds2.generateToken, { ...ids });
  console.log(JSON.stringify(out));
})();
"""


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, FastAPI]]:
    host, sbps = FastAPI(), create_sbps_app(SbpsConfig())
    host.mount("/sbps", sbps)  # the in-process factory, mounted as a host app would
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(host, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/sbps/", sbps
    server.should_exit = True
    thread.join(5)
    sock.close()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_scripts_are_csp_friendly(name: str) -> None:
    source = SCRIPTS[name].decode("utf-8")
    for banned in ("innerHTML", "eval(", "new Function", "setAttribute(", "document.write"):
        assert banned not in source, banned


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_generate_token_against_a_live_simulator(live: tuple[str, FastAPI], tmp_path: Path) -> None:
    assert NODE is not None
    base, sbps = live
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    files = []
    for name in sorted(SCRIPTS, reverse=True):  # token.js, then tds2infotoken.js
        path = tmp_path / name
        path.write_bytes(SCRIPTS[name])
        files.append(str(path))
    run = subprocess.run(
        [NODE, str(harness), base, *files, CARD_OK, future_expiration()],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out: dict[str, Any] = json.loads(run.stdout)
    assert out["ok"]["result"] == "OK", out
    answer = out["ok"]["tokenResponse"]
    assert len(answer["token"]) == 232
    assert answer["tokenKey"].startswith("3059301306072A8648CE3D0201")
    assert answer["maskedCcNumber"] == "************1111"
    assert (answer["ccExpiration"], answer["cardBrandCode"]) == (future_expiration(), "V")
    assert out["ng"] == {"result": "NG", "errorCode": "05004"}
    assert out["tds"]["result"] == "OK" and out["tds"]["tokenResponse"]["tokenKey"]
    assert out["tdsNg"] == {"result": "NG", "errorCode": "03006"}
    [info] = sbps.state.sbps.tds_tokens.values()
    assert info.details["browserLanguage"] == "ja-JP"
    assert info.details["browserScreenWidth"] == "1440"
