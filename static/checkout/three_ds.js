/*
 * Result page of a payment waiting at 3-D Secure (SBPS): sends the shopper on to the card
 * issuer's page at once, as the link #three-ds-continue says (it stays for a browser without
 * script, or if this navigation is blocked). A navigation, not a form post, so the page's
 * form-action policy does not apply; no inline script (strict CSP). The shopper comes back to
 * our return URL, whose server-side call decides the payment.
 */
(function () {
  'use strict';

  var link = document.getElementById('three-ds-continue');
  if (!link || !link.href) {
    return;
  }
  // replace(): Back from the issuer's page returns to the checkout, not to this hop.
  window.location.replace(link.href);
})();
