//! The stored event: what the WAL persists and what becomes one row of a Parquet partition.
//!
//! It holds only what is safe to keep: the server has already replaced IP and user-agent with a keyed
//! visitor hash before an `Event` exists, so neither can reach the WAL or storage.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, Decimal128Builder, RecordBatch, StringBuilder, TimestampMillisecondBuilder, UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use serde::{Deserialize, Serialize};

use crate::ids::{Day, PartitionKey, ProjectId};

/// Scale of `revenue_amount`: money is exact to 1/10000 of a unit.
pub const REVENUE_SCALE: i8 = 4;
pub const REVENUE_PRECISION: u8 = 18;

pub(crate) mod column_group;
mod detail;

pub use detail::{Context, Engagement, ErrorDetail, ExperimentDetail, FormDetail, Interaction, SearchDetail, Vitals};

use detail::{
    ContextBuilders, EngagementBuilders, ErrorDetailBuilders, ExperimentDetailBuilders, FormDetailBuilders,
    InteractionBuilders, SearchDetailBuilders, VitalsBuilders,
};

/// What an event records; stored as the `event_type` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Pageview,
    Custom,
    Engagement,
    Vitals,
    Interaction,
    Error,
    Form,
    Search,
    SearchClick,
    Experiment,
}

impl EventType {
    pub const ALL: [EventType; 10] = [
        Self::Pageview,
        Self::Custom,
        Self::Engagement,
        Self::Vitals,
        Self::Interaction,
        Self::Error,
        Self::Form,
        Self::Search,
        Self::SearchClick,
        Self::Experiment,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pageview => "pageview",
            Self::Custom => "event",
            Self::Engagement => "engagement",
            Self::Vitals => "vitals",
            Self::Interaction => "interaction",
            Self::Error => "error",
            Self::Form => "form",
            Self::Search => "search",
            Self::SearchClick => "search_click",
            Self::Experiment => "experiment",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// One event, enriched and scrubbed, ready to store. `event_id` is assigned by the WAL.
///
/// The detail groups are boxed so that the common events (pageviews, custom events) stay small in
/// the WAL queue and the buffer; an absent group costs one byte in the WAL and nulls in Parquet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub project: ProjectId,
    pub timestamp_ms: i64,
    pub event_type: EventType,
    pub name: String,
    pub session_id: Option<String>,
    pub visitor_id: Option<String>,
    pub hostname: Option<String>,
    pub path: Option<String>,
    pub query_string: Option<String>,
    pub page_title: Option<String>,
    pub referrer: Option<String>,
    pub referrer_domain: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    /// Custom properties as a JSON object text.
    pub props: Option<String>,
    /// Revenue in units of 10^-REVENUE_SCALE.
    pub revenue_amount: Option<i128>,
    pub revenue_currency: Option<String>,
    pub interactive: bool,
    pub context: Context,
    pub engagement: Option<Box<Engagement>>,
    pub vitals: Option<Box<Vitals>>,
    pub interaction: Option<Box<Interaction>>,
    pub error: Option<Box<ErrorDetail>>,
    pub form: Option<Box<FormDetail>>,
    pub search: Option<Box<SearchDetail>>,
    pub experiment: Option<Box<ExperimentDetail>>,
}

impl Event {
    /// An event with every optional field empty.
    pub fn new(project: ProjectId, timestamp_ms: i64, event_type: EventType, name: impl Into<String>) -> Self {
        Self {
            project,
            timestamp_ms,
            event_type,
            name: name.into(),
            session_id: None,
            visitor_id: None,
            hostname: None,
            path: None,
            query_string: None,
            page_title: None,
            referrer: None,
            referrer_domain: None,
            utm_source: None,
            utm_medium: None,
            utm_campaign: None,
            utm_term: None,
            utm_content: None,
            props: None,
            revenue_amount: None,
            revenue_currency: None,
            interactive: true,
            context: Context::default(),
            engagement: None,
            vitals: None,
            interaction: None,
            error: None,
            form: None,
            search: None,
            experiment: None,
        }
    }

    pub fn partition(&self) -> PartitionKey {
        PartitionKey { project: self.project.clone(), day: Day::of_millis(self.timestamp_ms) }
    }

    /// A rough in-memory size, for buffer accounting before Arrow conversion.
    pub fn approx_size(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<Self>()
            + self.name.len()
            + [
                &self.session_id,
                &self.visitor_id,
                &self.hostname,
                &self.path,
                &self.query_string,
                &self.page_title,
                &self.referrer,
                &self.referrer_domain,
                &self.utm_source,
                &self.utm_medium,
                &self.utm_campaign,
                &self.utm_term,
                &self.utm_content,
                &self.props,
                &self.revenue_currency,
            ]
            .into_iter()
            .map(opt)
            .sum::<usize>()
            + self.context.heap_size()
            + self.engagement.as_ref().map_or(0, |g| std::mem::size_of::<Engagement>() + g.heap_size())
            + self.vitals.as_ref().map_or(0, |g| std::mem::size_of::<Vitals>() + g.heap_size())
            + self.interaction.as_ref().map_or(0, |g| std::mem::size_of::<Interaction>() + g.heap_size())
            + self.error.as_ref().map_or(0, |g| std::mem::size_of::<ErrorDetail>() + g.heap_size())
            + self.form.as_ref().map_or(0, |g| std::mem::size_of::<FormDetail>() + g.heap_size())
            + self.search.as_ref().map_or(0, |g| std::mem::size_of::<SearchDetail>() + g.heap_size())
            + self.experiment.as_ref().map_or(0, |g| std::mem::size_of::<ExperimentDetail>() + g.heap_size())
    }
}

/// Column names, shared with the SQL layer.
pub mod columns {
    pub const EVENT_ID: &str = "event_id";
    pub const PROJECT_ID: &str = "project_id";
    pub const ADDED_ISO: &str = "added_iso";
    pub const EVENT_TYPE: &str = "event_type";
    pub const NAME: &str = "name";
    pub const SESSION_ID: &str = "session_id";
    pub const VISITOR_ID: &str = "visitor_id";
    pub const PAGE_ID: &str = "page_id";
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    let text = |name: &str| Field::new(name, DataType::Utf8, true);
    let mut fields = vec![
        Field::new(columns::EVENT_ID, DataType::UInt64, false),
        Field::new(columns::PROJECT_ID, DataType::Utf8, false),
        Field::new(columns::ADDED_ISO, DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), false),
        Field::new(columns::EVENT_TYPE, DataType::Utf8, false),
        Field::new(columns::NAME, DataType::Utf8, false),
        text(columns::SESSION_ID),
        text(columns::VISITOR_ID),
        text("hostname"),
        text("path"),
        text("query_string"),
        text("page_title"),
        text("referrer"),
        text("referrer_domain"),
        text("utm_source"),
        text("utm_medium"),
        text("utm_campaign"),
        text("utm_term"),
        text("utm_content"),
        text("props"),
        Field::new("revenue_amount", DataType::Decimal128(REVENUE_PRECISION, REVENUE_SCALE), true),
        text("revenue_currency"),
        Field::new("interactive", DataType::Boolean, false),
    ];
    for group in [
        Context::arrow_fields(),
        Engagement::arrow_fields(),
        Vitals::arrow_fields(),
        Interaction::arrow_fields(),
        ErrorDetail::arrow_fields(),
        FormDetail::arrow_fields(),
        SearchDetail::arrow_fields(),
        ExperimentDetail::arrow_fields(),
    ] {
        fields.extend(group);
    }
    Arc::new(Schema::new(fields))
});

/// The Arrow schema of stored events: the `events` table.
pub fn schema() -> SchemaRef {
    SCHEMA.clone()
}

/// Declares the builders of the optional detail groups. A group that no event of the batch carries
/// (the usual case for most groups) becomes null columns directly, skipping a dozen null appends
/// per row.
macro_rules! detail_builders {
    ($($field:ident: $group:ty => $builders:ty),* $(,)?) => {
        struct DetailBuilders {
            $($field: Option<$builders>,)*
        }

        impl DetailBuilders {
            fn for_events(events: &[(u64, &Event)]) -> Self {
                let n = events.len();
                Self {
                    $($field: events
                        .iter()
                        .any(|(_, e)| e.$field.is_some())
                        .then(|| <$builders>::with_capacity(n)),)*
                }
            }

            fn append(&mut self, event: &Event) {
                $(if let Some(b) = &mut self.$field {
                    b.append(event.$field.as_deref());
                })*
            }

            fn finish_into(self, rows: usize, out: &mut Vec<ArrayRef>) {
                $(match self.$field {
                    Some(mut b) => b.finish_into(out),
                    None => <$group>::null_columns(rows, out),
                })*
            }
        }
    };
}

detail_builders! {
    engagement: Engagement => EngagementBuilders,
    vitals: Vitals => VitalsBuilders,
    interaction: Interaction => InteractionBuilders,
    error: ErrorDetail => ErrorDetailBuilders,
    form: FormDetail => FormDetailBuilders,
    search: SearchDetail => SearchDetailBuilders,
    experiment: ExperimentDetail => ExperimentDetailBuilders,
}

/// Converts events (with their WAL-assigned ids) into one record batch of [`schema`].
pub fn to_record_batch<'a>(events: impl ExactSizeIterator<Item = (u64, &'a Event)>) -> Result<RecordBatch, ArrowError> {
    let events: Vec<(u64, &Event)> = events.collect();
    let n = events.len();
    let mut event_id = UInt64Builder::with_capacity(n);
    let mut project = StringBuilder::with_capacity(n, n * 8);
    let mut added = TimestampMillisecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut event_type = StringBuilder::with_capacity(n, n * 8);
    let mut name = StringBuilder::with_capacity(n, n * 8);
    let mut texts: Vec<StringBuilder> = (0..15).map(|_| StringBuilder::with_capacity(n, n * 16)).collect();
    let mut revenue = Decimal128Builder::with_capacity(n).with_precision_and_scale(REVENUE_PRECISION, REVENUE_SCALE)?;
    let mut interactive = BooleanBuilder::with_capacity(n);
    let mut context = ContextBuilders::with_capacity(n);
    let mut details = DetailBuilders::for_events(&events);

    for &(id, e) in &events {
        event_id.append_value(id);
        project.append_value(e.project.as_str());
        added.append_value(e.timestamp_ms);
        event_type.append_value(e.event_type.as_str());
        name.append_value(&e.name);
        let values = [
            &e.session_id,
            &e.visitor_id,
            &e.hostname,
            &e.path,
            &e.query_string,
            &e.page_title,
            &e.referrer,
            &e.referrer_domain,
            &e.utm_source,
            &e.utm_medium,
            &e.utm_campaign,
            &e.utm_term,
            &e.utm_content,
            &e.props,
        ];
        for (builder, value) in texts.iter_mut().zip(values) {
            builder.append_option(value.as_deref());
        }
        revenue.append_option(e.revenue_amount);
        texts[14].append_option(e.revenue_currency.as_deref());
        interactive.append_value(e.interactive);
        context.append(Some(&e.context));
        details.append(e);
    }

    let mut texts = texts.into_iter().map(|mut b| Arc::new(b.finish()) as ArrayRef);
    let mut next_text = || texts.next().ok_or_else(|| ArrowError::SchemaError("column count".into()));
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(event_id.finish()),
        Arc::new(project.finish()),
        Arc::new(added.finish()),
        Arc::new(event_type.finish()),
        Arc::new(name.finish()),
    ];
    for _ in 0..14 {
        columns.push(next_text()?);
    }
    columns.push(Arc::new(revenue.finish()));
    columns.push(next_text()?);
    columns.push(Arc::new(interactive.finish()));
    context.finish_into(&mut columns);
    details.finish_into(n, &mut columns);
    RecordBatch::try_new(schema(), columns)
}

#[cfg(test)]
pub(crate) fn sample(project: &str, ts: i64, session: &str) -> Event {
    let mut e = Event::new(ProjectId::new(project).unwrap(), ts, EventType::Pageview, "pageview");
    e.session_id = Some(session.into());
    e.visitor_id = Some("v1".into());
    e.hostname = Some("example.com".into());
    e.path = Some("/".into());
    e.props = Some("{\"a\":1}".into());
    e.revenue_amount = Some(12_5000);
    e.revenue_currency = Some("EUR".into());
    e.context.page_id = Some("p1".into());
    e.context.screen_width = Some(1920);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    #[test]
    fn batch_matches_schema_and_values() {
        let a = sample("p", 1_700_000_000_000, "s1");
        let mut b = sample("p", 1_700_000_000_001, "s2");
        b.props = None;
        let batch = to_record_batch([(1, &a), (2, &b)].into_iter()).unwrap();
        assert_eq!(batch.schema(), schema());
        assert_eq!(batch.num_rows(), 2);
        let props = batch.column_by_name("props").unwrap().as_string::<i32>();
        assert_eq!(props.value(0), "{\"a\":1}");
        assert!(props.is_null(1));
        let currency = batch.column_by_name("revenue_currency").unwrap().as_string::<i32>();
        assert_eq!(currency.value(1), "EUR");
    }

    #[test]
    fn runs_without_a_group_are_nulls_in_their_rows() {
        let with_cls = |ts: i64, cls: f64| {
            let mut e = sample("p", ts, "s");
            e.event_type = EventType::Vitals;
            e.vitals = Some(Box::new(Vitals { cumulative_layout_shift: Some(cls), ..Default::default() }));
            e
        };
        let events = [
            sample("p", 1, "s"),
            sample("p", 2, "s"),
            with_cls(3, 0.25),
            sample("p", 4, "s"),
            with_cls(5, 0.5),
            sample("p", 6, "s"),
            sample("p", 7, "s"),
        ];
        let batch = to_record_batch(events.iter().enumerate().map(|(i, e)| (i as u64, e))).unwrap();
        let cls =
            batch.column_by_name("cumulative_layout_shift").unwrap().as_primitive::<arrow::datatypes::Float64Type>();
        let got: Vec<Option<f64>> = (0..cls.len()).map(|i| cls.is_valid(i).then(|| cls.value(i))).collect();
        assert_eq!(got, [None, None, Some(0.25), None, Some(0.5), None, None]);
        let lcp = batch.column_by_name("largest_contentful_paint_ms").unwrap();
        assert_eq!((lcp.len(), lcp.null_count()), (7, 7));
        batch.columns().iter().for_each(|c| c.to_data().validate_full().unwrap());
    }

    #[test]
    fn detail_groups_become_their_columns_or_nulls() {
        let mut a = sample("p", 1_700_000_000_000, "s1");
        a.event_type = EventType::Form;
        a.form = Some(Box::new(FormDetail {
            form_event: Some("error".into()),
            fields_total: Some(3),
            error_messages: Some(vec!["Please fill out this field.".into()]),
            ..Default::default()
        }));
        a.vitals = Some(Box::new(Vitals { cumulative_layout_shift: Some(0.12), ..Default::default() }));
        let b = sample("p", 1_700_000_000_001, "s2");
        let batch = to_record_batch([(1, &a), (2, &b)].into_iter()).unwrap();
        assert_eq!(batch.schema(), schema());
        let total = batch.column_by_name("fields_total").unwrap().as_primitive::<arrow::datatypes::Int32Type>();
        assert_eq!((total.value(0), total.is_null(1)), (3, true));
        let cls =
            batch.column_by_name("cumulative_layout_shift").unwrap().as_primitive::<arrow::datatypes::Float64Type>();
        assert_eq!(cls.value(0), 0.12);
        let messages = batch.column_by_name("error_messages").unwrap().as_list::<i32>();
        assert_eq!(messages.value(0).as_string::<i32>().value(0), "Please fill out this field.");
        assert!(messages.is_null(1));
        let width = batch.column_by_name("screen_width").unwrap().as_primitive::<arrow::datatypes::Int32Type>();
        assert_eq!(width.value(1), 1920);
        assert_eq!(EventType::parse("search_click"), Some(EventType::SearchClick));
        assert!(EventType::ALL.iter().all(|t| EventType::parse(t.as_str()) == Some(*t)));
    }
}
