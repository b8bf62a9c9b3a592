// Footfall experiments module: footfall('experiment', id, variant) records an exposure (type
// "experiment") and tags the page's later custom events with the same experiment_id / variant_id.
((w, core) => {
  const m = core?.m;
  if (!m) return;
  const experiment = (id, variant) => {
    if (id == null || variant == null) return;
    const fields = { experiment_id: '' + id, variant_id: '' + variant };
    m.s('experiment', fields, 1);
    Object.assign(m.x, fields);
  };
  // The assignment is remembered for the page it was made on.
  m.p.push(() => (m.x = {}));
  // Module commands: wrap window.footfall, then replay the calls the core kept for modules.
  w.footfall = Object.assign((cmd, a, b) => (cmd == 'experiment' ? experiment(a, b) : core(cmd, a, b)), core);
  m.q = m.q.filter((args) => args[0] != 'experiment' || experiment(args[1], args[2]));
})(window, window.footfall);
