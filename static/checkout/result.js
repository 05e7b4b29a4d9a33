/*
 * Result page: redirect to the shop after a success, and poll the payment status while the
 * gateway has not answered yet. Reads data-* attributes of #result (no inline script, strict CSP):
 *   data-status            succeeded | failed | pending | unknown
 *   data-status-url        JSON endpoint: {"status": "...", "redirect_url": "..."|null}
 *   data-redirect-url      where to go after a success (may be empty)
 *   data-redirect-seconds  delay before that redirect
 *   data-messages          JSON: the messages of the page language
 * While pending or unknown, the page holds hidden panels (data-panel="succeeded|failed|unknown")
 * that this script reveals as the status moves; it follows the payment until it is succeeded or
 * failed (an unknown outcome is settled by the gateway's records minutes later). Plain ES2017,
 * no dependencies.
 */
(function () {
  'use strict';

  var root = document.getElementById('result');
  if (!root) {
    return;
  }

  var POLL_MS = 1500;
  var SLOW_POLL_MS = 5000;
  var SLOW_AFTER_MS = 90000;   // then tell the shopper it takes long, and poll less often
  var GIVE_UP_AFTER_MS = 1800000;  // half an hour: the janitor settles long before
  var FINAL = ['succeeded', 'failed'];

  var messages = parseJson(root.dataset.messages);
  var status = root.dataset.status || 'pending';
  var statusUrl = root.dataset.statusUrl || '';
  var seconds = parseInt(root.dataset.redirectSeconds || '3', 10);
  if (!(seconds >= 0)) {
    seconds = 3;
  }

  function parseJson(text) {
    try {
      var value = JSON.parse(text || '{}');
      return value && typeof value === 'object' ? value : {};
    } catch (e) {
      return {};
    }
  }

  function msg(key, vars) {
    var text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : '';
    return String(text).replace(/\{(\w+)\}/g, function (whole, name) {
      return vars && Object.prototype.hasOwnProperty.call(vars, name) ? String(vars[name]) : whole;
    });
  }

  // Only http(s) URLs (absolute or relative) are followed.
  function safeUrl(url) {
    if (!url || typeof url !== 'string') {
      return null;
    }
    try {
      var parsed = new URL(url, window.location.href);
      return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  function panel(kind) {
    return root.querySelector('[data-panel="' + kind + '"]');
  }

  function redirectAfterCountdown(container, url) {
    var target = safeUrl(url);
    if (!target) {
      return;
    }
    var counter = container.querySelector('[data-countdown]');
    var left = seconds;
    var tick = function () {
      if (left <= 0) {
        window.location.assign(target);
        return;
      }
      if (counter) {
        counter.textContent = msg('redirecting', { seconds: left });
      }
      left -= 1;
      window.setTimeout(tick, 1000);
    };
    tick();
  }

  function setLink(container, name, url) {
    var link = container.querySelector('[data-link="' + name + '"]');
    if (!link) {
      return;
    }
    var target = safeUrl(url);
    if (target) {
      link.href = target;
      link.hidden = false;
    }
  }

  // Switch from the pending panel to the final one.
  function reveal(kind, data) {
    var next = panel(kind);
    if (!next) {
      return;
    }
    Array.prototype.forEach.call(root.querySelectorAll('[data-panel]'), function (node) {
      node.hidden = node !== next;
    });
    root.dataset.status = kind;
    var title = next.querySelector('.result__title');
    if (kind === 'succeeded') {
      setLink(next, 'continue', data.redirect_url);
      redirectAfterCountdown(next, data.redirect_url);
    } else if (kind === 'failed') {
      setLink(next, 'cancel', data.redirect_url);
    }
    if (title && title.focus) {
      title.focus();
    }
    if (title && document.title) {
      document.title = title.textContent + document.title.replace(/^[^|]*/, ' ');
    }
  }

  function poll() {
    var started = Date.now();
    var slowShown = false;

    var schedule = function () {
      var elapsed = Date.now() - started;
      if (elapsed > GIVE_UP_AFTER_MS) {
        if (root.dataset.status !== 'unknown') {
          reveal('unknown', {});
        }
        return;
      }
      if (elapsed > SLOW_AFTER_MS && !slowShown) {
        slowShown = true;
        var slow = root.querySelector('[data-panel]:not([hidden]) [data-slow]');
        if (slow) {
          slow.hidden = false;
        }
      }
      window.setTimeout(once, slowShown ? SLOW_POLL_MS : POLL_MS);
    };

    var once = function () {
      fetch(statusUrl, {
        method: 'GET',
        headers: { Accept: 'application/json' },
        credentials: 'same-origin',
        cache: 'no-store'
      }).then(function (response) {
        if (!response.ok) {
          throw new Error('HTTP ' + response.status);
        }
        return response.json();
      }).then(function (data) {
        var next = data && typeof data.status === 'string' ? data.status : '';
        if (FINAL.indexOf(next) !== -1) {
          reveal(next, data);
          return;
        }
        if (next === 'unknown' && root.dataset.status !== 'unknown') {
          reveal('unknown', data); // honest words while it is settled; keep following it
        }
        schedule();
      }).catch(function () {
        schedule(); // a network hiccup: keep trying, the payment itself is not affected
      });
    };

    schedule();
  }

  if (status === 'succeeded') {
    redirectAfterCountdown(panel('succeeded') || root, root.dataset.redirectUrl);
  } else if ((status === 'pending' || status === 'unknown') && statusUrl &&
             typeof fetch === 'function') {
    poll();
  }
})();
