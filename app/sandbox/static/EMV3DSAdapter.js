/*
 * ROBOT PAYMENT gateway simulator: EMV3DSAdapter.js (sandbox stand-in for the vendor script).
 *
 *   ThreeDSAdapter.authenticate({aid, tkn, am, tx, sf, em, pn}, callback)
 *   ThreeDSAdapter.authenticate({aid, tkn, iid, em, pn}, callback)
 *
 * Binds the 3-D Secure result and exactly these values to the token; the payment must send the
 * same ones. callback("Success", "") means only that the call worked: the authentication outcome
 * shows in the payment answer (ER900 / ER901). A challenge opens a modal (class "rpemvtds") in
 * the page's #EMV3DS_INPUT_FORM asking for a one-time code; completing or canceling it both end
 * with callback("Success", ""). Bad or missing parameters: callback(<error code>, <message>).
 *
 * Strict-CSP safe: no inline script or style attributes, no eval. URLs come from this script's
 * own src.
 */
(function (global) {
  "use strict";

  var SCRIPT_PATH = "gateway/js/EMV3DSAdapter.js";
  var NETWORK = "決済システムと通信できませんでした。時間をおいて再度お試しください。";
  var FIELDS = ["aid", "tkn", "am", "tx", "sf", "iid", "em", "pn"];

  function scriptBase() {
    var src = "";
    if (document.currentScript && document.currentScript.src) {
      src = document.currentScript.src;
    } else {
      var scripts = document.getElementsByTagName("script");
      for (var i = 0; i < scripts.length; i++) {
        if (scripts[i].src && scripts[i].src.indexOf(SCRIPT_PATH) !== -1) {
          src = scripts[i].src;
        }
      }
    }
    var at = src.lastIndexOf(SCRIPT_PATH);
    return at >= 0 ? src.slice(0, at) : "/";
  }

  // Captured while the script runs: document.currentScript is null inside callbacks.
  var BASE = scriptBase();

  function notify(callback, code, message) {
    if (typeof callback === "function") {
      callback(code, message);
    }
  }

  function post(path, data) {
    var body = new URLSearchParams();
    Object.keys(data).forEach(function (key) {
      var value = data[key];
      if (value !== undefined && value !== null && String(value) !== "") {
        body.append(key, String(value).trim());
      }
    });
    return fetch(BASE + path, { method: "POST", body: body, credentials: "omit" })
      .then(function (response) { return response.json(); });
  }

  function el(tag, props, children) {
    var node = document.createElement(tag);
    var style = (props && props.style) || {};
    Object.keys(props || {}).forEach(function (key) {
      if (key !== "style") {
        node[key] = props[key];
      }
    });
    Object.keys(style).forEach(function (key) {
      node.style[key] = style[key];
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  var BUTTON_STYLE = {
    padding: "10px 20px", border: "none", borderRadius: "4px", background: "#1a4d8f",
    color: "#fff", fontSize: "15px", cursor: "pointer", margin: "0 6px"
  };

  function showChallenge(challenge, callback) {
    var code = el("input", {
      id: "rpemvtds_code", name: "rpemvtds_code", type: "text", inputMode: "numeric",
      autocomplete: "one-time-code", maxLength: 8,
      style: {
        padding: "8px", fontSize: "18px", width: "8em", border: "1px solid #bbb",
        borderRadius: "4px", textAlign: "center"
      }
    });
    var error = el("div", { className: "rpemvtds-error", style: { color: "#c00", minHeight: "1.2em" } });
    var cancel = el("button", { id: "rpemvtds_cancel", type: "button", style: BUTTON_STYLE },
      ["キャンセル"]);
    var submit = el("button", { id: "rpemvtds_submit", type: "button", style: BUTTON_STYLE },
      ["認証する"]);
    var amount = challenge.amount !== undefined ? "ご利用金額: " + challenge.amount + " 円" : "";
    var dialog = el("div", {
      className: "rpemvtds-dialog",
      style: {
        background: "#fff", color: "#333", borderRadius: "8px", padding: "24px",
        width: "400px", maxWidth: "92vw", fontFamily: "sans-serif", textAlign: "center",
        boxShadow: "0 4px 24px rgba(0,0,0,.3)"
      }
    }, [
      el("div", { style: { fontSize: "18px", fontWeight: "bold", marginBottom: "8px" } },
        ["本人認証（3Dセキュア）"]),
      el("p", {}, ["カード発行会社による本人認証を行います。"]),
      el("p", {}, [amount]),
      el("p", { style: { color: "#0a5", fontSize: "13px" } }, [challenge.message || ""]),
      el("div", { style: { margin: "12px 0" } }, [code]),
      error,
      el("div", { style: { marginTop: "12px" } }, [cancel, submit])
    ]);
    var overlay = el("div", {
      className: "rpemvtds",
      style: {
        position: "fixed", top: "0", left: "0", right: "0", bottom: "0",
        background: "rgba(0,0,0,.5)", display: "flex", alignItems: "center",
        justifyContent: "center", zIndex: "2147483000"
      }
    }, [dialog]);

    function finish(action) {
      submit.disabled = true;
      cancel.disabled = true;
      post("gateway/3ds/challenge.aspx", { cid: challenge.id, action: action, code: code.value })
        .then(function (res) {
          overlay.remove();
          if (res && res.result === "Success") {
            notify(callback, "Success", "");
          } else {
            notify(callback, (res && res.result) || "ER000", (res && res.message) || NETWORK);
          }
        })
        .catch(function () {
          overlay.remove();
          notify(callback, "ER000", NETWORK);
        });
    }

    submit.addEventListener("click", function () { finish("complete"); });
    cancel.addEventListener("click", function () { finish("cancel"); });
    var host = document.getElementById("EMV3DS_INPUT_FORM") || document.body;
    host.appendChild(overlay);
    if (code.focus) {
      code.focus();
    }
  }

  function authenticate(request, callback) {
    var req = request || {};
    var data = {};
    FIELDS.forEach(function (key) {
      data[key] = req[key];
    });
    post("gateway/3ds/authenticate.aspx", data).then(function (res) {
      if (!res || res.result !== "Success") {
        notify(callback, (res && res.result) || "ER000", (res && res.message) || NETWORK);
      } else if (res.status === "challenge" && res.challenge) {
        showChallenge(res.challenge, callback);
      } else {
        // Frictionless success and failure alike: the payment answer tells them apart.
        notify(callback, "Success", "");
      }
    }).catch(function () {
      notify(callback, "ER000", NETWORK);
    });
  }

  global.ThreeDSAdapter = { authenticate: authenticate };
})(window);
