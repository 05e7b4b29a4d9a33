/*
 * SBPS simulator: com_sbps_system_tds2infotoken.js (sandbox stand-in for the vendor's 3-D
 * Secure 2.0 info token script).
 *
 *   com_sbps_system_tds2.generateToken({merchantId, serviceId, email, mobilePhone, homePhone,
 *       workPhone, cardholderName, billAddrCountry, billAddrState, billAddrPostCode,
 *       billAddrCity, billAddrLine1, billAddrLine2, billAddrLine3}, callback)
 *
 * The browser's details (language, screen, colour depth, time zone) are added here, as 3-D
 * Secure 2.0 wants them. callback({result: "OK", tokenResponse: {token, tokenKey}}) - sent as
 * tds_info_token / tds_info_token_key in TA02-00101-101 - or callback({result: "NG",
 * errorCode}) with the same 5-character codes as com_sbps_system_token.js (ours: 006 e-mail,
 * 007 phone, 008 name; e-mail or a phone is required: 03006).
 *
 * Strict-CSP safe: no inline code, no eval; the endpoint comes from this script's own src.
 */
(function (global) {
  "use strict";

  var SCRIPT_NAME = "com_sbps_system_tds2infotoken.js";
  var SYSTEM_ERROR = "99999";
  var FIELDS = [
    "merchantId", "serviceId", "email", "mobilePhone", "homePhone", "workPhone",
    "cardholderName", "billAddrCountry", "billAddrState", "billAddrPostCode", "billAddrCity",
    "billAddrLine1", "billAddrLine2", "billAddrLine3"
  ];

  function scriptBase() {
    var src = "";
    if (global.document && document.currentScript && document.currentScript.src) {
      src = document.currentScript.src;
    } else if (global.document) {
      var scripts = document.getElementsByTagName("script");
      for (var i = 0; i < scripts.length; i++) {
        if (scripts[i].src && scripts[i].src.indexOf(SCRIPT_NAME) !== -1) {
          src = scripts[i].src;
        }
      }
    }
    var at = src.lastIndexOf(SCRIPT_NAME);
    return at >= 0 ? src.slice(0, at) : "/sbpstoken/";
  }

  var BASE = scriptBase();

  function text(value) {
    return value === undefined || value === null ? "" : String(value).trim();
  }

  function browserDetails() {
    var details = {};
    var nav = global.navigator || {};
    var screen = global.screen || {};
    details.browserLanguage = text(nav.language);
    details.browserColorDepth = text(screen.colorDepth);
    details.browserScreenHeight = text(screen.height);
    details.browserScreenWidth = text(screen.width);
    details.browserTZ = String(new Date().getTimezoneOffset());
    details.browserJavaEnabled = typeof nav.javaEnabled === "function" && nav.javaEnabled()
      ? "true" : "false";
    return details;
  }

  function answer(callback, response) {
    if (typeof callback === "function") {
      callback(response);
    }
  }

  function generateToken(request, callback) {
    var req = request || {};
    var data = browserDetails();
    FIELDS.forEach(function (name) {
      data[name] = text(req[name]);
    });
    var body = new URLSearchParams();
    Object.keys(data).forEach(function (key) {
      if (data[key] !== "") {
        body.append(key, data[key]);
      }
    });
    fetch(BASE + "tds2infotoken", { method: "POST", body: body, credentials: "omit" })
      .then(function (response) { return response.json(); })
      .then(function (res) {
        if (res && (res.result === "OK" || res.result === "NG")) {
          answer(callback, res);
        } else {
          answer(callback, { result: "NG", errorCode: SYSTEM_ERROR });
        }
      })
      .catch(function () {
        answer(callback, { result: "NG", errorCode: SYSTEM_ERROR });
      });
  }

  global.com_sbps_system_tds2 = global.com_sbps_system_tds2 || {};
  global.com_sbps_system_tds2.generateToken = generateToken;
})(typeof window !== "undefined" ? window : this);
