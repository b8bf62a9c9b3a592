// Footfall experiments module: footfall('experiment', id, variant) records an exposure (type
// "experiment") and tags the page's later custom events with the same experiment_id / variant_id.
((w, core) => {
  const m = core?.m;
  if (!m) return;
  // Cuts text to at most n UTF-8 bytes (the server refuses longer values, it does not cut them).
  const clip = (s, n) => {
    s = ('' + s).slice(0, n);
    while (new TextEncoder().encode(s).length > n) s = s.slice(0, -1);
    return s;
  };
  const experiment = (id, variant) => {
    if (id == null || variant == null) return;
    const fields = { experiment_id: clip(id, 255), variant_id: clip(variant, 50) };
    m.s('experiment', fields, 1);
    Object.assign(m.x, fields);
  };
  // The assignment is remembered for the page it was made on.
  m.p.push(() => (m.x = {}));
  // Module commands: wrap window.footfall, then replay the calls the core kept for modules.
  w.footfall = Object.assign((cmd, a, b) => (cmd == 'experiment' ? experiment(a, b) : core(cmd, a, b)), core);
  m.q = m.q.filter((args) => args[0] != 'experiment' || experiment(args[1], args[2]));
})(window, window.footfall);
