// Test application code with errors at known places (line numbers are asserted by the tests).
function brokenCheckout() {
  const cart = undefined;
  return cart.items.length; // line 4
}
function rejectLater() {
  Promise.reject(new Error('payment provider unavailable')); // line 7
}
function loadPrices() {
  return fetch('/site/api/prices?currency=EUR').then((r) => r.status); // line 10
}
function loadDown() {
  return fetch('http://127.0.0.1:9/unreachable').catch(() => 'down'); // line 13
}
function xhrReport() {
  const x = new XMLHttpRequest(); // line 16
  x.open('POST', '/site/api/report');
  x.send('{}');
}
function flood() {
  for (let i = 0; i < 15; i++) setTimeout(() => { throw new Error('flood ' + i); });
}
