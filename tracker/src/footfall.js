// Footfall core tracker. Wire format: docs/tracker.md and the protocol spec §1–2.
// Kept deliberately small (≤ 1.5 KB gzipped): everything optional lives in modules.
((w, d) => {
  const nav = navigator;
  const loc = location;
  const script = d.currentScript;
  const cfg = script.dataset; // data-* attributes of this <script>
  const now = () => Date.now();
  const on = (target, types, fn, capture) =>
    types.split(' ').map((t) => target.addEventListener(t, fn, capture));
  const origFetch = fetch;
  const api = cfg.api || new URL('/api/event', script.src).href;
  const domain = cfg.domain || loc.hostname;
  const hashMode = 'hash' in cfg;
  const download = RegExp(
    `\\.(${(cfg.fileExtensions || 'pdf|docx?|xlsx?|pptx?|csv|zip|gz|7z|dmg|exe|mp[34]').replace(/,/g, '|')})$`,
    'i'
  );
  let dims = cfg.dimensions && JSON.parse(cfg.dimensions);

  // Privacy switches, evaluated on every send: setting the opt-out flag stops tracking at once.
  const off =
    ('respectDnt' in cfg && (nav.doNotTrack == 1 || nav.globalPrivacyControl)) ||
    (!('allowLocalhost' in cfg) && /^(localhost|127\.|\[::1|$)/.test(loc.hostname));
  const blocked = () => {
    try {
      return off || w.footfall_ignore || localStorage.footfall_ignore == 'true';
    } catch {} // storage refused (sandboxed frame): no flag can have been set there
  };

  let queue = [];
  let timer;
  // Sends the queue as one JSON array (undefined fields left out). A string body goes as text/plain:
  // a CORS-simple request, no preflight. A pending timer later finds the queue empty.
  const flush = (beacon, body = JSON.stringify(queue)) => {
    timer = 0;
    queue[0] && ((beacon && nav.sendBeacon(api, body)) || origFetch(api, { method: 'POST', body, keepalive: 1 }).catch(() => {}));
    queue = [];
  };

  // The module API (window.footfall.m): modules send through it and hook into the page's life.
  const m = {
    a: cfg, // the core <script>'s dataset: data-* attributes
    h: [], // hide hooks: fn(isNavigation), called before the page's events are flushed
    p: [], // new-page hooks: fn(), called after each pageview (SPA pageviews too)
    q: [], // calls of module commands made before the module loaded
    x: {}, // fields added to custom events (experiments module)
    // send(type, fields, urgent): urgent events leave now, others within 3 s or at page hide
    s(type, fields, urgent) {
      if (blocked()) return;
      // d, u: Plausible's short names for domain and url (the spec accepts both)
      queue.push({ type, d: domain, u: m.url, page_id: m.id, ...fields });
      urgent ? flush() : (timer ||= setTimeout(flush, 3000));
    },
  };

  let start, lastInput, active, scroll;
  let referrer = d.referrer; // the first pageview's only (the server ignores an empty one)
  const pageUrl = () => (hashMode ? loc.href : loc.href.split('#')[0]);
  // Active time: each input counts until the next one, at most 30 s (idle after that); hidden never counts.
  // Scroll depth: the deepest point of the page seen so far, in % of its height.
  const activity = () => {
    const t = now();
    if (lastInput) active += Math.min(t - lastInput, 30000);
    lastInput = !d.hidden && t;
    scroll = Math.max(
      scroll,
      Math.min(100, Math.round((100 * (scrollY + innerHeight)) / d.documentElement.scrollHeight))
    );
  };

  // End of a page (hidden, or left by SPA navigation): modules report, then cumulative engagement.
  const endPage = (isNav) => {
    activity();
    m.h.map((fn) => fn(isNav));
    const t = now() - start;
    m.s(
      'engagement',
      { time_on_page_ms: t, active_time_ms: active, idle_time_ms: t - active, scroll_percentage: scroll, ...m.c }
    );
    flush(1);
  };

  const pageview = () => {
    m.id = (crypto.getRandomValues(new BigUint64Array(1))[0] >> 2n).toString(36).padStart(12, 0);
    m.url = pageUrl();
    m.c = { click_count: 0 }; // the interactions module adds rage_clicks and copy_events
    start = now();
    lastInput = active = scroll = 0;
    activity();
    m.s(
      'pageview',
      {
        referrer,
        title: d.title,
        screen_width: screen.width,
        screen_height: screen.height,
        viewport_width: innerWidth,
        viewport_height: innerHeight,
        language: nav.language,
        timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
        dimensions: dims,
      },
      1
    );
    referrer = '';
    m.p.map((fn) => fn());
  };

  const navigated = () => {
    if (pageUrl() != m.url) {
      endPage(1);
      pageview();
    }
  };

  const footfall = function (cmd, a, b) {
    if (cmd == 'event') m.s(cmd, { name: a, ...b, ...m.x }, 1); // b: {props, revenue, interactive}
    else if (cmd == 'dimensions') dims = { ...dims, ...a };
    // Other commands belong to modules, which wrap window.footfall; calls made before a module
    // loaded wait in m.q for it.
    else m.q.push(arguments);
  };
  footfall.m = m;

  const early = w.footfall?.q || [];
  w.footfall = footfall;
  // `dimensions` queued before load apply to the first pageview; every other call follows it.
  const replay = (dimsFirst) => early.map((args) => (args[0] == 'dimensions') == dimsFirst && footfall(...args));
  replay(1);
  pageview();
  replay(0);

  // SPA navigation.
  const hist = history;
  ['pushState', 'replaceState'].map(
    // (map passes 3 arguments: `orig` is a local defaulted from the method being patched)
    (fn, i, all, orig = hist[fn]) => (hist[fn] = (...args) => ((args = orig.apply(hist, args)), navigated(), args))
  );
  on(w, 'popstate hashchange', navigated); // a hash change is a new page only with data-hash

  // Engagement.
  on(d, 'keydown mousemove touchstart scroll', activity);
  // Every current browser fires visibilitychange→hidden on tab switch, minimise and unload alike.
  on(d, 'visibilitychange', () => (d.hidden ? endPage(0) : activity())); // visible again: active from now

  // Clicks: count, file downloads (any host), outbound links.
  on(
    d,
    'click',
    (e, a = e.target.closest('a[href]'), name) =>
      ++m.c.click_count &&
      a &&
      /^http/.test(a.protocol) &&
      (name = download.test(a.pathname) ? 'File Download' : a.host != loc.host && 'Outbound Link: Click') &&
      footfall('event', name, { props: { url: a.href } }),
    true
  );

  // Modules, from the core's own directory: data-modules="vitals,errors,...".
  cfg.modules
    ?.split(/\W+/)
    .map(
      (name) =>
        name && script.after(Object.assign(d.createElement('script'), { src: script.src.replace(/\.js/, `.${name}.js`) }))
    );
})(window, document);
