//! The brief's per-event detail, grouped by what collects it. Every field is a stored column of the
//! same name (see `docs/data-model.md`); a group that an event does not carry is stored as nulls,
//! which Parquet keeps in a few bits per row.

use crate::event::column_group::column_group;

column_group! {
    /// Who and where: what the server derives at ingest (user-agent, IP database, referrer rules)
    /// and what the tracker reports about the browser. Present on every event.
    pub struct Context, builders ContextBuilders {
        /// One page view's id; every event on that page carries it.
        page_id: String,
        referrer_category: String,
        /// Which ad-click id the URL carried (`gclid`, `fbclid`, ...). The id itself is not kept.
        click_id_type: String,
        country_code: String,
        region: String,
        city: String,
        language: String,
        timezone: String,
        device_type: String,
        browser_name: String,
        browser_version: String,
        os_name: String,
        os_version: String,
        screen_width: i32,
        screen_height: i32,
        viewport_width: i32,
        viewport_height: i32,
        is_bot: bool,
        bot_type: String,
        is_spam: bool,
        spam_score: f64,
        /// Custom dimensions as a JSON object text.
        custom_dimensions: String,
    }
}

column_group! {
    /// Cumulative engagement of one page view, sent when the page is hidden; a later report for
    /// the same `page_id` supersedes an earlier one.
    pub struct Engagement, builders EngagementBuilders {
        time_on_page_ms: i64,
        active_time_ms: i64,
        idle_time_ms: i64,
        scroll_percentage: i32,
        click_count: i32,
        rage_clicks: i32,
        copy_events: i32,
    }
}

column_group! {
    /// Navigation timing, Core Web Vitals and resource totals of one page view.
    pub struct Vitals, builders VitalsBuilders {
        dom_content_loaded_ms: i32,
        page_load_ms: i32,
        first_paint_ms: i32,
        first_contentful_paint_ms: i32,
        largest_contentful_paint_ms: i32,
        first_input_delay_ms: i32,
        cumulative_layout_shift: f64,
        time_to_first_byte_ms: i32,
        interaction_to_next_paint_ms: i32,
        resource_count: i32,
        transfer_size_bytes: i64,
    }
}

column_group! {
    /// A click, rage click or copy on an element.
    pub struct Interaction, builders InteractionBuilders {
        interaction_type: String,
        element_selector: String,
        element_text: String,
        /// `{"x": .., "y": ..}` as JSON text.
        element_position: String,
    }
}

column_group! {
    /// One occurrence of a JavaScript or network error.
    pub struct ErrorDetail, builders ErrorDetailBuilders {
        error_type: String,
        error_message: String,
        error_stack: String,
        source_file: String,
        line_number: i32,
        column_number: i32,
        /// Groups occurrences: a hash of type, normalised message and source location.
        error_fingerprint: String,
    }
}

column_group! {
    /// One step of a form's life: start, submit, abandon or a validation error. Never field values.
    pub struct FormDetail, builders FormDetailBuilders {
        form_event: String,
        form_id: String,
        form_name: String,
        fields_total: i32,
        fields_interacted: i32,
        fields_completed: i32,
        time_to_first_field_ms: i32,
        time_to_submit_ms: i32,
        /// `[{"field_name", "time_spent_ms", "changes_count"}]` as JSON text.
        field_interactions: String,
        error_messages: Vec<String>,
    }
}

column_group! {
    /// A site search, or a click on one of its results.
    pub struct SearchDetail, builders SearchDetailBuilders {
        search_query: String,
        normalized_query: String,
        results_count: i32,
        search_location: String,
        clicked_position: i32,
        clicked_url: String,
    }
}

column_group! {
    /// An experiment exposure: this session saw this variant.
    pub struct ExperimentDetail, builders ExperimentDetailBuilders {
        experiment_id: String,
        variant_id: String,
    }
}
