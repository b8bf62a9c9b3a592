// Footfall vitals module: Core Web Vitals and load timings, one `vitals` event when the page is
// hidden (values are final then) and before an SPA navigation. SPA pages report what applies to
// them: CLS, INP, FID and the resources loaded since the navigation.
(function (w, m) {
  if (!m || !w.PerformanceObserver) return;
  var perf = w.performance;
  var round = function (v) {
    return v == null ? null : Math.round(v);
  };
  var observe = function (type, fn, opts) {
    try {
      var o = new PerformanceObserver(function (list) {
        list.getEntries().forEach(fn);
      });
      o.observe(Object.assign({ type: type, buffered: true }, opts));
    } catch (e) {}
  };

  var soft = 0; // 0 on the page the browser loaded, 1 on SPA pages
  var fp, fcp, lcp, fid, inp, cls, win, winStart, winLast, resStart;
  var resetSoft = function () {
    fid = inp = null;
    cls = win = winLast = winStart = 0;
  };
  resetSoft();
  resStart = 0;

  observe('paint', function (e) {
    if (e.name == 'first-paint') fp = e.startTime;
    if (e.name == 'first-contentful-paint') fcp = e.startTime;
  });
  observe('largest-contentful-paint', function (e) {
    lcp = e.startTime;
  });
  observe('first-input', function (e) {
    fid = e.processingStart - e.startTime;
    inp = Math.max(inp || 0, e.duration);
  });
  // INP, approximated as the longest interaction (Event Timing entries with an interactionId).
  observe(
    'event',
    function (e) {
      if (e.interactionId) inp = Math.max(inp || 0, e.duration);
    },
    { durationThreshold: 16 }
  );
  // CLS: the largest session window (shifts < 1 s apart, window ≤ 5 s), ignoring input-caused shifts.
  observe('layout-shift', function (e) {
    if (e.hadRecentInput) return;
    if (winLast && e.startTime - winLast < 1000 && e.startTime - winStart < 5000) win += e.value;
    else {
      win = e.value;
      winStart = e.startTime;
    }
    winLast = e.startTime;
    cls = Math.max(cls, win);
  });

  var report = function () {
    var res = perf.getEntriesByType('resource').filter(function (r) {
      return r.startTime >= resStart;
    });
    var v = {
      cumulative_layout_shift: Math.round(cls * 10000) / 10000,
      interaction_to_next_paint_ms: round(inp),
      first_input_delay_ms: round(fid),
      resource_count: res.length,
      transfer_size_bytes: res.reduce(function (s, r) {
        return s + (r.transferSize || 0);
      }, 0),
    };
    if (!soft) {
      var n = perf.getEntriesByType('navigation')[0];
      if (n) {
        v.time_to_first_byte_ms = round(Math.max(n.responseStart - (n.activationStart || 0), 0));
        v.dom_content_loaded_ms = n.domContentLoadedEventEnd ? round(n.domContentLoadedEventEnd) : null;
        v.page_load_ms = n.loadEventEnd ? round(n.loadEventEnd) : null;
        v.transfer_size_bytes += n.transferSize || 0;
      }
      v.first_paint_ms = round(fp);
      v.first_contentful_paint_ms = round(fcp);
      v.largest_contentful_paint_ms = round(lcp);
    }
    m.s('vitals', v);
  };

  m.h.push(function (isNav) {
    report();
    if (isNav) {
      soft = 1;
      resetSoft();
      resStart = perf.now();
    }
  });
})(window, window.footfall && window.footfall.m);
