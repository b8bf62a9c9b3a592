//! The brief's detail groups from the wire: range checks per field, and the values the server
//! derives itself (error fingerprints, normalised search queries). A group exists when any of its
//! fields was sent, whatever the event's type, so a server-side sender may put a page view's
//! vitals on the page view itself.

use footfall_engine::event::{
    Engagement, ErrorDetail, ExperimentDetail, FormDetail, Interaction, SearchDetail, Vitals,
};
use serde::Deserialize;
use serde_json::Value;

use super::wire::WireEvent;
use super::{check_len, Detail};

/// A JSON number as sent; browsers report timings with fractions of a millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(transparent)]
pub(crate) struct Number(f64);

pub const MAX_SELECTOR_BYTES: usize = 500;
pub const MAX_ELEMENT_TEXT_BYTES: usize = 500;
pub const MAX_ERROR_MESSAGE_BYTES: usize = 4 * 1024;
pub const MAX_ERROR_STACK_BYTES: usize = 16 * 1024;
pub const MAX_FIELD_INTERACTIONS: usize = 200;
pub const MAX_ERROR_MESSAGES: usize = 50;
pub const MAX_SEARCH_QUERY_BYTES: usize = 500;
pub const MAX_ID_BYTES: usize = 255;
/// An hour: longer timings on one page are clock jumps, not measurements.
const MAX_TIMING_MS: i64 = 3_600_000;
const MAX_DURATION_MS: i64 = 7 * 24 * 3_600_000;

fn rounded(field: &str, value: Number, min: i64, max: i64) -> Result<i64, String> {
    let v = value.0;
    if !v.is_finite() {
        return Err(format!("{field} must be a finite number"));
    }
    let r = v.round();
    if r < min as f64 || r > max as f64 {
        return Err(format!("{field} is {v}; it must be between {min} and {max}"));
    }
    Ok(r as i64)
}

pub(crate) fn int32(field: &str, value: Option<Number>, min: i64, max: i64) -> Result<Option<i32>, String> {
    value.map(|v| rounded(field, v, min, max).map(|r| r as i32)).transpose()
}

fn int64(field: &str, value: Option<Number>, min: i64, max: i64) -> Result<Option<i64>, String> {
    value.map(|v| rounded(field, v, min, max)).transpose()
}

fn timing(field: &str, value: Option<Number>) -> Result<Option<i32>, String> {
    int32(field, value, 0, MAX_TIMING_MS)
}

fn count(field: &str, value: Option<Number>) -> Result<Option<i32>, String> {
    int32(field, value, 0, i32::MAX as i64)
}

pub(crate) fn short_text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, String> {
    let value = value.filter(|v| !v.trim().is_empty());
    check_len(field, &value, max)?;
    Ok(value)
}

/// Page ids key joins between a page view and its later events, so they are plain tokens.
pub(crate) fn page_id(id: String) -> Result<String, String> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(id)
    } else {
        Err(format!("page_id {id:?} must be 1-64 of A-Z a-z 0-9 - _"))
    }
}

pub(crate) fn from_wire(w: &mut WireEvent) -> Result<Detail, String> {
    Ok(Detail {
        engagement: engagement(w)?.map(Box::new),
        vitals: vitals(w)?.map(Box::new),
        interaction: interaction(w)?.map(Box::new),
        error: error(w)?.map(Box::new),
        form: form(w)?.map(Box::new),
        search: search(w)?.map(Box::new),
        experiment: experiment(w)?.map(Box::new),
    })
}

fn engagement(w: &mut WireEvent) -> Result<Option<Engagement>, String> {
    let g = Engagement {
        time_on_page_ms: int64("time_on_page_ms", w.time_on_page_ms, 0, MAX_DURATION_MS)?,
        active_time_ms: int64("active_time_ms", w.active_time_ms, 0, MAX_DURATION_MS)?,
        idle_time_ms: int64("idle_time_ms", w.idle_time_ms, 0, MAX_DURATION_MS)?,
        scroll_percentage: int32("scroll_percentage", w.scroll_percentage, 0, 100)?,
        click_count: count("click_count", w.click_count)?,
        rage_clicks: count("rage_clicks", w.rage_clicks)?,
        copy_events: count("copy_events", w.copy_events)?,
    };
    Ok((g != Engagement::default()).then_some(g))
}

fn vitals(w: &mut WireEvent) -> Result<Option<Vitals>, String> {
    let cls = match w.cumulative_layout_shift {
        Some(Number(v)) if !v.is_finite() || !(0.0..=100.0).contains(&v) => {
            return Err(format!("cumulative_layout_shift is {v}; it must be between 0 and 100"))
        }
        // Four decimal places, as the brief's DECIMAL(5,4): finer digits are measurement noise.
        Some(Number(v)) => Some((v * 10_000.0).round() / 10_000.0),
        None => None,
    };
    let g = Vitals {
        dom_content_loaded_ms: timing("dom_content_loaded_ms", w.dom_content_loaded_ms)?,
        page_load_ms: timing("page_load_ms", w.page_load_ms)?,
        first_paint_ms: timing("first_paint_ms", w.first_paint_ms)?,
        first_contentful_paint_ms: timing("first_contentful_paint_ms", w.first_contentful_paint_ms)?,
        largest_contentful_paint_ms: timing("largest_contentful_paint_ms", w.largest_contentful_paint_ms)?,
        first_input_delay_ms: timing("first_input_delay_ms", w.first_input_delay_ms)?,
        cumulative_layout_shift: cls,
        time_to_first_byte_ms: timing("time_to_first_byte_ms", w.time_to_first_byte_ms)?,
        interaction_to_next_paint_ms: timing("interaction_to_next_paint_ms", w.interaction_to_next_paint_ms)?,
        resource_count: count("resource_count", w.resource_count)?,
        transfer_size_bytes: int64("transfer_size_bytes", w.transfer_size_bytes, 0, i64::MAX / 2)?,
    };
    Ok((g != Vitals::default()).then_some(g))
}

fn interaction(w: &mut WireEvent) -> Result<Option<Interaction>, String> {
    let position = match w.element_position.take() {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => {
            let coordinate = |k: &str| map.get(k).and_then(Value::as_f64).filter(|v| v.is_finite());
            match (coordinate("x"), coordinate("y")) {
                (Some(x), Some(y)) => {
                    Some(serde_json::json!({"x": x.round() as i64, "y": y.round() as i64}).to_string())
                }
                _ => return Err("element_position must be {\"x\": number, \"y\": number}".into()),
            }
        }
        Some(_) => return Err("element_position must be {\"x\": number, \"y\": number}".into()),
    };
    let g = Interaction {
        interaction_type: short_text("interaction_type", w.interaction_type.take(), 50)?,
        element_selector: short_text("element_selector", w.element_selector.take(), MAX_SELECTOR_BYTES)?,
        element_text: short_text("element_text", w.element_text.take(), MAX_ELEMENT_TEXT_BYTES)?,
        element_position: position,
    };
    Ok((g != Interaction::default()).then_some(g))
}

fn error(w: &mut WireEvent) -> Result<Option<ErrorDetail>, String> {
    let mut g = ErrorDetail {
        error_type: short_text("error_type", w.error_type.take(), 100)?,
        error_message: short_text("error_message", w.error_message.take(), MAX_ERROR_MESSAGE_BYTES)?,
        error_stack: short_text("error_stack", w.error_stack.take(), MAX_ERROR_STACK_BYTES)?,
        source_file: short_text("source_file", w.source_file.take(), super::MAX_URL_BYTES)?,
        line_number: int32("line_number", w.line_number, 0, i32::MAX as i64)?,
        column_number: int32("column_number", w.column_number, 0, i32::MAX as i64)?,
        error_fingerprint: None,
    };
    if g == ErrorDetail::default() {
        return Ok(None);
    }
    if g.error_message.is_none() {
        return Err("errors need an error_message".into());
    }
    g.error_type.get_or_insert_with(|| "javascript".into());
    Ok(Some(g))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldInteraction {
    field_name: String,
    time_spent_ms: Option<f64>,
    changes_count: Option<f64>,
}

fn form(w: &mut WireEvent) -> Result<Option<FormDetail>, String> {
    let field_interactions = match w.field_interactions.take() {
        None | Some(Value::Null) => None,
        Some(v) => {
            let items: Vec<FieldInteraction> = serde_json::from_value(v).map_err(|e| {
                format!("field_interactions must be [{{field_name, time_spent_ms, changes_count}}]: {e}")
            })?;
            if items.len() > MAX_FIELD_INTERACTIONS {
                return Err(format!(
                    "field_interactions has {} items; the limit is {MAX_FIELD_INTERACTIONS}",
                    items.len()
                ));
            }
            let normalised: Vec<Value> = items
                .into_iter()
                .map(|f| {
                    let whole = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0).map(|v| v.round() as i64);
                    serde_json::json!({
                        "field_name": f.field_name.chars().take(255).collect::<String>(),
                        "time_spent_ms": whole(f.time_spent_ms),
                        "changes_count": whole(f.changes_count),
                    })
                })
                .collect();
            Some(Value::Array(normalised).to_string())
        }
    };
    let error_messages = match w.error_messages.take() {
        None | Some(Value::Null) => None,
        Some(v) => {
            let messages: Vec<String> =
                serde_json::from_value(v).map_err(|_| "error_messages must be an array of strings".to_string())?;
            if messages.len() > MAX_ERROR_MESSAGES {
                return Err(format!("error_messages has {} items; the limit is {MAX_ERROR_MESSAGES}", messages.len()));
            }
            Some(messages.into_iter().map(|m| m.chars().take(500).collect()).collect())
        }
    };
    let form_event = short_text("form_event", w.form_event.take(), 20)?;
    if let Some(e) = form_event.as_deref() {
        if !matches!(e, "start" | "submit" | "abandon" | "error") {
            return Err(format!("form_event must be start, submit, abandon or error, got {e:?}"));
        }
    }
    let g = FormDetail {
        form_event,
        form_id: short_text("form_id", w.form_id.take(), MAX_ID_BYTES)?,
        form_name: short_text("form_name", w.form_name.take(), MAX_ID_BYTES)?,
        fields_total: count("fields_total", w.fields_total)?,
        fields_interacted: count("fields_interacted", w.fields_interacted)?,
        fields_completed: count("fields_completed", w.fields_completed)?,
        time_to_first_field_ms: int32("time_to_first_field_ms", w.time_to_first_field_ms, 0, MAX_DURATION_MS)?,
        time_to_submit_ms: int32("time_to_submit_ms", w.time_to_submit_ms, 0, MAX_DURATION_MS)?,
        field_interactions,
        error_messages,
    };
    Ok((g != FormDetail::default()).then_some(g))
}

fn search(w: &mut WireEvent) -> Result<Option<SearchDetail>, String> {
    let query = short_text("search_query", w.search_query.take(), MAX_SEARCH_QUERY_BYTES)?;
    let g = SearchDetail {
        normalized_query: query.as_deref().map(normalize_query),
        search_query: query,
        results_count: count("results_count", w.results_count)?,
        search_location: short_text("search_location", w.search_location.take(), MAX_ID_BYTES)?,
        clicked_position: count("clicked_position", w.clicked_position)?,
        clicked_url: short_text("clicked_url", w.clicked_url.take(), super::MAX_URL_BYTES)?,
    };
    Ok((g != SearchDetail::default()).then_some(g))
}

fn experiment(w: &mut WireEvent) -> Result<Option<ExperimentDetail>, String> {
    let g = ExperimentDetail {
        experiment_id: short_text("experiment_id", w.experiment_id.take(), MAX_ID_BYTES)?,
        variant_id: short_text("variant_id", w.variant_id.take(), 50)?,
    };
    match (&g.experiment_id, &g.variant_id) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Ok(Some(g)),
        _ => Err("experiment exposures need both experiment_id and variant_id".into()),
    }
}

/// Lower-cased, trimmed, inner whitespace collapsed: "  Red  Shoes" and "red shoes" are one query.
pub fn normalize_query(query: &str) -> String {
    query.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ")
}

/// Groups occurrences of one error: its type, its message with numbers masked (so "id 17 not found"
/// and "id 18 not found" are one error), and where it was thrown (file without query string, line,
/// column). 16 hex characters of BLAKE3.
pub fn error_fingerprint(error: &ErrorDetail) -> String {
    let message: String = error
        .error_message
        .as_deref()
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect();
    let source = error.source_file.as_deref().unwrap_or("");
    let source = source.split(['?', '#']).next().unwrap_or(source);
    let mut hasher = blake3::Hasher::new();
    for part in [error.error_type.as_deref().unwrap_or(""), message.trim(), source] {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    hasher.update(&error.line_number.unwrap_or(0).to_le_bytes());
    hasher.update(&error.column_number.unwrap_or(0).to_le_bytes());
    hex::encode(&hasher.finalize().as_bytes()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(json: &str) -> WireEvent {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn groups_exist_only_when_sent_and_numbers_are_checked() {
        let mut w = wire(r#"{"largest_contentful_paint_ms": 1234.6, "cumulative_layout_shift": 0.123456}"#);
        let d = from_wire(&mut w).unwrap();
        let v = d.vitals.unwrap();
        assert_eq!(v.largest_contentful_paint_ms, Some(1235));
        assert_eq!(v.cumulative_layout_shift, Some(0.1235));
        assert!(d.engagement.is_none() && d.form.is_none() && d.error.is_none());

        for bad in [
            r#"{"scroll_percentage": 101}"#,
            r#"{"largest_contentful_paint_ms": -5}"#,
            r#"{"cumulative_layout_shift": 1000}"#,
            r#"{"element_position": {"x": "a"}}"#,
            r#"{"form_event": "explode"}"#,
            r#"{"field_interactions": [{"field_name": "email", "value": "x@y.z"}]}"#,
            r#"{"error_messages": "not a list"}"#,
            r#"{"experiment_id": "e1"}"#,
            r#"{"error_stack": "at x"}"#,
        ] {
            assert!(from_wire(&mut wire(bad)).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn form_summaries_are_normalised() {
        let mut w = wire(
            r#"{"form_event":"submit","form_id":"signup","fields_total":3,
                "field_interactions":[{"field_name":"email","time_spent_ms":1200.4,"changes_count":7}],
                "error_messages":["Please fill out this field."]}"#,
        );
        let f = from_wire(&mut w).unwrap().form.unwrap();
        assert_eq!(
            f.field_interactions.as_deref(),
            Some(r#"[{"changes_count":7,"field_name":"email","time_spent_ms":1200}]"#)
        );
        assert_eq!(f.error_messages, Some(vec!["Please fill out this field.".to_string()]));
    }

    #[test]
    fn fingerprints_group_by_shape_not_by_numbers() {
        let e = |message: &str, file: &str| ErrorDetail {
            error_type: Some("javascript".into()),
            error_message: Some(message.into()),
            source_file: Some(file.into()),
            line_number: Some(10),
            column_number: Some(4),
            ..Default::default()
        };
        let a = error_fingerprint(&e("item 17 not found", "https://a.com/app.js?v=1"));
        assert_eq!(a.len(), 16);
        assert_eq!(a, error_fingerprint(&e("item 18 not found", "https://a.com/app.js?v=2")));
        assert_ne!(a, error_fingerprint(&e("item 17 missing", "https://a.com/app.js")));
        assert_eq!(normalize_query("  Red   Shoes "), "red shoes");
    }
}
