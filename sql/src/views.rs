//! The brief's tables, as views over the append-only `events` log.
//!
//! Values that depend on later events (a page's engagement and vitals, exit pages, next paths,
//! occurrence counts, first/last seen) are computed here at query time. Each query registers only
//! the views it names (and the views those build on), so a plain `events` query pays nothing for
//! them. `docs/data-model.md` documents every column.

use datafusion::error::DataFusionError;
use datafusion::sql::parser::DFParser;
use datafusion::sql::resolve::resolve_table_references;

/// `(name, SQL)`, in dependency order: a view may only use views listed before it.
pub const VIEWS: &[(&str, &str)] = &[
    ("page_metrics", PAGE_METRICS),
    ("page_experiments", PAGE_EXPERIMENTS),
    ("all_pageviews", ALL_PAGEVIEWS),
    ("pageviews", "SELECT * FROM all_pageviews WHERE NOT is_bot AND NOT is_spam"),
    ("all_sessions", ALL_SESSIONS),
    ("sessions", "SELECT * FROM all_sessions WHERE NOT is_bot AND NOT is_spam"),
    ("user_paths", USER_PATHS),
    ("custom_events", CUSTOM_EVENTS),
    ("interactions", INTERACTIONS),
    ("error_occurrences", ERROR_OCCURRENCES),
    ("errors", ERRORS),
    ("form_interactions", FORM_INTERACTIONS),
    ("site_searches", SITE_SEARCHES),
    ("experiment_assignments", EXPERIMENT_ASSIGNMENTS),
];

/// Everything reported about one page view after it happened, keyed by `page_id`. Reports are
/// cumulative, so the largest value is the final one (LCP, CLS and INP only grow, too).
const PAGE_METRICS: &str = "
SELECT project_id, page_id,
  max(time_on_page_ms) AS time_on_page_ms,
  max(active_time_ms) AS active_time_ms,
  max(idle_time_ms) AS idle_time_ms,
  max(scroll_percentage) AS scroll_percentage,
  max(click_count) AS click_count,
  max(rage_clicks) AS rage_clicks,
  max(copy_events) AS copy_events,
  max(dom_content_loaded_ms) AS dom_content_loaded_ms,
  max(page_load_ms) AS page_load_ms,
  max(first_paint_ms) AS first_paint_ms,
  max(first_contentful_paint_ms) AS first_contentful_paint_ms,
  max(largest_contentful_paint_ms) AS largest_contentful_paint_ms,
  max(first_input_delay_ms) AS first_input_delay_ms,
  max(cumulative_layout_shift) AS cumulative_layout_shift,
  max(time_to_first_byte_ms) AS time_to_first_byte_ms,
  max(interaction_to_next_paint_ms) AS interaction_to_next_paint_ms,
  max(resource_count) AS resource_count,
  max(transfer_size_bytes) AS transfer_size_bytes,
  count(*) FILTER (WHERE event_type = 'error') AS error_count,
  count(*) FILTER (WHERE event_type IN ('engagement', 'interaction')) AS engagement_reports
FROM events
WHERE page_id IS NOT NULL AND event_type <> 'pageview'
GROUP BY project_id, page_id
";

/// The experiments each page view was exposed to, as two aligned arrays (the brief's
/// `experiment_ids[i]` ran `variant_ids[i]`).
const PAGE_EXPERIMENTS: &str = "
SELECT project_id, page_id,
  array_agg(experiment_id ORDER BY experiment_id, variant_id) AS experiment_ids,
  array_agg(variant_id ORDER BY experiment_id, variant_id) AS variant_ids
FROM (SELECT DISTINCT project_id, page_id, experiment_id, variant_id FROM events
      WHERE event_type = 'experiment' AND page_id IS NOT NULL)
GROUP BY project_id, page_id
";

/// Page views with the brief's columns. `is_bot` is the user-agent verdict or one of two
/// behavioural rules over the session: impossible navigation speed (5+ pages, under a second
/// each on average) or no engagement from a tracker that reports it (3+ pages, none with an
/// engagement or interaction report).
const ALL_PAGEVIEWS: &str = "
WITH joined AS (
  SELECT pv.*,
    CAST(pv.added_iso AS BIGINT) AS ts_ms,
    m.time_on_page_ms AS m_time_on_page_ms, m.active_time_ms AS m_active_time_ms,
    m.idle_time_ms AS m_idle_time_ms, m.scroll_percentage AS m_scroll_percentage,
    m.click_count AS m_click_count, m.rage_clicks AS m_rage_clicks, m.copy_events AS m_copy_events,
    m.dom_content_loaded_ms AS m_dom_content_loaded_ms, m.page_load_ms AS m_page_load_ms,
    m.first_paint_ms AS m_first_paint_ms, m.first_contentful_paint_ms AS m_first_contentful_paint_ms,
    m.largest_contentful_paint_ms AS m_largest_contentful_paint_ms,
    m.first_input_delay_ms AS m_first_input_delay_ms, m.cumulative_layout_shift AS m_cumulative_layout_shift,
    m.time_to_first_byte_ms AS m_time_to_first_byte_ms,
    m.interaction_to_next_paint_ms AS m_interaction_to_next_paint_ms,
    m.resource_count AS m_resource_count, m.transfer_size_bytes AS m_transfer_size_bytes,
    coalesce(m.error_count, 0) AS m_error_count, coalesce(m.engagement_reports, 0) AS m_engagement_reports,
    x.experiment_ids, x.variant_ids
  FROM events pv
  LEFT JOIN page_metrics m ON pv.project_id = m.project_id AND pv.page_id = m.page_id
  LEFT JOIN page_experiments x ON pv.project_id = x.project_id AND pv.page_id = x.page_id
  WHERE pv.event_type = 'pageview'
),
windowed AS (
  SELECT *,
    row_number() OVER (PARTITION BY project_id, session_id ORDER BY added_iso, event_id) AS seq,
    count(*) OVER (PARTITION BY project_id, session_id) AS session_pages,
    lead(ts_ms) OVER (PARTITION BY project_id, session_id ORDER BY added_iso, event_id) AS next_ts_ms,
    min(ts_ms) OVER (PARTITION BY project_id, session_id) AS session_first_ms,
    max(ts_ms) OVER (PARTITION BY project_id, session_id) AS session_last_ms,
    sum(m_engagement_reports) OVER (PARTITION BY project_id, session_id) AS session_engagement_reports,
    max(screen_width) OVER (PARTITION BY project_id, session_id) AS session_screen_width,
    bool_or(coalesce(is_spam, false)) OVER (PARTITION BY project_id, session_id) AS session_spam
  FROM joined
),
timed AS (
  SELECT *,
    coalesce(m_time_on_page_ms, time_on_page_ms, next_ts_ms - ts_ms) AS page_time_ms,
    coalesce(m_active_time_ms, active_time_ms) AS e_active, coalesce(m_scroll_percentage, scroll_percentage) AS e_scroll,
    coalesce(m_click_count, click_count) AS e_clicks, coalesce(m_copy_events, copy_events) AS e_copies,
    coalesce(m_rage_clicks, rage_clicks) AS e_rage,
    coalesce(m_cumulative_layout_shift, cumulative_layout_shift) AS e_cls,
    session_pages >= 5 AND session_last_ms - session_first_ms < (session_pages - 1) * 1000 AS too_fast,
    session_pages >= 3 AND session_screen_width IS NOT NULL AND session_engagement_reports = 0 AS never_engaged
  FROM windowed
)
SELECT
  page_id, project_id, session_id, visitor_id, added_iso, hostname, path, query_string, page_title,
  referrer, referrer_domain, referrer_category, utm_source, utm_medium, utm_campaign, utm_term, utm_content,
  country_code, region, city, language, timezone, device_type, browser_name, browser_version, os_name, os_version,
  screen_width, screen_height, viewport_width, viewport_height,
  coalesce(is_bot, false) OR too_fast OR never_engaged AS is_bot,
  CASE WHEN coalesce(is_bot, false) THEN bot_type WHEN too_fast OR never_engaged THEN 'automation' END AS bot_type,
  session_spam AS is_spam,
  page_time_ms AS time_on_page_ms,
  coalesce(m_scroll_percentage, scroll_percentage) AS scroll_percentage,
  coalesce(m_dom_content_loaded_ms, dom_content_loaded_ms) AS dom_content_loaded_ms,
  coalesce(m_page_load_ms, page_load_ms) AS page_load_ms,
  coalesce(m_first_paint_ms, first_paint_ms) AS first_paint_ms,
  coalesce(m_first_contentful_paint_ms, first_contentful_paint_ms) AS first_contentful_paint_ms,
  coalesce(m_largest_contentful_paint_ms, largest_contentful_paint_ms) AS largest_contentful_paint_ms,
  coalesce(m_first_input_delay_ms, first_input_delay_ms) AS first_input_delay_ms,
  -- The brief's DECIMAL(5,4) holds up to 9.9999; a larger shift (rare, but valid) is shown as that.
  CAST(CASE WHEN e_cls > 9.9999 THEN 9.9999 ELSE e_cls END AS DECIMAL(5, 4)) AS cumulative_layout_shift,
  coalesce(m_time_to_first_byte_ms, time_to_first_byte_ms) AS time_to_first_byte_ms,
  coalesce(m_interaction_to_next_paint_ms, interaction_to_next_paint_ms) AS interaction_to_next_paint_ms,
  coalesce(m_resource_count, resource_count) AS resource_count,
  coalesce(m_transfer_size_bytes, transfer_size_bytes) AS transfer_size_bytes,
  seq = 1 AS entry_page,
  seq = session_pages AS exit_page,
  CAST(session_pages AS INT) AS pages_in_session,
  session_last_ms - session_first_ms
    + coalesce(last_value(page_time_ms) OVER (PARTITION BY project_id, session_id ORDER BY added_iso, event_id
        ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING), 0) AS session_duration_ms,
  CAST(coalesce(m_click_count, click_count, 0) AS INT) AS click_count,
  coalesce(m_active_time_ms, active_time_ms) AS active_time_ms,
  coalesce(m_idle_time_ms, idle_time_ms) AS idle_time_ms,
  CAST(coalesce(m_rage_clicks, rage_clicks, 0) AS INT) AS rage_clicks,
  CAST(coalesce(m_copy_events, copy_events, 0) AS INT) AS copy_events,
  CASE WHEN e_active IS NULL AND e_scroll IS NULL AND e_clicks IS NULL THEN NULL
  ELSE CAST(greatest(0.0, least(100.0,
      40.0 * least(coalesce(e_active, 0) / 60000.0, 1.0)
    + 30.0 * coalesce(e_scroll, 0) / 100.0
    + 20.0 * least(coalesce(e_clicks, 0) / 5.0, 1.0)
    + 10.0 * least(coalesce(e_copies, 0), 1)
    - 10.0 * least(coalesce(e_rage, 0), 3))) AS DECIMAL(5, 2))
  END AS engagement_score,
  m_error_count > 0 AS had_errors,
  CAST(m_error_count AS INT) AS error_count,
  experiment_ids,
  variant_ids,
  custom_dimensions,
  spam_score,
  click_id_type,
  event_id
FROM timed
";

/// One row per session, from every event of it. Bot and spam verdicts hold for the whole session.
/// The events are reduced to one row per session before the page views' row joins them: joining
/// first carried every event of the project (ten times the page views) through the join.
const ALL_SESSIONS: &str = "
WITH pv AS (
  SELECT project_id, session_id,
    bool_or(is_bot) AS is_bot, bool_or(is_spam) AS is_spam,
    first_value(bot_type ORDER BY added_iso) AS bot_type,
    count(*) AS pageviews,
    first_value(path ORDER BY added_iso, event_id) AS entry_page,
    last_value(path ORDER BY added_iso, event_id) AS exit_page,
    max(session_duration_ms) AS duration_ms,
    sum(active_time_ms) AS active_time_ms,
    sum(error_count) AS error_count
  FROM all_pageviews
  GROUP BY project_id, session_id
),
ev AS (
  SELECT project_id, session_id,
    first_value(visitor_id ORDER BY added_iso) AS visitor_id,
    min(added_iso) AS started_at,
    max(added_iso) AS ended_at,
    count(*) FILTER (WHERE event_type = 'event') AS custom_events,
    count(*) FILTER (WHERE event_type = 'error') AS errors,
    first_value(hostname ORDER BY added_iso) AS hostname,
    first_value(referrer ORDER BY added_iso) AS referrer,
    first_value(referrer_domain ORDER BY added_iso) AS referrer_domain,
    first_value(referrer_category ORDER BY added_iso) AS referrer_category,
    first_value(utm_source ORDER BY added_iso) AS utm_source,
    first_value(utm_medium ORDER BY added_iso) AS utm_medium,
    first_value(utm_campaign ORDER BY added_iso) AS utm_campaign,
    first_value(click_id_type ORDER BY added_iso) AS click_id_type,
    first_value(country_code ORDER BY added_iso) AS country_code,
    first_value(region ORDER BY added_iso) AS region,
    first_value(city ORDER BY added_iso) AS city,
    first_value(language ORDER BY added_iso) AS language,
    first_value(device_type ORDER BY added_iso) AS device_type,
    first_value(browser_name ORDER BY added_iso) AS browser_name,
    first_value(os_name ORDER BY added_iso) AS os_name,
    min(revenue_currency) AS min_currency,
    max(revenue_currency) AS max_currency,
    sum(revenue_amount) AS revenue_sum,
    bool_or(is_bot) AS is_bot,
    bool_or(is_spam) AS is_spam
  FROM events
  GROUP BY project_id, session_id
)
SELECT
  ev.session_id, ev.project_id,
  ev.visitor_id,
  ev.started_at,
  ev.ended_at,
  -- Page views' span plus the last page's time, or first to last event if that is longer.
  greatest(pv.duration_ms, CAST(ev.ended_at AS BIGINT) - CAST(ev.started_at AS BIGINT)) AS duration_ms,
  CAST(coalesce(pv.pageviews, 0) AS INT) AS pageviews,
  CAST(ev.custom_events AS INT) AS custom_events,
  coalesce(pv.pageviews, 0) = 1 AS is_bounce,
  pv.entry_page,
  pv.exit_page,
  ev.hostname, ev.referrer, ev.referrer_domain, ev.referrer_category,
  ev.utm_source, ev.utm_medium, ev.utm_campaign, ev.click_id_type,
  ev.country_code, ev.region, ev.city, ev.language,
  ev.device_type, ev.browser_name, ev.os_name,
  pv.active_time_ms,
  CAST(ev.errors AS INT) AS error_count,
  ev.errors > 0 AS had_errors,
  -- A total only when the session's revenue is in one currency: amounts in different currencies
  -- do not add up, and no exchange rate is known here.
  CASE WHEN ev.min_currency = ev.max_currency THEN ev.revenue_sum END AS revenue_amount,
  CASE WHEN ev.min_currency = ev.max_currency THEN ev.min_currency END AS revenue_currency,
  coalesce(pv.is_bot, ev.is_bot, false) AS is_bot,
  pv.bot_type,
  coalesce(pv.is_spam, ev.is_spam, false) AS is_spam
FROM ev
LEFT JOIN pv ON ev.project_id = pv.project_id AND ev.session_id = pv.session_id
";

/// The brief's `user_paths`: each human page view in its session's sequence.
const USER_PATHS: &str = r#"
SELECT
  page_id AS id, project_id, session_id,
  CAST(row_number() OVER (PARTITION BY project_id, session_id ORDER BY added_iso, event_id) AS INT) AS path_sequence,
  page_id, path,
  added_iso AS entry_timestamp,
  CASE WHEN time_on_page_ms IS NULL THEN NULL
       ELSE arrow_cast(CAST(added_iso AS BIGINT) + time_on_page_ms, 'Timestamp(Millisecond, Some("UTC"))')
  END AS exit_timestamp,
  time_on_page_ms AS time_spent_ms,
  CASE WHEN lead(path) OVER w IS NOT NULL THEN 'navigation'
       WHEN pages_in_session = 1 THEN 'bounce'
       ELSE 'exit' END AS exit_type,
  lead(path) OVER w AS next_path
FROM pageviews
WINDOW w AS (PARTITION BY project_id, session_id ORDER BY added_iso, event_id)
"#;

const CUSTOM_EVENTS: &str = "
SELECT event_id AS id, project_id, session_id, visitor_id, page_id, added_iso, name,
  props AS event_metadata, revenue_amount, revenue_currency,
  hostname, path, referrer_domain, referrer_category, utm_source, utm_medium, utm_campaign,
  country_code, device_type, browser_name, os_name, coalesce(is_bot, false) AS is_bot
FROM events WHERE event_type = 'event'
";

const INTERACTIONS: &str = r#"
SELECT event_id AS id, project_id, page_id, session_id, interaction_type, element_selector, element_text,
  element_position, added_iso AS "timestamp", props AS metadata, path
FROM events WHERE event_type = 'interaction'
"#;

const ERROR_OCCURRENCES: &str = r#"
SELECT event_id AS id, project_id, page_id, session_id, error_fingerprint, error_type, error_message, error_stack,
  source_file, line_number, column_number, browser_name, browser_version, os_name, os_version, device_type,
  added_iso AS "timestamp", path
FROM events WHERE event_type = 'error'
"#;

/// One row per fingerprint: where and in which environment it was last seen, how often, and when
/// first and last. Resolution state is not tracked yet, so `resolved` is false for all.
const ERRORS: &str = r#"
SELECT
  error_fingerprint AS id, project_id,
  last_value(page_id ORDER BY "timestamp", id) AS page_id,
  last_value(session_id ORDER BY "timestamp", id) AS session_id,
  first_value(error_type ORDER BY "timestamp", id) AS error_type,
  first_value(error_message ORDER BY "timestamp", id) AS error_message,
  last_value(error_stack ORDER BY "timestamp", id) AS error_stack,
  first_value(source_file ORDER BY "timestamp", id) AS source_file,
  first_value(line_number ORDER BY "timestamp", id) AS line_number,
  first_value(column_number ORDER BY "timestamp", id) AS column_number,
  last_value(browser_name ORDER BY "timestamp", id) AS browser_name,
  last_value(browser_version ORDER BY "timestamp", id) AS browser_version,
  last_value(os_name ORDER BY "timestamp", id) AS os_name,
  CAST(count(*) AS INT) AS occurrence_count,
  CAST(count(DISTINCT session_id) AS INT) AS sessions_affected,
  min("timestamp") AS first_seen,
  max("timestamp") AS last_seen,
  false AS resolved,
  arrow_cast(NULL, 'Timestamp(Millisecond, Some("UTC"))') AS resolved_at
FROM error_occurrences
GROUP BY project_id, error_fingerprint
"#;

/// One row per form per page view, from its start, summary and error reports. A submit wins
/// over an abandon (a tracker may report both when the page unloads right after submitting).
const FORM_INTERACTIONS: &str = r#"
SELECT
  page_id || ':' || coalesce(form_id, form_name, '') AS id,
  project_id, page_id, session_id,
  form_id, max(form_name) AS form_name,
  min(added_iso) FILTER (WHERE form_event = 'start') AS started_at,
  min(added_iso) FILTER (WHERE form_event = 'submit') AS submitted_at,
  min(added_iso) FILTER (WHERE form_event = 'abandon') AS abandoned_at,
  max(fields_total) AS fields_total,
  max(fields_interacted) AS fields_interacted,
  max(fields_completed) AS fields_completed,
  min(time_to_first_field_ms) AS time_to_first_field_ms,
  max(time_to_submit_ms) AS time_to_submit_ms,
  last_value(field_interactions ORDER BY added_iso, event_id) FILTER (WHERE field_interactions IS NOT NULL)
    AS field_interactions,
  CASE
    WHEN count(*) FILTER (WHERE form_event = 'submit') > 0 THEN 'submitted'
    WHEN count(*) FILTER (WHERE form_event = 'abandon') > 0 THEN 'abandoned'
    WHEN count(*) FILTER (WHERE form_event = 'error') > 0 THEN 'error'
    ELSE 'started'
  END AS status,
  array_distinct(flatten(array_agg(error_messages ORDER BY added_iso, event_id)
    FILTER (WHERE error_messages IS NOT NULL))) AS error_messages,
  CAST(count(*) FILTER (WHERE form_event = 'error') AS INT) AS validation_errors
FROM events
WHERE event_type = 'form'
GROUP BY project_id, session_id, page_id, form_id, coalesce(form_id, form_name, '')
"#;

/// Searches, with the first result click on the same results page and whether the visitor
/// searched again later in the session.
const SITE_SEARCHES: &str = r#"
WITH clicks AS (
  SELECT project_id, page_id, normalized_query,
    first_value(clicked_position ORDER BY added_iso, event_id) AS clicked_position,
    first_value(clicked_url ORDER BY added_iso, event_id) AS clicked_url
  FROM events WHERE event_type = 'search_click'
  GROUP BY project_id, page_id, normalized_query
)
SELECT
  s.event_id AS id, s.project_id, s.session_id, s.page_id,
  s.search_query AS query, s.normalized_query, s.results_count, s.search_location,
  s.added_iso AS "timestamp",
  c.page_id IS NOT NULL AS clicked_result,
  c.clicked_position, c.clicked_url,
  lead(s.event_id) OVER (PARTITION BY s.project_id, s.session_id ORDER BY s.added_iso, s.event_id) IS NOT NULL
    AS refined_search,
  s.path
FROM events s
LEFT JOIN clicks c
  ON s.project_id = c.project_id AND s.page_id = c.page_id AND s.normalized_query = c.normalized_query
WHERE s.event_type = 'search'
"#;

/// The brief's assignment: a session saw a variant of an experiment, first at `assigned_at`.
const EXPERIMENT_ASSIGNMENTS: &str = r#"
SELECT
  session_id || ':' || experiment_id || ':' || variant_id AS id,
  project_id, experiment_id, session_id,
  first_value(visitor_id ORDER BY added_iso) AS visitor_id,
  variant_id,
  min(added_iso) AS assigned_at,
  CAST(count(*) AS INT) AS exposures
FROM events
WHERE event_type = 'experiment'
GROUP BY project_id, session_id, experiment_id, variant_id
"#;

/// The views a query needs: the tables it reads, and the views those build on, in [`VIEWS`] order.
///
/// Names come from the parsed statement, the way DataFusion's planner resolves them (identifiers
/// normalised, CTEs excluded), not from the text: a column alias such as `AS pageviews` used to
/// register that view and its bases, about 11 ms of planning for nothing.
pub fn needed_by(sql: &str) -> Result<Vec<(&'static str, &'static str)>, DataFusionError> {
    let mut needed = vec![false; VIEWS.len()];
    let mut pending = tables_read_by(sql)?;
    while let Some(table) = pending.pop() {
        let Some(i) = VIEWS.iter().position(|(name, _)| *name == table) else { continue };
        if !needed[i] {
            needed[i] = true;
            pending.extend(tables_read_by(VIEWS[i].1)?);
        }
    }
    Ok(VIEWS.iter().zip(needed).filter(|(_, n)| *n).map(|(v, _)| *v).collect())
}

/// The unqualified names of the tables `sql` reads.
fn tables_read_by(sql: &str) -> Result<Vec<String>, DataFusionError> {
    let mut names = Vec::new();
    for statement in DFParser::parse_sql(sql)? {
        let (tables, _ctes) = resolve_table_references(&statement, true)?;
        names.extend(tables.iter().map(|t| t.table().to_string()));
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_views_and_their_bases_are_registered() {
        let names = |sql: &str| needed_by(sql).expect("parses").into_iter().map(|(n, _)| n).collect::<Vec<_>>();
        assert!(names("SELECT count(*) FROM events").is_empty());
        assert_eq!(names("select * from ERRORS"), vec!["error_occurrences", "errors"]);
        assert_eq!(
            names("SELECT * FROM user_paths"),
            vec!["page_metrics", "page_experiments", "all_pageviews", "pageviews", "user_paths"]
        );
        assert_eq!(names("SELECT * FROM all_pageviews_x"), Vec::<&str>::new());
        // Aliases, columns and CTEs that share a view's name are not reads of it.
        assert!(names("SELECT count(*) AS pageviews, count(DISTINCT visitor_id) AS sessions FROM events").is_empty());
        assert!(names("SELECT e.errors FROM events e").is_empty());
        assert!(names("WITH sessions AS (SELECT session_id FROM events) SELECT count(*) FROM sessions").is_empty());
        // Reads in subqueries, joins and EXPLAIN count.
        assert_eq!(
            names("EXPLAIN SELECT * FROM events WHERE session_id IN (SELECT session_id FROM errors)"),
            vec!["error_occurrences", "errors"]
        );
        assert_eq!(
            names("SELECT * FROM events e JOIN \"custom_events\" c ON e.event_id = c.event_id"),
            vec!["custom_events"]
        );
    }

    #[test]
    fn view_bodies_name_only_earlier_views() {
        for (i, (name, body)) in VIEWS.iter().enumerate() {
            for table in tables_read_by(body).expect("view parses") {
                if let Some(j) = VIEWS.iter().position(|(n, _)| *n == table) {
                    assert!(j < i, "{name} reads {table}, which is registered after it");
                }
            }
        }
    }
}
