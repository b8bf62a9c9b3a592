// Footfall interactions module: clicks (stable CSS selector, visible text, page position),
// rage clicks (>= 3 clicks within 1 s and 30 px) and copy events (never the copied text).
// Interactions are batched and leave with the page's other events (within 3 s or at page hide).
(function (d, m) {
  if (!m) return;
  var FIELDS = 'input,textarea,select,[contenteditable]';
  var INTERESTING = 'a,button,input,select,textarea,label,summary,[role=button],[role=link],[onclick],[data-testid]';
  var cssEscape = function (s) {
    return window.CSS && CSS.escape ? CSS.escape(s) : s.replace(/[^\w-]/g, '\\$&');
  };
  // A class looks generated when it has a long run of digits or a hash-like tail (css-1x2y3z, sc-aXb12).
  var stableClass = function (c) {
    return c && !/\d{3}|^(css|sc|jsx|svelte|emotion)-|[_-][a-z0-9]*\d[a-z0-9]*$|^(is|has)-|active|hover|focus|open|selected/i.test(c);
  };

  var selector = function (el) {
    var parts = [];
    for (var depth = 0; el && el.nodeType == 1 && depth < 5; depth++, el = el.parentElement) {
      if (el.id && !/\d{3}/.test(el.id)) {
        parts.unshift('#' + cssEscape(el.id));
        break;
      }
      var tag = el.tagName.toLowerCase();
      var s = tag;
      var key = ['data-testid', 'name', 'aria-label'].filter(function (a) {
        return el.getAttribute(a);
      })[0];
      if (key) s += '[' + key + '="' + el.getAttribute(key).replace(/["\\]/g, '\\$&') + '"]';
      else {
        var cls = [].filter.call(el.classList, stableClass).slice(0, 2);
        if (cls.length) s += '.' + cls.map(cssEscape).join('.');
        var parent = el.parentElement;
        if (parent && tag != 'body' && tag != 'html') {
          var same = [].filter.call(parent.children, function (c) {
            return c.tagName == el.tagName;
          });
          if (same.length > 1) s += ':nth-of-type(' + (same.indexOf(el) + 1) + ')';
        }
      }
      parts.unshift(s);
      if (tag == 'body') break;
    }
    return parts.join(' > ').slice(0, 500);
  };

  // Visible text of an element, never from form fields or editable content (it could be user input).
  var text = function (el) {
    if (el.closest(FIELDS) || el.isContentEditable || el.querySelector(FIELDS)) return null;
    var t = (el.innerText || el.textContent || '').replace(/\s+/g, ' ').trim();
    return t ? t.slice(0, 100) : null;
  };

  var target = function (e) {
    var el = e.target;
    if (el && el.nodeType != 1) el = el.parentElement;
    return el && (el.closest(INTERESTING) || el);
  };

  var send = function (type, el, e, extra) {
    m.s('interaction', Object.assign({
      interaction_type: type,
      element_selector: el ? selector(el) : null,
      element_text: el && type != 'copy' ? text(el) : null,
      element_position: e && e.pageX != null ? { x: Math.round(e.pageX), y: Math.round(e.pageY) } : null,
    }, extra));
  };

  var recent = [];
  d.addEventListener(
    'click',
    function (e) {
      var el = target(e);
      if (!el) return;
      send('click', el, e);
      var t = Date.now();
      recent = recent.filter(function (c) {
        return t - c.t < 1000 && Math.abs(c.x - e.clientX) <= 30 && Math.abs(c.y - e.clientY) <= 30;
      });
      recent.push({ t: t, x: e.clientX, y: e.clientY });
      if (recent.length >= 3) {
        recent = [];
        m.c.rage_clicks++;
        send('rage_click', el, e, { props: { clicks: 3 } });
      }
    },
    true
  );

  d.addEventListener(
    'copy',
    function () {
      var sel = d.getSelection && d.getSelection();
      var node = sel && sel.anchorNode;
      m.c.copy_events++;
      send('copy', node && (node.nodeType == 1 ? node : node.parentElement), null);
    },
    true
  );
})(document, window.footfall && window.footfall.m);
