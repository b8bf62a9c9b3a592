// Footfall site-search module. Attributes on the core <script>:
//   data-search-param="q"           the site's search query parameter (required)
//   data-search-results="CSS"       optional selector of the result items/links: results_count and search_click
//   data-search-location="header"   optional, default "page"
((d, m) => {
  const param = m?.a.searchParam;
  if (!param) return;
  const results = m.a.searchResults;
  const where = m.a.searchLocation || 'page';
  let query; // the current page's search query, if it is a search page
  // Cuts text to at most n UTF-8 bytes (the server refuses longer values, it does not cut them).
  const clip = (s, n) => {
    s = ('' + s).slice(0, n);
    while (new TextEncoder().encode(s).length > n) s = s.slice(0, -1);
    return s;
  };

  const page = () => {
    query = new URL(location.href).searchParams.get(param)?.trim();
    query &&= clip(query, 500);
    if (!query) return;
    const id = m.id;
    const report = () =>
      // Results are counted once the document is parsed (an SPA renders them right after navigating).
      m.id == id &&
      m.s(
        'search',
        {
          search_query: query,
          results_count: results ? d.querySelectorAll(results).length : undefined,
          search_location: clip(where, 255),
        },
        1
      );
    if (d.readyState == 'loading') d.addEventListener('DOMContentLoaded', report);
    else setTimeout(report, 0);
  };

  d.addEventListener(
    'click',
    (e) => {
      if (!query || !results) return;
      const list = [...d.querySelectorAll(results)];
      for (let el = e.target; el; el = el.parentElement) {
        const pos = list.indexOf(el);
        if (pos >= 0) {
          const a = el.closest('a[href]') || el.querySelector('a[href]');
          // urgent: a result click usually navigates away
          return m.s('search_click', { search_query: query, clicked_position: pos + 1, clicked_url: a?.href }, 1);
        }
      }
    },
    true
  );

  m.p.push(page);
  page();
})(document, window.footfall?.m);
