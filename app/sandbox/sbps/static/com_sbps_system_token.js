/*
 * SBPS simulator: com_sbps_system_token.js (sandbox stand-in for the vendor's one-time token
 * script, seed 004).
 *
 *   com_sbps_system.generateToken({merchantId, serviceId, ccNumber, ccExpiration (YYYYMM),
 *                                  securityCode}, callback)
 *
 * callback({result: "OK", tokenResponse: {token, tokenKey, maskedCcNumber, ccExpiration,
 * cardBrandCode}}) or callback({result: "NG", errorCode: "03003"}): 5 characters, the type
 * (03 required, 04 attribute, 05 length, 07 defined value, 99 system) then the item (001
 * merchant id ... 005 security code, 999 none). The simulator checks the values; this script
 * only trims them and sends them.
 *
 * Strict-CSP safe: no inline code, no eval. The endpoint is derived from this script's own src,
 * so the simulator can live under any path.
 */
(function (global) {
  "use strict";

  var SCRIPT_NAME = "com_sbps_system_token.js";
  var SYSTEM_ERROR = "99999";

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

  // Captured while the script runs: document.currentScript is null inside callbacks.
  var BASE = scriptBase();

  function text(value) {
    return value === undefined || value === null ? "" : String(value).trim();
  }

  function answer(callback, response) {
    if (typeof callback === "function") {
      callback(response);
    }
  }

  function post(path, data, callback) {
    var body = new URLSearchParams();
    Object.keys(data).forEach(function (key) {
      if (data[key] !== "") {
        body.append(key, data[key]);
      }
    });
    // Form-encoded POST is a CORS "simple" request: no preflight from the merchant's page.
    fetch(BASE + path, { method: "POST", body: body, credentials: "omit" })
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

  function generateToken(tokenRequest, callback) {
    var req = tokenRequest || {};
    post("token", {
      merchantId: text(req.merchantId),
      serviceId: text(req.serviceId),
      ccNumber: text(req.ccNumber),
      ccExpiration: text(req.ccExpiration),
      securityCode: text(req.securityCode)
    }, callback);
  }

  global.com_sbps_system = global.com_sbps_system || {};
  global.com_sbps_system.generateToken = generateToken;
})(typeof window !== "undefined" ? window : this);
