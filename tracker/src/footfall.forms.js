// Footfall forms module: start, submit, abandon and validation errors per <form>, with the time
// spent in each field. Field VALUES never leave the page: a value is only tested for emptiness
// (fields_completed is a count), and an error message is "<field>: <validity flag>", never the
// browser's validationMessage (which can quote the value).
((d, m) => {
  if (!m) return;
  const now = () => Date.now();
  let forms = [];
  let pageStart = now();
  // Cuts text to at most n UTF-8 bytes (the server refuses longer values, it does not cut them).
  const clip = (s, n) => {
    s = ('' + s).slice(0, n);
    while (new TextEncoder().encode(s).length > n) s = s.slice(0, -1);
    return s;
  };

  const fieldsOf = (form) =>
    [...form.elements].filter(
      (el) => !/^(hidden|submit|button|reset|image|fieldset|object|output)$/.test(el.type || el.tagName.toLowerCase())
    );
  const fieldName = (el) => el.name || el.id || el.type || el.tagName.toLowerCase();
  const filled = (el) => (/^(checkbox|radio)$/.test(el.type) ? el.checked : el.value != ''); // emptiness only

  const send = (s, form_event, extra, urgent) => {
    const form = s.form;
    const els = fieldsOf(form);
    const names = new Set(els.map(fieldName));
    const completed = new Set(els.filter(filled).map(fieldName));
    m.s(
      'form',
      {
        form_event,
        form_id: form.id ? clip(form.id, 255) : undefined,
        form_name: form.getAttribute('name') ? clip(form.getAttribute('name'), 255) : undefined,
        fields_total: names.size,
        fields_interacted: s.fields.size,
        fields_completed: completed.size,
        field_interactions: form_event == 'start' ? undefined : [...s.fields.values()].slice(0, 200),
        ...extra,
      },
      urgent
    );
  };

  // The state of a form (created, with a `start` event, on the first focus or input in it).
  const state = (form) => {
    if (!form) return;
    let s = forms.find((s) => s.form == form);
    if (!s) {
      forms.push((s = { form, t: now(), fields: new Map(), done: 0 }));
      send(s, 'start', { time_to_first_field_ms: s.t - pageStart });
    }
    return s;
  };
  // The state and the field record of a form field event target, if it is a tracked field.
  const field = (el) => {
    if (!el.form || !fieldsOf(el.form).includes(el)) return [];
    const s = state(el.form);
    const n = fieldName(el);
    if (!s.fields.has(n)) s.fields.set(n, { field_name: n, time_spent_ms: 0, changes_count: 0 });
    return [s, s.fields.get(n)];
  };

  let focused; // [field record, focus time]
  const blur = () => {
    if (focused) focused[0].time_spent_ms += now() - focused[1];
    focused = 0;
  };

  const listen = (type, fn) => d.addEventListener(type, fn, true);
  listen('focusin', (e) => {
    const [, f] = field(e.target);
    blur();
    if (f) focused = [f, now()];
  });
  listen('focusout', blur);
  listen('input', (e) => field(e.target)); // autofill or scripted input without focus still starts the form
  listen('change', (e) => {
    const [, f] = field(e.target);
    if (f) f.changes_count++;
  });

  // Why a field is invalid, as the name of its ValidityState flag (valueMissing, typeMismatch, ...).
  // Not validationMessage: Chrome quotes the typed value in it ("'abc' is missing an '@'").
  const REASONS = ['valueMissing', 'typeMismatch', 'patternMismatch', 'tooLong', 'tooShort', 'rangeUnderflow', 'rangeOverflow', 'stepMismatch', 'badInput', 'customError'];
  const reason = (v) => REASONS.find((r) => v?.[r]) || 'invalid';

  // `invalid` fires once per invalid field on a submit attempt: one `error` event per form and attempt.
  let invalid = [];
  listen('invalid', (e) => {
    const [s] = field(e.target);
    if (!s) return;
    if (!invalid.length)
      setTimeout(() => {
        const all = invalid;
        invalid = [];
        forms.forEach((s) => {
          const msgs = all.filter((x) => x[0] == s).map((x) => x[1]);
          if (msgs.length) send(s, 'error', { error_messages: msgs.slice(0, 50) });
        });
      });
    invalid.push([s, `${fieldName(e.target)}: ${reason(e.target.validity)}`]);
  });

  listen('submit', (e) => {
    const s = state(e.target);
    if (!s) return;
    blur();
    s.done = 1;
    send(s, 'submit', { time_to_submit_ms: now() - s.t }, 1); // urgent: the page may be leaving
  });

  // Leaving (hidden, or an SPA navigation) with a started form not submitted: abandoned.
  m.h.push((isNav) => {
    blur();
    forms.forEach((s) => {
      if (!s.done) {
        s.done = 1;
        send(s, 'abandon');
      }
    });
    if (isNav) {
      forms = [];
      pageStart = now();
    }
  });
})(document, window.footfall?.m);
