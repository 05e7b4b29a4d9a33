/*
 * ROBOT PAYMENT gateway simulator: CPToken.js (sandbox stand-in for the vendor script).
 *
 *   CPToken.TokenCreate({aid, cn, ed (YYMM), fn, ln, cvv, md, pt}, callback)   custom form
 *   CPToken.CardInfo({aid, md, pt}, callback)  popup form (md defaults to 10: TokenCreate needs it)
 *
 * The token is written into the page's #tkn input, never passed to the callback:
 * callback("Success", "") on success, callback(<error code>, <message>) otherwise.
 * Closing the popup calls callback("CANCEL", <message>).
 *
 * Works under a strict CSP: no inline script or style attributes, no eval; DOM built with
 * createElement, styles through element.style, handlers through addEventListener.
 * Every URL is derived from this script's own src, so the simulator can live under any path.
 */
(function (global) {
  "use strict";

  var SCRIPT_PATH = "gateway/js/CPToken.js";
  var CANCEL_CODE = "CANCEL";
  var MESSAGES = {
    NETWORK: "決済システムと通信できませんでした。時間をおいて再度お試しください。",
    CANCEL: "カード情報の入力がキャンセルされました。"
  };

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

  function text(value) {
    return value === undefined || value === null ? "" : String(value).trim();
  }

  function post(path, data) {
    var body = new URLSearchParams();
    Object.keys(data).forEach(function (key) {
      if (data[key] !== "") {
        body.append(key, data[key]);
      }
    });
    // Form-encoded POST is a CORS "simple" request: no preflight when the page is elsewhere.
    return fetch(BASE + path, { method: "POST", body: body, credentials: "omit" })
      .then(function (response) { return response.json(); });
  }

  function TokenCreate(request, callback) {
    var req = request || {};
    var data = {
      aid: text(req.aid),
      cn: text(req.cn).replace(/[\s-]/g, ""),
      ed: text(req.ed),
      fn: text(req.fn),
      ln: text(req.ln),
      cvv: text(req.cvv),
      md: text(req.md),
      pt: text(req.pt)
    };
    post("gateway/token/create.aspx", data).then(function (res) {
      if (res && res.result === "Success" && res.tkn) {
        var field = document.getElementById("tkn");
        if (field) {
          field.value = res.tkn;
        }
        notify(callback, "Success", "");
      } else {
        notify(callback, (res && res.result) || "ER000", (res && res.message) || MESSAGES.NETWORK);
      }
    }).catch(function () {
      notify(callback, "ER000", MESSAGES.NETWORK);
    });
  }

  // --- popup form (CardInfo) -------------------------------------------------------------------

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

  var INPUT_STYLE = {
    padding: "8px", border: "1px solid #bbb", borderRadius: "4px", fontSize: "16px",
    boxSizing: "border-box"
  };
  var BUTTON_STYLE = {
    padding: "10px 24px", border: "none", borderRadius: "4px", background: "#c8102e",
    color: "#fff", fontSize: "15px", cursor: "pointer", margin: "0 6px"
  };

  function input(id, extra) {
    var props = { id: id, name: id, type: "text", autocomplete: "off", style: INPUT_STYLE };
    Object.keys(extra || {}).forEach(function (key) { props[key] = extra[key]; });
    return el("input", props);
  }

  function select(id, values, labels) {
    var node = el("select", { id: id, name: id, style: INPUT_STYLE });
    values.forEach(function (value, i) {
      node.appendChild(el("option", { value: value }, [labels[i]]));
    });
    node.value = values[0];
    return node;
  }

  function row(label, controls, note) {
    var parts = [el("div", { style: { fontWeight: "bold", marginBottom: "4px" } }, [label])];
    var line = el("div", { style: { display: "flex", gap: "8px", alignItems: "center" } }, controls);
    parts.push(line);
    if (note) {
      parts.push(el("div", { style: { fontSize: "12px", color: "#666" } }, [note]));
    }
    return el("div", { style: { marginBottom: "14px" } }, parts);
  }

  var openModal = null;

  function CardInfo(request, callback) {
    var req = request || {};
    if (openModal) {
      openModal.remove();
    }
    var months = [];
    for (var m = 1; m <= 12; m++) {
      months.push((m < 10 ? "0" : "") + m);
    }
    var years = [];
    var yearLabels = [];
    var thisYear = new Date().getFullYear();
    for (var y = thisYear; y <= thisYear + 10; y++) {
      years.push(String(y).slice(2));
      yearLabels.push(String(y));
    }

    var cn = input("rpcp_cn", { inputMode: "numeric", autocomplete: "cc-number", maxLength: 19 });
    cn.style.width = "100%";
    var month = select("rpcp_ed_month", months, months);
    month.value = months[new Date().getMonth()]; // this month onwards is a valid default
    var year = select("rpcp_ed_year", years, yearLabels);
    var fn = input("rpcp_fn", { autocomplete: "cc-given-name", maxLength: 43, placeholder: "TARO" });
    var ln = input("rpcp_ln", { autocomplete: "cc-family-name", maxLength: 43, placeholder: "YAMADA" });
    var cvv = input("rpcp_cvv", { inputMode: "numeric", autocomplete: "cc-csc", maxLength: 4 });
    cvv.style.width = "6em";
    var error = el("div", {
      id: "rpcp_error", style: { color: "#c00", minHeight: "1.2em", marginBottom: "10px" }
    });
    var close = el("button", { id: "rpcp_close", type: "button", style: BUTTON_STYLE }, ["閉じる"]);
    var submit = el("button", { id: "rpcp_submit", type: "button", style: BUTTON_STYLE }, ["確定"]);

    var dialog = el("div", {
      style: {
        background: "#fff", color: "#333", borderRadius: "8px", padding: "24px",
        width: "440px", maxWidth: "92vw", fontFamily: "sans-serif",
        boxShadow: "0 4px 24px rgba(0,0,0,.3)"
      }
    }, [
      el("div", { style: { fontSize: "18px", fontWeight: "bold", marginBottom: "8px" } },
        ["クレジットカード情報を入力してください"]),
      el("div", { style: { fontSize: "12px", color: "#666", marginBottom: "16px" } },
        ["VISA / Mastercard / JCB / American Express / Diners Club / DISCOVER"]),
      row("カード番号", [cn], "(半角数字)"),
      row("有効期限", [month, "/", year], "(月/年)"),
      row("カード名義", [fn, ln], "(名) (姓) (半角文字のみ)"),
      row("セキュリティコード", [cvv], "(カード裏面の3桁、AMEXは表面の4桁)"),
      el("div", { style: { fontSize: "12px", color: "#0a5", marginBottom: "10px" } },
        ["SANDBOX: テストカード 4444333322221111 / CVV 123"]),
      error,
      el("div", { style: { textAlign: "center" } }, [close, submit])
    ]);
    var overlay = el("div", {
      className: "rpcp-overlay",
      style: {
        position: "fixed", top: "0", left: "0", right: "0", bottom: "0",
        background: "rgba(0,0,0,.5)", display: "flex", alignItems: "center",
        justifyContent: "center", zIndex: "2147483000"
      }
    }, [dialog]);

    function dismiss() {
      overlay.remove();
      if (openModal === overlay) {
        openModal = null;
      }
    }

    close.addEventListener("click", function () {
      dismiss();
      notify(callback, CANCEL_CODE, MESSAGES.CANCEL);
    });
    submit.addEventListener("click", function () {
      submit.disabled = true;
      error.textContent = "";
      TokenCreate({
        aid: req.aid, cn: cn.value, ed: year.value + month.value, fn: fn.value, ln: ln.value,
        cvv: cvv.value, md: req.md || "10", pt: req.pt
      }, function (code, message) {
        submit.disabled = false;
        if (code === "Success") {
          dismiss();
        } else {
          // Keep the form open so the shopper can correct it; the page hears about it too.
          error.textContent = message;
        }
        notify(callback, code, message);
      });
    });

    var host = document.getElementById("CARD_INPUT_FORM") || document.body;
    host.appendChild(overlay);
    openModal = overlay;
    if (cn.focus) {
      cn.focus();
    }
  }

  global.CPToken = { TokenCreate: TokenCreate, CardInfo: CardInfo };
})(window);
