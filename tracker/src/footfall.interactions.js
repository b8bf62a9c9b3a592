// Footfall interactions module: clicks (stable CSS selector, visible text, page position), rage
// clicks (>= 3 clicks within 1 s and 30 px) and copy events (never the copied text). They are
// batched with the page's other events (sent within 3 s or when the page is hidden) and counted
// into the page's engagement (rage_clicks, copy_events).
((d, m) => {
  if (!m) return;
  const FIELDS = 'input,textarea,select,[contenteditable]';
  const TARGETS = 'a,button,input,select,textarea,label,summary,[role=button],[role=link],[role=tab],[role=menuitem],[onclick],[data-testid]';
  const esc = (s) => CSS.escape(s);
  // Cuts text to at most n UTF-8 bytes (the server refuses longer values, it does not cut them).
  const clip = (s, n) => {
    s = ('' + s).slice(0, n);
    while (new TextEncoder().encode(s).length > n) s = s.slice(0, -1);
    return s;
  };
  // Generated-looking classes are left out: long digit runs, CSS-in-JS prefixes, state classes.
  const stableClass = (c) =>
    !/\d{3}|^(css|sc|jsx|svelte|emotion)-|[_-][a-z]*\d[a-z\d]*$|^(is|has)-|active|hover|focus|open|selected|visible/i.test(c);

  // A CSS selector of at most 5 levels, stopping at the nearest element with a stable id.
  const selector = (el) => {
    const parts = [];
    for (let depth = 0; el?.nodeType == 1 && depth < 5; depth++, el = el.parentElement) {
      if (el.id && !/\d{3}/.test(el.id)) {
        parts.unshift('#' + esc(el.id));
        break;
      }
      const tag = el.tagName.toLowerCase();
      let s = tag;
      const key = ['data-testid', 'name', 'aria-label'].find((a) => el.getAttribute(a));
      if (key) s += `[${key}="${el.getAttribute(key).replace(/["\\]/g, '\\$&')}"]`;
      else {
        const cls = [...el.classList].filter(stableClass).slice(0, 2);
        if (cls.length) s += '.' + cls.map(esc).join('.');
        const parent = el.parentElement;
        if (parent && tag != 'body' && tag != 'html') {
          const same = [...parent.children].filter((c) => c.tagName == el.tagName);
          if (same.length > 1) s += `:nth-of-type(${same.indexOf(el) + 1})`;
        }
      }
      parts.unshift(s);
      if (tag == 'body') break;
    }
    return clip(parts.join(' > '), 500);
  };

  // Visible text of an element, never from form fields or editable content (that is user input).
  const text = (el) => {
    if (el.closest(FIELDS) || el.isContentEditable || el.querySelector(FIELDS)) return;
    const t = (el.innerText || el.textContent || '').replace(/\s+/g, ' ').trim();
    return t ? t.slice(0, 100) : undefined;
  };

  const send = (type, el, e, props) =>
    m.s('interaction', {
      interaction_type: type,
      element_selector: el ? selector(el) : undefined,
      element_text: el && type != 'copy' ? text(el) : undefined,
      element_position: e ? { x: Math.round(e.pageX), y: Math.round(e.pageY) } : undefined,
      props,
    });

  const counters = () => {
    m.c.rage_clicks = m.c.copy_events = 0;
  };
  counters();
  m.p.push(counters);

  let recent = [];
  d.addEventListener(
    'click',
    (e) => {
      let el = e.target;
      if (el?.nodeType != 1) el = el?.parentElement;
      if (!el) return;
      el = el.closest(TARGETS) || el;
      send('click', el, e);
      const t = Date.now();
      recent = recent.filter((c) => t - c.t < 1000 && Math.abs(c.x - e.clientX) <= 30 && Math.abs(c.y - e.clientY) <= 30);
      recent.push({ t, x: e.clientX, y: e.clientY });
      if (recent.length >= 3) {
        recent = [];
        m.c.rage_clicks++;
        send('rage_click', el, e, { clicks: 3 });
      }
    },
    true
  );

  d.addEventListener(
    'copy',
    (e) => {
      m.c.copy_events++;
      let el = d.getSelection()?.anchorNode || e.target;
      if (el?.nodeType != 1) el = el?.parentElement;
      send('copy', el);
    },
    true
  );
})(document, window.footfall?.m);
