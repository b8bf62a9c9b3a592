// Footfall site-search module.
//   data-search-param="q"           the site's search query parameter (required)
//   data-search-results="CSS"       optional selector of result links: results_count, search_click
//   data-search-location="header"   optional, default "page"
(function (w, d, m) {
  if (!m) return;
  var param = m.a('search-param');
  if (!param) return;
  var results = m.a('search-results');
  var where = m.a('search-location') || 'page';
  var query; // query of the current page, if it is a search page

  var page = function () {
    query = new URL(location.href).searchParams.get(param);
    query = query && query.trim();
    if (!query) return;
    var id = m.id;
    var report = function () {
      if (m.id != id) return; // navigated away meanwhile
      m.s(
        'search',
        {
          search_query: query,
          results_count: results ? d.querySelectorAll(results).length : null,
          search_location: where,
        },
        1
      );
    };
    // Count results once the document is parsed (SPAs render them right after navigating).
    if (d.readyState == 'loading') d.addEventListener('DOMContentLoaded', report);
    else setTimeout(report, 0);
  };

  d.addEventListener(
    'click',
    function (e) {
      if (!query || !results || !e.target.closest) return;
      var list = Array.prototype.slice.call(d.querySelectorAll(results));
      for (var el = e.target; el; el = el.parentElement) {
        var pos = list.indexOf(el);
        if (pos >= 0) {
          var a = el.closest('a[href]') || el.querySelector('a[href]');
          m.s(
            'search_click',
            { search_query: query, clicked_position: pos + 1, clicked_url: a ? a.href : null },
            1
          );
          return;
        }
      }
    },
    true
  );

  m.p.push(page);
  page();
})(window, document, window.footfall && window.footfall.m);
