// Footfall core tracker. Wire format: docs/tracker.md and the protocol spec §1–2.
// Kept deliberately small (≤ 1.5 KB gzipped): everything optional lives in modules.
((w, d) => {
  const nav = w.navigator;
  const loc = w.location;
  const script = d.currentScript;
  const attr = (n) => script.getAttribute('data-' + n);
  const has = (n) => attr(n) != null;
  const now = () => Date.now();
  const on = (target, types, fn, capture) =>
    types.split(' ').forEach((t) => target.addEventListener(t, fn, capture || { passive: 1 }));
  const origFetch = w.fetch;
  const api = attr('api') || new URL('/api/event', script.src).href;
  const domain = attr('domain') || loc.hostname;
  const hashMode = has('hash');
  const download = RegExp(
    `\\.(${(attr('file-extensions') || 'pdf|docx?|xlsx?|pptx?|csv|txt|zip|rar|7z|gz|dmg|exe|msi|apk|mp[34]|mov').replace(/,/g, '|')})$`,
    'i'
  );
  let dims = JSON.parse(attr('dimensions'));

  // Privacy switches, evaluated on every send: setting the opt-out flag stops tracking at once.
  const off =
    (has('respect-dnt') && (nav.doNotTrack == '1' || nav.globalPrivacyControl)) ||
    (!has('allow-localhost') && /^(localhost|127\.|\[::1\]|$)/.test(loc.hostname));
  const blocked = () => {
    try {
      return off || w.footfall_ignore || localStorage.footfall_ignore == 'true';
    } catch {
      return 1; // storage access refused (sandboxed frame): the flag can't be read, stay silent
    }
  };

  let queue = [];
  let timer;
  const flush = (beacon) => {
    timer = 0; // a pending timer then finds the queue empty
    if (!queue.length) return;
    // null fields are left out
    const body = JSON.stringify(queue[1] ? queue : queue[0], (k, v) => v ?? undefined);
    queue = [];
    (beacon && nav.sendBeacon(api, body)) ||
      // A string body is sent as text/plain: a CORS-simple request, no preflight.
      origFetch(api, { method: 'POST', body, keepalive: true }).catch(() => {});
  };

  // The module API (window.footfall.m): modules send through it and hook into the page's life.
  const m = {
    a: attr, // read a data-* attribute of the core <script>
    h: [], // hide hooks: fn(isNavigation), called before the page's events are flushed
    p: [], // new-page hooks: fn(), called after each pageview (SPA pageviews too)
    q: [], // calls of module commands made before the module loaded
    // send(type, fields, urgent): urgent events leave now, others within 3 s or at page hide
    s(type, fields, urgent) {
      if (blocked()) return;
      // d, u: Plausible's short names for domain and url (the spec accepts both)
      queue.push({ type, d: domain, u: m.url, page_id: m.id, ...fields });
      urgent ? flush() : (timer ||= setTimeout(flush, 3000));
    },
  };

  let start, lastInput, active, scroll;
  let referrer = d.referrer || null; // the first pageview's only
  const pageUrl = () => (hashMode ? loc.href : loc.href.split('#')[0]);
  // Active time: each input counts until the next one, at most 30 s (idle after that); hidden never counts.
  // Scroll depth: the deepest point of the page seen so far, in % of its height.
  const activity = () => {
    const t = now();
    if (lastInput) active += Math.min(t - lastInput, 30000);
    lastInput = !d.hidden && t;
    scroll = Math.max(
      scroll,
      Math.min(100, Math.round(((w.scrollY + w.innerHeight) / d.documentElement.scrollHeight) * 100))
    );
  };

  // End of a page (hidden, or left by SPA navigation): modules report, then cumulative engagement.
  const endPage = (isNav) => {
    activity();
    m.h.forEach((fn) => fn(isNav));
    const t = now() - start;
    m.s(
      'engagement',
      { time_on_page_ms: t, active_time_ms: active, idle_time_ms: t - active, scroll_percentage: scroll, ...m.c }
    );
    flush(1);
  };

  const pageview = () => {
    m.id = crypto.getRandomValues(new BigUint64Array(1))[0].toString(16).padStart(16, 0);
    m.url = pageUrl();
    m.c = { click_count: 0 }; // the interactions module adds rage_clicks and copy_events
    m.x = {};
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
        viewport_width: w.innerWidth,
        viewport_height: w.innerHeight,
        language: nav.language,
        timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
        dimensions: dims,
      },
      1
    );
    referrer = null;
    m.p.forEach((fn) => fn());
  };

  const navigated = () => {
    if (pageUrl() != m.url) {
      endPage(1);
      pageview();
    }
  };

  const footfall = function (cmd, a, b) {
    if (cmd == 'event') m.s('event', { name: a, ...b, ...m.x }, 1); // b: {props, revenue, interactive}
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
  const hist = w.history;
  ['pushState', 'replaceState'].forEach((fn) => {
    const orig = hist[fn];
    hist[fn] = (...args) => ((args = orig.apply(hist, args)), navigated(), args);
  });
  on(w, hashMode ? 'popstate hashchange' : 'popstate', navigated);

  // Engagement.
  on(d, 'keydown mousemove touchstart scroll', activity);
  // Every current browser fires visibilitychange→hidden on tab switch, minimise and unload alike.
  on(d, 'visibilitychange', () => (d.hidden ? endPage(0) : (lastInput = now())));

  // Clicks: count, outbound links, file downloads.
  on(
    d,
    'click',
    (e) => {
      m.c.click_count++;
      const a = e.target.closest('a[href]');
      if (a && /^http/.test(a.protocol)) {
        const name =
          a.host != loc.host ? 'Outbound Link: Click' : download.test(a.pathname) ? 'File Download' : 0;
        if (name) footfall('event', name, { props: { url: a.href } });
      }
    },
    true
  );

  // Modules, from the core's own directory: data-modules="vitals,errors,...".
  attr('modules')
    ?.split(/\W+/)
    .map(
      (name) =>
        name && script.after(Object.assign(d.createElement('script'), { src: script.src.replace(/[^/]*$/, `footfall.${name}.js`) }))
    );
})(window, document);
