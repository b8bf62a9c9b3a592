// Footfall errors module: uncaught errors, unhandled promise rejections, failed fetch / XHR
// (network failure or HTTP status >= 500). At most 10 reports per page; the same error (type,
// message and place) is reported once per page.
((w, m) => {
  if (!m) return;
  const MAX = 10;
  const me = document.currentScript?.src;
  let seen, count;
  const reset = () => {
    seen = new Set();
    count = 0;
  };
  reset();
  m.p.push(reset);
  // Cuts text to at most n UTF-8 bytes (the server refuses longer values, it does not cut them).
  const clip = (s, n) => {
    s = ('' + s).slice(0, n);
    while (new TextEncoder().encode(s).length > n) s = s.slice(0, -1);
    return s;
  };

  const report = (type, message, stack, file, line, col) => {
    message = clip(message || 'unknown error', 4096);
    const key = [type, message, file, line, col].join();
    if (seen.has(key) || count >= MAX) return;
    seen.add(key);
    count++;
    m.s('error', {
      error_type: type,
      error_message: message,
      error_stack: stack ? clip(stack, 16384) : undefined,
      source_file: file ? clip(file, 8192) : undefined,
      line_number: line || undefined,
      column_number: col || undefined,
    });
  };

  // The first stack frame outside this module: [file, line, column, stack from there].
  const caller = (stack) => {
    const lines = ('' + (stack || '')).split('\n');
    for (let i = 0; i < lines.length; i++) {
      const f = /(https?:\/\/[^\s()]+?):(\d+):(\d+)/.exec(lines[i]);
      if (f && f[1] != me) return [f[1], +f[2], +f[3], lines.slice(i).join('\n')];
    }
    return [];
  };

  w.addEventListener('error', (e) => {
    // Only script errors: failed <img>/<script> loads do not bubble to window (capture would see them).
    const err = e.error;
    report('javascript', e.message || err?.message, err?.stack, e.filename, e.lineno, e.colno);
  });

  w.addEventListener('unhandledrejection', (e) => {
    const r = e.reason;
    let msg = r?.message ?? r;
    if (typeof msg != 'string') {
      try {
        msg = JSON.stringify(msg);
      } catch {
        msg = '' + msg;
      }
    }
    const at = caller(r?.stack);
    report('unhandledrejection', msg, r?.stack, at[0], at[1], at[2]);
  });

  const network = (method, url, status, stack) => {
    const at = caller(stack);
    try {
      url = new URL(url, location.href).href;
    } catch {}
    report('network', `${(method || 'GET').toUpperCase()} ${url} \u2192 ${status}`, at[3], at[0], at[1], at[2]);
  };

  const origFetch = w.fetch;
  if (origFetch)
    w.fetch = function (input, init) {
      const stack = new Error().stack;
      const method = init?.method || input?.method || 'GET';
      const url = '' + (input?.url || input);
      return origFetch.apply(this, arguments).then(
        (res) => {
          if (res.status >= 500) network(method, url, res.status, stack);
          return res;
        },
        (err) => {
          if (err?.name != 'AbortError') network(method, url, 'network error', stack);
          throw err;
        }
      );
    };

  const X = w.XMLHttpRequest?.prototype;
  if (X) {
    const open = X.open;
    const send = X.send;
    X.open = function (method, url) {
      this.__footfall = [method, '' + url];
      return open.apply(this, arguments);
    };
    X.send = function () {
      let req = this.__footfall;
      const stack = new Error().stack;
      if (req) {
        this.addEventListener('abort', () => (req = 0));
        this.addEventListener('loadend', () => {
          if (req && (this.status >= 500 || this.status == 0))
            network(req[0], req[1], this.status || 'network error', stack);
        });
      }
      return send.apply(this, arguments);
    };
  }
})(window, window.footfall?.m);
