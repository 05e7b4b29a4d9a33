/*
 * Checkout page: card token (CPToken.js) -> 3-D Secure 2.0 (EMV3DSAdapter.js) -> post tkn.
 * With data-provider="sbps": com_sbps_system_token.js's token -> post tkn + tkn_key.
 *
 * Everything comes from data-* attributes of #mainform (the page is served with a strict CSP,
 * so there is no inline script):
 *   data-aid          shop id for the gateway scripts
 *   data-mode         "custom" (our card inputs) or "popup" (the gateway draws its own form)
 *   data-three-ds     JSON: exactly the values the server sends with the payment
 *                     ({am, tx, sf[, em][, pn]} or {iid[, em][, pn]})
 *   data-messages     JSON: the messages of the page language
 *   data-expires-at   ISO time after which the session can no longer be paid
 *
 * Card data never reaches our server: the card inputs have no name attribute, they are
 * cleared before the form is submitted, and only tkn + lang (or card_num + lang) are posted.
 * Plain ES2017, no dependencies.
 */
(function () {
  'use strict';

  var form = document.getElementById('mainform');
  if (!form) {
    return;
  }

  var button = document.getElementById('purchase');
  var buttonLabel = button.querySelector('.btn__label') || button;
  var idleLabel = buttonLabel.textContent;
  var alertBox = document.getElementById('form-alert');
  var tokenInput = document.getElementById('tkn');
  var cardNumInput = document.getElementById('card_num');
  var newCard = document.getElementById('new-card');
  var choices = Array.prototype.slice.call(form.querySelectorAll('input[name="card_choice"]'));

  var aid = form.dataset.aid || '';
  // GATEWAY_PROVIDER=sbps: com_sbps_system_token.js makes the token (and its key) instead of
  // CPToken.js; with data-sbps-three-ds, com_sbps_system_tds2infotoken.js then makes the 3-D
  // Secure info token, and the server sends the shopper to 3-D Secure (README "SBPS").
  var sbps = form.dataset.provider === 'sbps';
  var tokenKeyInput = document.getElementById('tkn_key');
  var sbpsThreeDs = sbps && form.dataset.sbpsThreeDs === '1';
  var tdsTokenInput = document.getElementById('tds_tkn');
  var tdsTokenKeyInput = document.getElementById('tds_tkn_key');
  var mode = form.dataset.mode === 'popup' ? 'popup' : 'custom';
  var lang = form.dataset.lang === 'en' ? 'en' : 'ja';
  var messages = parseJson(form.dataset.messages);
  var threeDs = cleanThreeDs(parseJson(form.dataset.threeDs));
  // The "save this card" box: when ticked, 3-D Secure may have to run with other values (a
  // card registration, am=tx=sf=0) and the box's value is posted with the token.
  var saveBox = document.getElementById('save_card');
  var threeDsSave = form.dataset.threeDsSave ? cleanThreeDs(parseJson(form.dataset.threeDsSave))
    : null;

  var CARD_FIELDS = ['cn', 'ed_month', 'ed_year', 'fn', 'ln', 'cvv'];
  // Which field a gateway error code points at, and the error element under it.
  var CODE_FIELDS = { ER055: 'cn', ER056: 'ed_month', ER057: 'fn', ER058: 'ln', ER079: 'cvv' };
  var ERROR_SLOTS = { cn: 'cn-error', ed_month: 'ed-error', ed_year: 'ed-error', fn: 'fn-error',
    ln: 'ln-error', cvv: 'cvv-error' };
  // The gateway's rule (docs/gateway.md): Latin letters, "." and "-"; no spaces.
  var NAME_RE = /^[A-Za-z.\-]+$/;

  var busy = false;      // a payment flow is running: ignore further clicks
  var expired = false;   // the session's pay-by time has passed
  var flow = 0;          // id of the latest flow; callbacks of older ones are ignored
  var disabledForPost = [];

  // --- helpers -------------------------------------------------------------------------------

  function parseJson(text) {
    if (!text) {
      return {};
    }
    try {
      var value = JSON.parse(text);
      return value && typeof value === 'object' ? value : {};
    } catch (e) {
      return {};
    }
  }

  function cleanThreeDs(values) {
    var out = {};
    Object.keys(values).forEach(function (key) {
      var v = values[key];
      if (v !== null && v !== undefined && String(v) !== '') {
        out[key] = String(v);
      }
    });
    return out;
  }

  function msg(key, vars) {
    var text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    return String(text).replace(/\{(\w+)\}/g, function (whole, name) {
      return vars && Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole;
    });
  }

  function el(id) {
    return document.getElementById(id);
  }

  // What a Japanese IME types: full-width digits, letters, "．", "－" and spaces become their
  // ASCII forms (the gateway takes only those).
  function halfWidth(text) {
    return String(text)
      .replace(/[\uFF01-\uFF5E]/g, function (ch) {
        return String.fromCharCode(ch.charCodeAt(0) - 0xFEE0);
      })
      .replace(/[\u3000]/g, ' ')
      .replace(/[\u2010-\u2015\u2212\u30FC]/g, '-');
  }

  function value(id) {
    var node = el(id);
    return node ? halfWidth(node.value || '').trim() : '';
  }

  // The card brand from the number's first digits (what the shopper sees beside the field;
  // the gateway decides what it accepts).
  var BRANDS = [
    ['amex', /^3[47]/], ['diners', /^3(0[0-5]|[689])/], ['jcb', /^35(2[89]|[3-8])/],
    ['visa', /^4/], ['mastercard', /^(5[1-5]|2(2[2-9]|[3-6]|7[01]|720))/]
  ];

  function brandOf(digits) {
    for (var i = 0; i < BRANDS.length; i += 1) {
      if (BRANDS[i][1].test(digits)) {
        return BRANDS[i][0];
      }
    }
    return '';
  }

  function cvvLength(brand) {
    return brand === 'amex' ? 4 : 3;
  }

  // 4-4-4-4 (American Express 4-6-5), as printed on the card.
  function grouped(digits) {
    var sizes = brandOf(digits) === 'amex' ? [4, 6, 5] : [4, 4, 4, 4, 3];
    var parts = [];
    var at = 0;
    for (var i = 0; i < sizes.length && at < digits.length; i += 1) {
      parts.push(digits.slice(at, at + sizes[i]));
      at += sizes[i];
    }
    return parts.join(' ');
  }

  // --- messages ------------------------------------------------------------------------------

  // `details` (optional): each field's error, read out with the alert by screen readers (the
  // alert is a live region) but not shown twice: each is visible under its field.
  function showAlert(text, details) {
    alertBox.textContent = text;
    if (details && details.length) {
      var spoken = document.createElement('span');
      spoken.className = 'visually-hidden';
      spoken.textContent = ' ' + details.join(' ');
      alertBox.appendChild(spoken);
    }
    if (alertBox.scrollIntoView && alertBox.getBoundingClientRect().top < 0) {
      alertBox.scrollIntoView({ block: 'center' });
    }
  }

  function clearAlert() {
    alertBox.textContent = '';
  }

  function setFieldError(id, text) {
    var node = el(id);
    if (node) {
      node.setAttribute('aria-invalid', 'true');
    }
    var slot = el(ERROR_SLOTS[id]);
    if (slot && !slot.textContent) {
      slot.textContent = text;
    }
  }

  function clearFieldError(id) {
    var node = el(id);
    if (node) {
      node.removeAttribute('aria-invalid');
    }
    var slot = el(ERROR_SLOTS[id]);
    if (slot) {
      slot.textContent = '';
    }
  }

  // The name a field is shown with: its label, or its group's legend (the expiry's month and
  // year selects, whose own labels only say "month" and "year").
  function fieldName(id) {
    var node = el(id);
    var group = node && node.closest ? node.closest('fieldset') : null;
    var label = document.querySelector('label[for="' + id + '"]');
    if (group && (id === 'ed_month' || id === 'ed_year')) {
      label = group.querySelector('legend');
    }
    return label ? label.textContent.trim() : id;
  }

  function clearFieldErrors() {
    CARD_FIELDS.forEach(clearFieldError);
  }

  // Gateway result code + message -> text for the shopper.
  function errorText(code, errMsg) {
    code = String(code || '').trim();
    var key = 'err_' + code;
    var text;
    if (code && Object.prototype.hasOwnProperty.call(messages, key)) {
      text = messages[key];
    } else {
      text = String(errMsg || '').trim() || msg('err_generic');
    }
    if (/^[A-Z]{1,3}\d{2,4}$/.test(code)) {
      text += '\n' + msg('err_code', { code: code });
    }
    return text;
  }

  // --- busy state ----------------------------------------------------------------------------

  function setBusy(on) {
    busy = on;
    button.disabled = on || expired;
    button.setAttribute('aria-busy', on ? 'true' : 'false');
    form.setAttribute('aria-busy', on ? 'true' : 'false');
    buttonLabel.textContent = on ? msg('processing') : idleLabel;
  }

  function fail(text, code) {
    tokenInput.value = '';
    if (mode === 'custom' && code && CODE_FIELDS[code]) {
      setFieldError(CODE_FIELDS[code], msg('err_' + code));
    }
    setBusy(false);
    showAlert(text);
  }

  // --- validation (custom mode) --------------------------------------------------------------

  function luhn(digits) {
    var sum = 0;
    var double = false;
    for (var i = digits.length - 1; i >= 0; i -= 1) {
      var d = digits.charCodeAt(i) - 48;
      if (double) {
        d *= 2;
        if (d > 9) {
          d -= 9;
        }
      }
      sum += d;
      double = !double;
    }
    return sum % 10 === 0;
  }

  // Returns the TokenCreate fields, or null after marking every invalid field.
  function validateCard() {
    var bad = [];

    var cnRaw = value('cn');
    var cn = cnRaw.replace(/\s+/g, '');
    if (!cn) {
      bad.push(['cn', 'err_cn_required']);
    } else if (!/^\d+$/.test(cn)) {
      bad.push(['cn', 'err_cn_format']);
    } else if (cn.length < 13 || cn.length > 19) {
      bad.push(['cn', 'err_cn_length']);
    } else if (!luhn(cn)) {
      bad.push(['cn', 'err_cn_luhn']);
    }

    var monthRaw = value('ed_month');
    var yearRaw = value('ed_year');
    var month = /^\d{1,2}$/.test(monthRaw) ? parseInt(monthRaw, 10) : NaN;
    var year = /^(\d{2}|\d{4})$/.test(yearRaw) ? parseInt(yearRaw.slice(-2), 10) : NaN;
    var ed = '';
    if (!(month >= 1 && month <= 12) || isNaN(year)) {
      bad.push(['ed_month', 'err_ed_required']);
      if (isNaN(year)) {
        el('ed_year') && el('ed_year').setAttribute('aria-invalid', 'true');
      }
    } else {
      var now = new Date();
      var fullYear = 2000 + year;
      if (fullYear < now.getFullYear() ||
          (fullYear === now.getFullYear() && month < now.getMonth() + 1)) {
        bad.push(['ed_month', 'err_ed_past']);
        el('ed_year') && el('ed_year').setAttribute('aria-invalid', 'true');
      }
      ed = (year < 10 ? '0' : '') + year + (month < 10 ? '0' : '') + month; // YYMM
    }

    var fn = value('fn').replace(/\s+/g, ' ');
    var ln = value('ln').replace(/\s+/g, ' ');
    if (!fn) {
      bad.push(['fn', 'err_fn_required']);
    } else if (!NAME_RE.test(fn)) {
      bad.push(['fn', 'err_name_chars']);
    }
    if (!ln) {
      bad.push(['ln', 'err_ln_required']);
    } else if (!NAME_RE.test(ln)) {
      bad.push(['ln', 'err_name_chars']);
    }
    if (fn && ln && NAME_RE.test(fn) && NAME_RE.test(ln) && fn.length + ln.length > 44) {
      bad.push(['fn', 'err_name_length']);
      bad.push(['ln', 'err_name_length']);
    }

    var cvv = value('cvv');
    var wanted = cvvLength(brandOf(cn));
    if (!/^\d+$/.test(cvv) || cvv.length !== wanted) {
      bad.push(['cvv', wanted === 4 ? 'err_cvv_4' : 'err_cvv']);
    }

    if (bad.length) {
      var spoken = [];
      bad.forEach(function (item) {
        setFieldError(item[0], msg(item[1]));
        var said = fieldName(item[0]) + ': ' + msg(item[1]);
        if (spoken.indexOf(said) === -1) {
          spoken.push(said);
        }
      });
      showAlert(msg('err_fix_fields'), spoken);
      var first = el(bad[0][0]);
      if (first && first.focus) {
        first.focus();
      }
      return null;
    }
    return { cn: cn, ed: ed, fn: fn.toUpperCase(), ln: ln.toUpperCase(), cvv: cvv };
  }

  // --- posting -------------------------------------------------------------------------------

  function clearCardFields() {
    CARD_FIELDS.forEach(function (id) {
      var node = el(id);
      if (node) {
        node.value = '';
      }
    });
  }

  // Post only the named fields listed (disabled controls are not submitted): nothing the
  // gateway scripts may have drawn inside the form, no radio choice, no card data.
  // While the post waits for the gateway's answer (tens of seconds when it is slow), the
  // shopper is told what is happening, then that the wait is normal and safe.
  var progress = (function () {
    var node = el('pay-progress');
    var timers = [];
    var STEPS = [[0, 'progress_sent'], [5000, 'progress_wait'], [15000, 'progress_long']];
    function stop() {
      timers.forEach(window.clearTimeout);
      timers = [];
      if (node) {
        node.hidden = true;
        node.textContent = '';
      }
    }
    function start() {
      stop();
      if (!node) {
        return;
      }
      node.hidden = false;
      STEPS.forEach(function (step) {
        timers.push(window.setTimeout(function () {
          node.textContent = msg(step[1]);
        }, step[0]));
      });
    }
    return { start: start, stop: stop };
  })();

  function submitOnly(names) {
    progress.start();
    disabledForPost = [];
    Array.prototype.forEach.call(form.elements, function (node) {
      if (node.name && names.indexOf(node.name) === -1 && !node.disabled) {
        node.disabled = true;
        disabledForPost.push(node);
      }
    });
    HTMLFormElement.prototype.submit.call(form);
  }

  // The payment method the shopper picked (md, and pt with 61 installments): the select's value
  // is "10", "80" or "61-<count>". Without a select (the shop offers lump sum only, card pages)
  // md is 10: TokenCreate requires md (seed 000 p.9, seed 001 p.3).
  function payMethod() {
    var node = el('pay_option');
    var raw = node && node.value ? node.value : '10';
    var parts = raw.split('-');
    return parts[0] === '61' && parts[1] ? { md: '61', pt: parts[1] } : { md: parts[0] };
  }

  function selectedChoice() {
    if (!choices.length) {
      return 'new';
    }
    for (var i = 0; i < choices.length; i += 1) {
      if (choices[i].checked) {
        return choices[i].value;
      }
    }
    return null;
  }

  // --- the flow ------------------------------------------------------------------------------

  function vendorReady(name, method) {
    var obj = window[name];
    return !!obj && typeof obj[method] === 'function';
  }

  function afterToken(myFlow) {
    return function (resultCode, errMsg) {
      if (myFlow !== flow) {
        return;
      }
      if (resultCode === 'CANCEL') {
        // The shopper closed the gateway's card form: nothing to report.
        popupWatch.stop();
        tokenInput.value = '';
        clearAlert();
        setBusy(false);
        return;
      }
      if (resultCode !== 'Success') {
        // Popup mode: the gateway's form may stay open for a correction and call back again
        // (same flow); the pay button is usable meanwhile and a new click starts a new flow.
        fail(errorText(resultCode, errMsg), String(resultCode || ''));
        return;
      }
      popupWatch.stop();
      setBusy(true);
      clearAlert();
      var token = tokenInput.value;
      if (!token) {
        fail(msg('err_no_token'));
        return;
      }
      if (!vendorReady('ThreeDSAdapter', 'authenticate')) {
        fail(msg('err_script'));
        return;
      }
      var saving = saveBox && saveBox.checked;
      var values = saving && threeDsSave ? threeDsSave : threeDs;
      var request = Object.assign({ aid: aid, tkn: token }, values);
      try {
        window.ThreeDSAdapter.authenticate(request, after3ds(myFlow));
      } catch (e) {
        fail(msg('err_3ds'));
      }
    };
  }

  function after3ds(myFlow) {
    return function (resultCode, errMsg) {
      if (myFlow !== flow) {
        return;
      }
      if (resultCode !== 'Success') {
        fail(msg('err_3ds') + '\n' + errorText(resultCode, errMsg), String(resultCode || ''));
        return;
      }
      clearCardFields();
      submitOnly(['tkn', 'lang', 'save_card', 'pay_option']);
    };
  }

  function purchase() {
    if (busy) {
      return;
    }
    clearAlert();
    if (expired) {
      showAlert(msg('expired'));
      return;
    }

    var choice = selectedChoice();
    if (choice === null) {
      showAlert(msg('err_choose_card'));
      return;
    }
    if (choice !== 'new') {
      // A saved card: the server charges it (one-touch); no token, no card data.
      setBusy(true);
      cardNumInput.value = choice;
      cardNumInput.disabled = false;
      submitOnly(['card_num', 'lang', 'pay_option']);
      return;
    }

    var card = null;
    if (mode === 'custom') {
      clearFieldErrors();
      card = validateCard();
      if (!card) {
        return;
      }
    }
    if (sbps) {
      sbpsToken(card);
      card = null;
      return;
    }
    var method = mode === 'popup' ? 'CardInfo' : 'TokenCreate';
    if (!vendorReady('CPToken', method)) {
      showAlert(msg('err_script'));
      return;
    }

    setBusy(true);
    flow += 1;
    tokenInput.value = '';
    var cb = afterToken(flow);
    try {
      if (mode === 'popup') {
        popupWatch.start(flow);
        window.CPToken.CardInfo(Object.assign({ aid: aid }, payMethod()), cb);
      } else {
        window.CPToken.TokenCreate(Object.assign({ aid: aid }, card, payMethod()), cb);
      }
    } catch (e) {
      popupWatch.stop();
      fail(msg('err_generic'));
    }
    card = null;
  }

  // SBPS: the token script's 5-character error code -> text for the shopper (the messages
  // come from the server's table; an unknown code is named).
  function sbpsErrorText(code) {
    var key = 'err_sbps_' + code;
    if (/^\d{5}$/.test(code) && Object.prototype.hasOwnProperty.call(messages, key)) {
      return messages[key];
    }
    return msg('err_sbps_unknown', { code: code || '-' });
  }

  function sbpsToken(card) {
    if (!vendorReady('com_sbps_system', 'generateToken') || !tokenKeyInput) {
      showAlert(msg('err_script'));
      return;
    }
    setBusy(true);
    flow += 1;
    var myFlow = flow;
    tokenInput.value = '';
    tokenKeyInput.value = '';
    var request = {
      merchantId: form.dataset.sbpsMerchantId || '',
      serviceId: form.dataset.sbpsServiceId || '',
      ccNumber: card.cn,
      ccExpiration: '20' + card.ed.slice(0, 2) + card.ed.slice(2, 4), // YYMM -> YYYYMM
      securityCode: card.cvv
    };
    try {
      window.com_sbps_system.generateToken(request, function (response) {
        if (myFlow !== flow) {
          return;
        }
        var answer = response && response.result === 'OK' ? response.tokenResponse : null;
        if (!answer || !answer.token || !answer.tokenKey) {
          tokenKeyInput.value = '';
          fail(sbpsErrorText(String((response && response.errorCode) || '').trim()));
          return;
        }
        tokenInput.value = answer.token;
        tokenKeyInput.value = answer.tokenKey;
        clearCardFields();
        if (sbpsThreeDs) {
          sbpsThreeDsToken(myFlow);
          return;
        }
        submitOnly(['tkn', 'tkn_key', 'lang', 'save_card', 'pay_option']);
      });
    } catch (e) {
      fail(msg('err_generic'));
    }
    request = null;
  }

  // SBPS 3-D Secure 2.0: the info token (the order's e-mail or phone, and the browser's
  // details the script adds), posted with the card token; the server answers with the way to
  // the card issuer's page.
  function sbpsThreeDsToken(myFlow) {
    if (!vendorReady('com_sbps_system_tds2', 'generateToken') || !tdsTokenInput || !tdsTokenKeyInput) {
      fail(msg('err_script'));
      return;
    }
    tdsTokenInput.value = '';
    tdsTokenKeyInput.value = '';
    var request = {
      merchantId: form.dataset.sbpsMerchantId || '',
      serviceId: form.dataset.sbpsServiceId || '',
      email: threeDs.em || '',
      mobilePhone: threeDs.pn || ''
    };
    try {
      window.com_sbps_system_tds2.generateToken(request, function (response) {
        if (myFlow !== flow) {
          return;
        }
        var answer = response && response.result === 'OK' ? response.tokenResponse : null;
        if (!answer || !answer.token || !answer.tokenKey) {
          tokenInput.value = '';
          tokenKeyInput.value = '';
          fail(sbpsErrorText(String((response && response.errorCode) || '').trim()));
          return;
        }
        tdsTokenInput.value = answer.token;
        tdsTokenKeyInput.value = answer.tokenKey;
        submitOnly(['tkn', 'tkn_key', 'tds_tkn', 'tds_tkn_key', 'lang', 'save_card', 'pay_option']);
      });
    } catch (e) {
      fail(msg('err_generic'));
    }
  }

  // Popup mode: the gateway's card form has a close button that may never call back. When its
  // form disappears without a result, give the shopper the pay button back.
  var popupWatch = (function () {
    var observer = null;
    var watchedFlow = 0;
    var sawContent = false;
    var container = document.getElementById('CARD_INPUT_FORM');

    function visible() {
      if (!container) {
        return false;
      }
      var nodes = container.querySelectorAll('*');
      for (var i = 0; i < nodes.length; i += 1) {
        if (nodes[i].getClientRects().length) {
          return true;
        }
      }
      return false;
    }

    function check() {
      if (visible()) {
        sawContent = true;
      } else if (sawContent && watchedFlow === flow && !tokenInput.value) {
        stop();
        setBusy(false);
      }
    }

    function start(id) {
      stop();
      if (!container || typeof MutationObserver === 'undefined') {
        return;
      }
      watchedFlow = id;
      sawContent = false;
      observer = new MutationObserver(check);
      observer.observe(container, { childList: true, subtree: true, attributes: true });
    }

    function stop() {
      if (observer) {
        observer.disconnect();
        observer = null;
      }
    }

    return { start: start, stop: stop };
  })();

  // --- wiring --------------------------------------------------------------------------------

  // Some browsers restore form state (values, even disabled flags) on reload / back: start clean.
  tokenInput.value = '';
  if (cardNumInput) {
    cardNumInput.value = '';
    cardNumInput.disabled = true;
  }
  setBusy(false);
  if (newCard && choices.length) {
    newCard.hidden = selectedChoice() !== 'new';
  }

  function showChoice() {
    var choice = selectedChoice();
    if (newCard) {
      newCard.hidden = choice !== 'new';
    }
    clearAlert();
    clearFieldErrors();
  }

  choices.forEach(function (radio) {
    radio.addEventListener('change', showChoice);
  });

  // The number as typed: converted to ASCII digits, grouped, its brand shown.
  (function cardNumberAsTyped() {
    var cnNode = el('cn');
    var brandNode = el('cn-brand');
    // The brand's mark inside the field (static/checkout/brands/<brand>.svg; "generic" until
    // the first digits name one). Hidden from screen readers: #cn-brand says it in words.
    var markNode = el('cn-brand-mark');
    var markBase = markNode ? markNode.getAttribute('src').replace(/[^/]*$/, '') : '';
    if (!cnNode) {
      return;
    }
    cnNode.addEventListener('input', function () {
      var atEnd = cnNode.selectionStart === cnNode.value.length;
      var digits = halfWidth(cnNode.value).replace(/\D/g, '').slice(0, 19);
      var shown = grouped(digits);
      if (shown !== cnNode.value && atEnd) {
        cnNode.value = shown;
      }
      var brand = brandOf(digits);
      if (brandNode) {
        brandNode.textContent = brand ? msg('brand_' + brand) : '';
        brandNode.dataset.brand = brand;
      }
      var mark = brand || 'generic';
      if (markNode && markNode.dataset.brand !== mark) {
        markNode.src = markBase + mark + '.svg';
        markNode.dataset.brand = mark;
      }
      var cvvNode = el('cvv');
      if (cvvNode) {
        cvvNode.maxLength = cvvLength(brand);
      }
    });
    ['cvv'].forEach(function (id) {
      var node = el(id);
      if (node) {
        node.addEventListener('input', function () {
          var digits = halfWidth(node.value).replace(/\D/g, '');
          if (digits !== node.value) {
            node.value = digits;
          }
        });
      }
    });
  })();

  CARD_FIELDS.forEach(function (id) {
    var node = el(id);
    if (!node) {
      return;
    }
    var clear = function () {
      if (node.getAttribute('aria-invalid') === 'true') {
        clearFieldError(id);
        if (id === 'ed_month' || id === 'ed_year') {
          clearFieldError(id === 'ed_month' ? 'ed_year' : 'ed_month');
        }
      }
    };
    node.addEventListener('input', clear);
    node.addEventListener('change', clear);
    // Enter in a text field pays, as in any form: the form has no submit button (a native
    // post would carry no token), so the browser would do nothing by itself.
    if (node.tagName === 'INPUT') {
      node.addEventListener('keydown', function (event) {
        if (event.key === 'Enter' && !event.isComposing) {
          event.preventDefault();
          purchase();
        }
      });
    }
  });

  button.addEventListener('click', function (event) {
    event.preventDefault();
    purchase();
  });

  // Enter in a card field must not post the form natively (it would post without a token).
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    purchase();
  });

  // Back/forward cache: the page comes back as it was left (button busy, controls disabled).
  window.addEventListener('pageshow', function (event) {
    if (!event.persisted) {
      return;
    }
    disabledForPost.forEach(function (node) {
      node.disabled = false;
    });
    disabledForPost = [];
    if (cardNumInput) {
      cardNumInput.value = '';
      cardNumInput.disabled = true;
    }
    tokenInput.value = '';
    if (tokenKeyInput) {
      tokenKeyInput.value = '';
    }
    clearCardFields();
    flow += 1;
    progress.stop();
    setBusy(false);
  });

  // Pay-by time: show it in the shopper's time zone and lock the button when it passes.
  (function expiry() {
    var iso = form.dataset.expiresAt;
    var when = iso ? new Date(iso) : null;
    if (!when || isNaN(when.getTime())) {
      return;
    }
    // The pay-by time stays as the server wrote it: in JST, as the shop states its times.
    var lock = function () {
      expired = true;
      if (!busy) {
        button.disabled = true;
        showAlert(msg('expired'));
      }
    };
    var left = when.getTime() - Date.now();
    if (left <= 0) {
      lock();
    } else if (left < 2147483647) {
      window.setTimeout(lock, left);
    }
  })();

  // The gateway scripts are loaded before this file: if they are missing, say so now (unless a
  // saved card is chosen, which needs no gateway script).
  var scriptReady = sbps ? vendorReady('com_sbps_system', 'generateToken')
    : vendorReady('CPToken', mode === 'popup' ? 'CardInfo' : 'TokenCreate');
  if (!scriptReady && !expired && selectedChoice() === 'new') {
    showAlert(msg('err_script'));
  }
})();
