// Starts ReDoc on /redoc. ReDoc writes <style> elements: they carry this script's nonce, the
// one the page's CSP allows for styles.
(function () {
  "use strict";
  var root = document.getElementById("redoc");
  var nonce = document.currentScript && document.currentScript.nonce;
  // Native scrollbars: the perfect-scrollbar styles the bundle injects at load carry no nonce.
  var options = { nonce: nonce || undefined, nativeScrollbars: true };
  Redoc.init(root.getAttribute("data-openapi-url"), options, root);
})();
