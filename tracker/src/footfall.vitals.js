// Footfall vitals module: Core Web Vitals and load timings, one `vitals` event when the page is
// hidden (the values are final then; a later one supersedes it) and before an SPA navigation.
// SPA pages report what applies to them: CLS, INP, FID and the resources loaded since navigating.
((w, m) => {
  if (!m || !w.PerformanceObserver) return;
  const perf = w.performance;
  const ms = (v) => (v == null ? undefined : Math.round(v));
  const observe = (type, fn, opts) => {
    try {
      new PerformanceObserver((list) => list.getEntries().forEach(fn)).observe({ type, buffered: true, ...opts });
    } catch {} // entry type not supported by this browser
  };

  let soft = 0; // 0 on the page the browser loaded, 1 on SPA pages
  let fp, fcp, lcp, fid, inp, cls, win, winStart, winLast;
  let resStart = 0;
  const resetSoft = () => {
    fid = inp = undefined;
    cls = win = winStart = winLast = 0;
  };
  resetSoft();

  observe('paint', (e) => {
    if (e.name == 'first-paint') fp = e.startTime;
    if (e.name == 'first-contentful-paint') fcp = e.startTime;
  });
  observe('largest-contentful-paint', (e) => (lcp = e.renderTime || e.startTime));
  observe('first-input', (e) => {
    fid = e.processingStart - e.startTime;
    inp = Math.max(inp || 0, e.duration);
  });
  // INP, approximated as the longest interaction (Event Timing entries that have an interactionId).
  observe('event', (e) => e.interactionId && (inp = Math.max(inp || 0, e.duration)), { durationThreshold: 16 });
  // CLS: the largest session window (shifts < 1 s apart, window <= 5 s), input-caused shifts excluded.
  observe('layout-shift', (e) => {
    if (e.hadRecentInput) return;
    if (winLast && e.startTime - winLast < 1000 && e.startTime - winStart < 5000) win += e.value;
    else {
      win = e.value;
      winStart = e.startTime;
    }
    winLast = e.startTime;
    cls = Math.max(cls, win);
  });

  const report = () => {
    const res = perf.getEntriesByType('resource').filter((r) => r.startTime >= resStart);
    const v = {
      cumulative_layout_shift: Math.round(cls * 1e4) / 1e4,
      interaction_to_next_paint_ms: ms(inp),
      first_input_delay_ms: ms(fid),
      resource_count: res.length,
      transfer_size_bytes: res.reduce((sum, r) => sum + (r.transferSize || 0), 0),
    };
    if (!soft) {
      const n = perf.getEntriesByType('navigation')[0];
      if (n) {
        v.time_to_first_byte_ms = ms(Math.max(n.responseStart - (n.activationStart || 0), 0));
        v.dom_content_loaded_ms = ms(n.domContentLoadedEventEnd || undefined);
        v.page_load_ms = ms(n.loadEventEnd || undefined);
        v.transfer_size_bytes += n.transferSize || 0;
      }
      v.first_paint_ms = ms(fp);
      v.first_contentful_paint_ms = ms(fcp);
      v.largest_contentful_paint_ms = ms(lcp);
    }
    m.s('vitals', v);
  };

  m.h.push((isNav) => {
    report();
    if (isNav) {
      soft = 1;
      resetSoft();
      resStart = perf.now();
    }
  });
})(window, window.footfall?.m);
