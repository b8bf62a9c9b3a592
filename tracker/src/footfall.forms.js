// Footfall forms module: start, submit, abandon and validation errors per <form>, with time per
// field. Field VALUES never leave the page: a value is only tested for emptiness (fields_completed
// is a count), and error messages are the browser's validationMessage, which never quotes it.
(function (d, m) {
  if (!m) return;
  var forms = [];
  var pageStart = Date.now();
  var now = function () {
    return Date.now();
  };

  var fieldsOf = function (form) {
    return [].filter.call(form.elements, function (el) {
      return el.name !== undefined && !/^(hidden|submit|button|reset|image)$/.test(el.type) && el.tagName != 'FIELDSET' && el.tagName != 'OBJECT' && el.tagName != 'OUTPUT';
    });
  };
  var fieldName = function (el) {
    return el.name || el.id || el.type || el.tagName.toLowerCase();
  };
  var filled = function (el) {
    return /^(checkbox|radio)$/.test(el.type) ? el.checked : !!el.value;
  };

  var state = function (el, create) {
    var form = el && el.form;
    if (!form) return;
    for (var i = 0; i < forms.length; i++) if (forms[i].f == form) return forms[i];
    if (!create) return;
    var s = { f: form, t: now(), fields: {}, order: [], done: 0 };
    forms.push(s);
    send(s, 'start', { time_to_first_field_ms: s.t - pageStart });
    return s;
  };
  var field = function (s, el) {
    var n = fieldName(el);
    if (!s.fields[n]) {
      s.fields[n] = { field_name: n, time_spent_ms: 0, changes_count: 0 };
      s.order.push(n);
    }
    return s.fields[n];
  };

  var send = function (s, event, extra, urgent) {
    var form = s.f;
    var els = fieldsOf(form);
    var completed = {};
    els.forEach(function (el) {
      if (filled(el)) completed[fieldName(el)] = 1;
    });
    var names = {};
    els.forEach(function (el) {
      names[fieldName(el)] = 1;
    });
    m.s(
      'form',
      Object.assign(
        {
          form_event: event,
          form_id: form.id || null,
          form_name: form.getAttribute('name') || null,
          fields_total: Object.keys(names).length,
          fields_interacted: s.order.length,
          fields_completed: Object.keys(completed).length,
          field_interactions: event == 'start' ? null : s.order.map(function (n) {
            return s.fields[n];
          }),
        },
        extra
      ),
      urgent
    );
  };

  var focused; // [state, field record, focus time]
  var blur = function () {
    if (focused) {
      focused[1].time_spent_ms += now() - focused[2];
      focused = 0;
    }
  };

  d.addEventListener(
    'focusin',
    function (e) {
      var s = state(e.target, 1);
      if (!s || fieldsOf(s.f).indexOf(e.target) < 0) return;
      blur();
      focused = [s, field(s, e.target), now()];
    },
    true
  );
  d.addEventListener('focusout', blur, true);
  d.addEventListener(
    'input',
    function (e) {
      state(e.target, 1); // autofill or script input without focus still starts the form
    },
    true
  );
  d.addEventListener(
    'change',
    function (e) {
      var s = state(e.target, 1);
      if (s && fieldsOf(s.f).indexOf(e.target) >= 0) field(s, e.target).changes_count++;
    },
    true
  );

  var invalid = [];
  d.addEventListener(
    'invalid',
    function (e) {
      var s = state(e.target, 1);
      if (!s) return;
      if (!invalid.length)
        setTimeout(function () {
          var byForm = invalid;
          invalid = [];
          forms.forEach(function (s) {
            var msgs = byForm.filter(function (x) {
              return x[0] == s;
            }).map(function (x) {
              return x[1];
            });
            if (msgs.length) send(s, 'error', { error_messages: msgs });
          });
        }, 0);
      invalid.push([s, e.target.validationMessage || 'invalid']);
    },
    true
  );

  d.addEventListener(
    'submit',
    function (e) {
      var s = state({ form: e.target }, 1);
      if (!s) return;
      blur();
      s.done = 1;
      send(s, 'submit', { time_to_submit_ms: now() - s.t }, 1);
    },
    true
  );

  // Leaving (hidden or SPA navigation) with a started form not submitted: abandoned.
  m.h.push(function (isNav) {
    blur();
    forms.forEach(function (s) {
      if (!s.done) {
        s.done = 1;
        send(s, 'abandon', { time_to_submit_ms: null });
      }
    });
    if (isNav) {
      forms = [];
      pageStart = now();
    }
  });
})(document, window.footfall && window.footfall.m);
