"""The browser scripts, run by Node against a live simulator (mounted under /sandbox, so the
scripts must find their base URL from their own src), with a minimal fake DOM that refuses
innerHTML and style attributes the way a strict CSP page would."""

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

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.sandbox import cards, create_sandbox_app
from app.sandbox.routes_browser import SCRIPTS

NODE = shutil.which("node")

HARNESS = r"""
const vm = require("vm");
const BASE = process.argv[2];
const AID = "100001";

class El {
  constructor(tag) {
    this.tagName = tag.toUpperCase(); this.children = []; this.parent = null; this.style = {};
    this.listeners = {}; this.value = ""; this.className = ""; this.id = ""; this.disabled = false;
  }
  appendChild(c) {
    if (c.parent) c.parent.removeChild(c);
    c.parent = this; this.children.push(c); return c;
  }
  removeChild(c) { this.children = this.children.filter((x) => x !== c); c.parent = null; }
  remove() { if (this.parent) this.parent.removeChild(this); }
  addEventListener(type, fn) { (this.listeners[type] = this.listeners[type] || []).push(fn); }
  click() { (this.listeners.click || []).forEach((fn) => fn({ type: "click", target: this })); }
  focus() {}
  setAttribute(name, value) {
    if (name.toLowerCase() === "style") throw new Error("CSP: inline style attribute");
    this[name] = value;
  }
  set innerHTML(v) { throw new Error("innerHTML is not allowed"); }
  get textContent() {
    if (this.text !== undefined) return this.text;
    return this.children.map((c) => c.textContent).join("");
  }
  set textContent(v) { this.children = []; this.text = String(v); }
}

function find(root, pred) {
  if (pred(root)) return root;
  for (const c of root.children || []) { const hit = find(c, pred); if (hit) return hit; }
  return null;
}

const body = new El("body");
const tkn = body.appendChild(new El("input")); tkn.id = "tkn";
const cardForm = body.appendChild(new El("div")); cardForm.id = "CARD_INPUT_FORM";
const tdsForm = body.appendChild(new El("div")); tdsForm.id = "EMV3DS_INPUT_FORM";
global.window = globalThis;
global.document = {
  body, currentScript: null,
  createElement: (t) => new El(t),
  createTextNode: (s) => { const n = new El("#text"); n.text = String(s); return n; },
  getElementById: (id) => find(body, (n) => n.id === id),
  getElementsByTagName: () => [],
};
global.eval = () => { throw new Error("eval is not allowed"); };

async function load(name) {
  const src = BASE + "gateway/js/" + name;
  const code = await (await fetch(src)).text();
  document.currentScript = { src };
  vm.runInThisContext(code);
  document.currentScript = null;
}
const wait = (start) => new Promise((resolve) => start((code, msg) => resolve([code, msg])));
const byId = (id) => document.getElementById(id);
const out = {};

(async () => {
  await load("CPToken.js");
  await load("EMV3DSAdapter.js");

  const ed = process.argv[4];
  out.custom = await wait((cb) => CPToken.TokenCreate(
    { aid: AID, cn: process.argv[3], ed, fn: "TARO", ln: "YAMADA", cvv: "123", md: "10" }, cb));
  out.token1 = tkn.value;
  out.frictionless = await wait((cb) => ThreeDSAdapter.authenticate(
    { aid: AID, tkn: out.token1, am: 1000, tx: 0, sf: 0, em: "a@example.com" }, cb));

  tkn.value = "";
  out.bad = await wait((cb) => CPToken.TokenCreate({ aid: AID, cn: "123", ed }, cb));
  out.badLeavesTkn = tkn.value;

  // Popup: a wrong number first (the form stays open), then a challenge card.
  const popup = new Promise((resolve) => {
    const seen = [];
    CPToken.CardInfo({ aid: AID }, (code, msg) => {
      seen.push([code, msg]);
      if (code === "Success") resolve(seen);
    });
  });
  out.popupOpen = !!find(cardForm, (n) => n.id === "rpcp_cn");
  byId("rpcp_cn").value = "4444333322221112";
  const year = byId("rpcp_ed_year");
  byId("rpcp_ed_month").value = "12";
  year.value = year.children[year.children.length - 1].value;
  byId("rpcp_fn").value = "HANAKO"; byId("rpcp_ln").value = "SATO"; byId("rpcp_cvv").value = "123";
  byId("rpcp_submit").click();
  await new Promise((r) => setTimeout(r, 300));
  out.popupError = byId("rpcp_error").textContent;
  byId("rpcp_cn").value = process.argv[5];
  byId("rpcp_submit").click();
  out.popup = await popup;
  out.popupClosed = cardForm.children.length === 0;
  out.token2 = tkn.value;

  const challenge = wait((cb) => ThreeDSAdapter.authenticate(
    { aid: AID, tkn: out.token2, am: 500, tx: 50, sf: 0, pn: "0312345678" }, cb));
  for (let i = 0; i < 50 && !find(tdsForm, (n) => n.className === "rpemvtds"); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const modal = find(tdsForm, (n) => n.className === "rpemvtds");
  out.challengeShown = !!modal;
  out.challengeText = modal ? modal.textContent : "";
  byId("rpemvtds_code").value = "1234";
  byId("rpemvtds_submit").click();
  out.challenge = await challenge;
  out.challengeClosed = tdsForm.children.length === 0;

  const closed = wait((cb) => CPToken.CardInfo({ aid: AID }, cb));
  byId("rpcp_close").click();
  out.closed = await closed;
  out.closedRemoved = cardForm.children.length === 0;

  out.missing = await wait((cb) => ThreeDSAdapter.authenticate(
    { aid: AID, am: 1, tx: 0, sf: 0, em: "a@b.jp" }, cb));
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
"""


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, FastAPI]]:
    host, sandbox = FastAPI(), create_sandbox_app()
    host.mount("/sandbox", sandbox)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(host, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/sandbox/", sandbox
    server.should_exit = True
    thread.join(5)
    sock.close()


@pytest.mark.parametrize("name", ["CPToken.js", "EMV3DSAdapter.js"])
def test_scripts_are_csp_friendly(name: str) -> None:
    source = SCRIPTS[name].decode("utf-8")
    for banned in (
        "innerHTML",
        "eval(",
        "new Function",
        "setAttribute(",
        "jQuery",
        "onclick",
        "document.write",
        "cssText",
    ):
        assert banned not in source, banned


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_browser_flow_against_a_live_simulator(live: tuple[str, FastAPI], tmp_path: Path) -> None:
    assert NODE is not None
    base, _ = live
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS, encoding="utf-8")
    expiry = "3012"
    run = subprocess.run(
        [NODE, str(harness), base, cards.CARD_OK, expiry, cards.CARD_3DS_CHALLENGE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    out: dict[str, Any] = json.loads(run.stdout)

    assert out["custom"] == ["Success", ""] and len(out["token1"]) == 36
    assert out["frictionless"] == ["Success", ""]
    assert out["bad"][0] == "ER055" and out["bad"][1] and out["badLeavesTkn"] == ""
    assert out["popupOpen"] and out["popupError"]
    assert [code for code, _ in out["popup"]] == ["ER014", "Success"]
    assert out["popupClosed"] and out["token2"] not in ("", out["token1"])
    assert out["challengeShown"] and "1234" in out["challengeText"]
    assert out["challenge"] == ["Success", ""] and out["challengeClosed"]
    assert out["closed"][0] == "CANCEL" and out["closedRemoved"]
    assert out["missing"][0] == "ER583" and out["missing"][1]

    # The tokens the scripts produced pay, with exactly the values bound in the browser.
    pay = {"aid": "100001", "jb": "AUTH", "rt": "1"}
    with httpx.Client(base_url=base) as http:
        first = http.post(
            "gateway/gateway_token.aspx",
            data={
                **pay,
                "tkn": out["token1"],
                "am": "1000",
                "tx": "0",
                "sf": "0",
                "em": "a@example.com",
            },
        )
        second = http.post(
            "gateway/gateway_token.aspx",
            data={
                **pay,
                "tkn": out["token2"],
                "am": "500",
                "tx": "50",
                "sf": "0",
                "pn": "0312345678",
            },
        )
    assert first.text.split(",")[1] == "1", first.text
    assert second.text.split(",")[1] == "1", second.text
