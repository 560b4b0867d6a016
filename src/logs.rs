//! Structured logs: JSON lines on stdout (tracing-subscriber's JSON formatter) plus an
//! in-memory ring of recent lines that `GET /v1/logs?q=` searches.
//!
//! Convention for every layer: open a span per call carrying `call_id`, `instance_id`
//! and the phone `number` (through [`crate::pii::Pii`]); events inside inherit them.
//! ```
//! use voxgate::pii::Pii;
//! let span = tracing::info_span!("call", call_id = "a84b4c76e66710", instance_id = "node-1",
//!                                number = %Pii("+19585550123"));
//! let _g = span.enter();
//! tracing::info!(status = 200, "INVITE answered");
//! ```
//! The ring stores each event as one JSON object with the fields of the event and of
//! every enclosing span flattened in, so a search for a call ID or number finds every
//! line of that call.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

use crate::metrics::metrics;
use crate::store::records::{iso8601, now_millis};

/// The span every call's log lines should run in: `call_id` (SIP Call-ID),
/// `instance_id` (node) and the caller's `number` (through [`crate::pii::Pii`], so the
/// redaction mode applies). Enter it (or `.instrument()` the call task with it) and every
/// SIP transaction, state change and provider error inside carries the three fields.
pub fn call_span(call_id: &str, instance_id: &str, number: &str) -> tracing::Span {
    tracing::info_span!(
        "call",
        call_id,
        instance_id,
        number = %crate::pii::Pii(number)
    )
}

/// Bounded ring of recent log lines (JSON text), newest last.
#[derive(Debug, Clone)]
pub struct LogRing {
    inner: Arc<Mutex<VecDeque<String>>>,
    capacity: usize,
}

impl LogRing {
    /// A ring holding at most `capacity` lines (at least 1).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            inner: Arc::new(Mutex::new(VecDeque::with_capacity(capacity.min(65_536)))),
            capacity,
        }
    }

    /// Appends a line, evicting the oldest when full.
    pub fn push(&self, line: String) {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if q.len() >= self.capacity {
            q.pop_front();
            metrics().log_ring_evictions.inc();
        }
        q.push_back(line);
    }

    /// Lines containing any of `needles` (case-insensitive), newest first, at most `limit`.
    pub fn search(&self, needles: &[String], limit: usize) -> Vec<String> {
        let needles: Vec<String> = needles
            .iter()
            .filter(|n| !n.is_empty())
            .map(|n| n.to_lowercase())
            .collect();
        let q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        q.iter()
            .rev()
            .filter(|l| {
                needles.is_empty() || {
                    let low = l.to_lowercase();
                    needles.iter().any(|n| low.contains(n.as_str()))
                }
            })
            .take(limit)
            .cloned()
            .collect()
    }

    /// Lines held now.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A tracing layer that feeds this ring.
    pub fn layer(&self) -> LogRingLayer {
        LogRingLayer { ring: self.clone() }
    }
}

/// Fields recorded on a span, kept in its extensions as a JSON fragment.
#[derive(Debug, Default)]
struct SpanFields(serde_json::Map<String, serde_json::Value>);

struct JsonVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl Visit for JsonVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0
            .insert(field.name().to_owned(), serde_json::Value::String(s));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(
            field.name().to_owned(),
            serde_json::Value::String(value.to_owned()),
        );
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

/// The tracing layer behind [`LogRing`].
#[derive(Debug)]
pub struct LogRingLayer {
    ring: LogRing,
}

impl<S> Layer<S> for LogRingLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut fields = SpanFields::default();
            attrs.record(&mut JsonVisitor(&mut fields.0));
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<SpanFields>() {
                values.record(&mut JsonVisitor(&mut fields.0));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut map = serde_json::Map::new();
        map.insert("timestamp".into(), iso8601(now_millis()).into());
        map.insert(
            "level".into(),
            event.metadata().level().as_str().to_owned().into(),
        );
        map.insert("target".into(), event.metadata().target().to_owned().into());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(f) = span.extensions().get::<SpanFields>() {
                    for (k, v) in &f.0 {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        event.record(&mut JsonVisitor(&mut map));
        self.ring.push(serde_json::Value::Object(map).to_string());
    }
}

/// Installs the global subscriber: JSON lines on stdout filtered by `filter` (an
/// `EnvFilter` directive such as `info`; `RUST_LOG` wins when set) and the ring layer
/// (which records at `filter`'s level too). Returns `false` if a subscriber was already
/// installed (tests), in which case nothing changes.
pub fn init(filter: &str, ring: &LogRing) -> bool {
    let make_filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(filter));
    let stdout = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .with_filter(make_filter());
    tracing_subscriber::registry()
        .with(stdout)
        .with(ring.layer().with_filter(make_filter()))
        .try_init()
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_searches_span_fields() {
        let ring = LogRing::new(3);
        let sub = tracing_subscriber::registry().with(ring.layer());
        tracing::subscriber::with_default(sub, || {
            let span = tracing::info_span!("call", call_id = "abc123", number = "+19585550123");
            let _g = span.enter();
            tracing::info!("one");
            tracing::info!("two");
            drop(_g);
            tracing::info!(call_id = "zzz", "three");
            tracing::info!("four");
        });
        assert_eq!(ring.len(), 3);
        let hits = ring.search(&["ABC123".into()], 10);
        assert_eq!(hits.len(), 1, "{hits:?}"); // "one" was evicted
        assert!(hits[0].contains("\"message\":\"two\""));
        assert!(hits[0].contains("+19585550123"));
        assert_eq!(ring.search(&["zzz".into()], 10).len(), 1);
        assert_eq!(ring.search(&["nothing".into()], 10).len(), 0);
    }
}
