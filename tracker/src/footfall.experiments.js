// Footfall experiments module: footfall('experiment', id, variant) records an exposure
// (type "experiment") and tags the page's later custom events with the same experiment/variant.
((w, core) => {
  const m = core?.m;
  if (!m) return;
  const experiment = (id, variant) => {
    if (id == null || variant == null) return;
    const fields = { experiment_id: '' + id, variant_id: '' + variant };
    m.s('experiment', fields, 1);
    // m.x is reset by the core on every new page: the assignment is remembered for this page.
    Object.assign(m.x, fields);
  };
  // Module commands: wrap window.footfall, then replay the calls the core kept for modules.
  w.footfall = Object.assign((cmd, a, b) => (cmd == 'experiment' ? experiment(a, b) : core(cmd, a, b)), core);
  m.q = m.q.filter((args) => args[0] != 'experiment' || experiment(args[1], args[2]));
})(window, window.footfall);
