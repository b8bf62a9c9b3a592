// Footfall errors module: uncaught errors, unhandled rejections, failed fetch / XHR.
// At most 10 reports per page; the same error (type + message + place) is reported once per page.
(function (w, m) {
  if (!m) return;
  var MAX = 10;
  var seen, count;
  var reset = function () {
    seen = {};
    count = 0;
  };
  reset();
  m.p.push(reset);
  var me = document.currentScript && document.currentScript.src;

  var report = function (type, message, stack, file, line, col) {
    message = String(message || 'unknown error').slice(0, 1000);
    var key = type + message + file + line + col;
    if (seen[key] || count >= MAX) return;
    seen[key] = 1;
    count++;
    m.s('error', {
      error_type: type,
      error_message: message,
      error_stack: stack ? String(stack).slice(0, 4000) : null,
      source_file: file || null,
      line_number: line || null,
      column_number: col || null,
    });
  };

  // The first stack frame outside this module: where the failing request was made.
  var caller = function (stack) {
    var lines = (stack || '').split('\n');
    for (var i = 0; i < lines.length; i++) {
      var f = /(https?:\/\/[^\s()]+?):(\d+):(\d+)/.exec(lines[i]);
      if (f && f[1] != me) return [f[1], +f[2], +f[3], lines.slice(i).join('\n')];
    }
    return [];
  };

  w.addEventListener('error', function (e) {
    // Resource load errors (img, script) reach window listeners only in capture; this one is bubble.
    var err = e.error;
    report('javascript', e.message || (err && err.message), err && err.stack, e.filename, e.lineno, e.colno);
  });

  w.addEventListener('unhandledrejection', function (e) {
    var r = e.reason;
    var msg = r && r.message != null ? r.message : typeof r == 'string' ? r : JSON.stringify(r);
    var at = caller(r && r.stack);
    report('unhandledrejection', msg, r && r.stack, at[0], at[1], at[2]);
  });

  var network = function (method, url, status, stack) {
    var at = caller(stack);
    try {
      url = new URL(url, location.href).href;
    } catch (e) {}
    report('network', (method || 'GET').toUpperCase() + ' ' + url + ' \u2192 ' + status, at[3], at[0], at[1], at[2]);
  };

  var origFetch = w.fetch;
  if (origFetch)
    w.fetch = function (input, init) {
      var stack = new Error().stack;
      var method = (init && init.method) || (input && input.method) || 'GET';
      var url = String((input && input.url) || input);
      return origFetch.apply(this, arguments).then(
        function (res) {
          if (res.status >= 500) network(method, url, res.status, stack);
          return res;
        },
        function (err) {
          if (!(err && err.name == 'AbortError')) network(method, url, 'network error', stack);
          throw err;
        }
      );
    };

  var X = w.XMLHttpRequest && w.XMLHttpRequest.prototype;
  if (X) {
    var open = X.open;
    var send = X.send;
    X.open = function (method, url) {
      this._ff = [method, String(url)];
      return open.apply(this, arguments);
    };
    X.send = function () {
      var xhr = this;
      var req = xhr._ff;
      var stack = new Error().stack;
      if (req) {
        xhr.addEventListener('abort', function () {
          req = 0;
        });
        xhr.addEventListener('loadend', function () {
          if (!req) return;
          if (xhr.status >= 500 || (xhr.status == 0 && xhr.readyState == 4))
            network(req[0], req[1], xhr.status || 'network error', stack);
        });
      }
      return send.apply(this, arguments);
    };
  }
})(window, window.footfall && window.footfall.m);
