//! Prometheus metrics: a fixed, process-wide registry of atomics with a hand-written
//! text exposition (format 0.0.4).
//!
//! Why hand-written rather than `prometheus-client`: every series here is known up
//! front, so each is a plain `AtomicU64` that the media cores bump with one relaxed
//! add — no label lookup, hashing or lock on the packet path. Per-core counters are
//! cache-line padded so two cores never share a line.
//!
//! Other layers call [`metrics()`] and increment (root-crate code) or, for totals kept by
//! the engine's media cores, mirror them with [`Counter::set`]:
//! ```
//! use voxgate::metrics::{metrics, Direction, JitterEvent, Provider};
//! let m = metrics();
//! m.core(0).packets(Direction::In).inc();
//! m.core(0).jitter(JitterEvent::Late).inc();
//! m.sip_response(200);
//! m.provider_latency(Provider::Assistant, std::time::Duration::from_millis(120));
//! ```

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use voxgate_engine::worker::{SERVICE_LATENESS_BOUNDS_US, SERVICE_LATENESS_BUCKETS};

use crate::store::CallOutcome;

/// Highest number of media cores with their own series.
pub const MAX_CORES: usize = 64;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    /// Sets the total: for mirroring a monotonic count kept elsewhere. The media cores
    /// live in `voxgate-engine`, which cannot see this crate, so the control thread copies
    /// each core's totals here (e.g. from its periodic stats event) with `set`.
    pub fn set(&self, total: u64) {
        self.0.store(total, Ordering::Relaxed);
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    /// Subtracts one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Packet direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from the network.
    In,
    /// Sent to the network.
    Out,
}

/// Jitter-buffer event kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JitterEvent {
    /// A packet never arrived.
    Lost,
    /// A packet arrived after its playout time.
    Late,
    /// A frame was concealed (PLC).
    Concealed,
}

/// The queues between the control thread and a media core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// Control → core commands.
    Command,
    /// Core → control events.
    Event,
}

/// External providers with latency histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Speech to text (end of speech → final result).
    SpeechToText,
    /// Text to speech (request → first audio).
    TextToSpeech,
    /// Assistant (request → response).
    Assistant,
}

impl Provider {
    const ALL: [Provider; 3] = [
        Provider::SpeechToText,
        Provider::TextToSpeech,
        Provider::Assistant,
    ];
    fn label(self) -> &'static str {
        match self {
            Provider::SpeechToText => "stt",
            Provider::TextToSpeech => "tts",
            Provider::Assistant => "assistant",
        }
    }
}

/// Counters of one media core, on their own cache lines.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct CoreMetrics {
    packets_in: Counter,
    packets_out: Counter,
    srtp_auth_failures: Counter,
    srtp_replayed: Counter,
    srtp_protect_failures: Counter,
    jb_lost: Counter,
    jb_late: Counter,
    jb_concealed: Counter,
    command_queue_full: Counter,
    event_queue_full: Counter,
    service_lateness: [Counter; SERVICE_LATENESS_BUCKETS],
    service_lateness_sum_us: Counter,
    cpu_ns: Counter,
}

impl CoreMetrics {
    /// RTP packets in or out.
    #[inline]
    pub fn packets(&self, d: Direction) -> &Counter {
        match d {
            Direction::In => &self.packets_in,
            Direction::Out => &self.packets_out,
        }
    }
    /// SRTP/SRTCP authentication failures.
    #[inline]
    pub fn srtp_auth_failures(&self) -> &Counter {
        &self.srtp_auth_failures
    }
    /// SRTP/SRTCP packets dropped as replays (duplicate or older than the window).
    #[inline]
    pub fn srtp_replayed(&self) -> &Counter {
        &self.srtp_replayed
    }
    /// Outgoing packets that could not be protected (master key lifetime reached).
    #[inline]
    pub fn srtp_protect_failures(&self) -> &Counter {
        &self.srtp_protect_failures
    }
    /// Jitter-buffer events.
    #[inline]
    pub fn jitter(&self, e: JitterEvent) -> &Counter {
        match e {
            JitterEvent::Lost => &self.jb_lost,
            JitterEvent::Late => &self.jb_late,
            JitterEvent::Concealed => &self.jb_concealed,
        }
    }
    /// Adds session timer services by lateness bucket (the engine's
    /// `CoreStats::service_lateness` buckets) and their summed lateness, µs.
    pub fn add_service_lateness(&self, buckets: &[u64; SERVICE_LATENESS_BUCKETS], sum_us: u64) {
        for (c, n) in self.service_lateness.iter().zip(buckets) {
            c.add(*n);
        }
        self.service_lateness_sum_us.add(sum_us);
    }
    /// CPU time of the core's thread, ns.
    #[inline]
    pub fn cpu_ns(&self) -> &Counter {
        &self.cpu_ns
    }
    /// A queue to or from this core was full.
    #[inline]
    pub fn queue_full(&self, q: Queue) -> &Counter {
        match q {
            Queue::Command => &self.command_queue_full,
            Queue::Event => &self.event_queue_full,
        }
    }
}

/// Latency histogram buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0,
];

/// A fixed-bucket histogram (cumulative on exposition).
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [Counter; LATENCY_BUCKETS.len()],
    count: Counter,
    sum_micros: Counter,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| s <= *b) {
            self.buckets[i].inc();
        }
        self.count.inc();
        self.sum_micros
            .add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }
    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.get()
    }
}

const OUTCOMES: [&str; 5] = [
    "completed",
    "transferred",
    "transfer_failed",
    "call_failed",
    "rejected",
];

/// The registry. Get it with [`metrics()`].
#[derive(Debug)]
pub struct Metrics {
    /// Calls up now (admitted, not ended).
    pub active_calls: Gauge,
    /// 1 while draining.
    pub draining: Gauge,
    calls_by_outcome: [Counter; OUTCOMES.len()],
    sip_responses: Box<[Counter]>,
    cores: Box<[CoreMetrics]>,
    provider_latency: [Histogram; 3],
    /// Provider errors (connect failures, bad responses).
    pub provider_errors: [Counter; 3],
    /// Store operations that failed.
    pub store_errors: Counter,
    /// Call-record operations that found the group-commit queue full (and waited).
    pub store_queue_full: Counter,
    /// Log lines dropped from the in-memory ring because it was full (oldest first).
    pub log_ring_evictions: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            active_calls: Gauge::default(),
            draining: Gauge::default(),
            calls_by_outcome: Default::default(),
            sip_responses: (100..700).map(|_| Counter::default()).collect(),
            cores: (0..MAX_CORES).map(|_| CoreMetrics::default()).collect(),
            provider_latency: Default::default(),
            provider_errors: Default::default(),
            store_errors: Counter::default(),
            store_queue_full: Counter::default(),
            log_ring_evictions: Counter::default(),
        }
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The process-wide registry.
pub fn metrics() -> &'static Metrics {
    METRICS.get_or_init(Metrics::default)
}

impl Metrics {
    /// Counters of media core `core` (cores ≥ [`MAX_CORES`] share the last slot).
    #[inline]
    pub fn core(&self, core: usize) -> &CoreMetrics {
        &self.cores[core.min(MAX_CORES - 1)]
    }

    /// Counts a finished call by outcome.
    pub fn call_ended(&self, outcome: &CallOutcome) {
        let i = OUTCOMES
            .iter()
            .position(|o| *o == outcome.label())
            .unwrap_or(0);
        self.calls_by_outcome[i].inc();
    }

    /// Calls ended with the outcome labelled `label` so far.
    pub fn calls_with_outcome(&self, label: &str) -> u64 {
        OUTCOMES
            .iter()
            .position(|o| *o == label)
            .map_or(0, |i| self.calls_by_outcome[i].get())
    }

    /// Counts a SIP response sent (status 100–699; others ignored).
    pub fn sip_response(&self, status: u16) {
        if let Some(c) = status
            .checked_sub(100)
            .and_then(|i| self.sip_responses.get(usize::from(i)))
        {
            c.inc();
        }
    }

    /// Records a provider latency.
    pub fn provider_latency(&self, p: Provider, d: Duration) {
        self.provider_latency[p as usize].observe(d);
    }

    /// Counts a provider error.
    pub fn provider_error(&self, p: Provider) {
        self.provider_errors[p as usize].inc();
    }

    /// Prometheus text exposition (version 0.0.4). `cores` = media cores to report.
    pub fn render(&self, cores: usize) -> String {
        let mut o = String::with_capacity(8192);
        let cores = cores.clamp(1, MAX_CORES);
        header(&mut o, "voxgate_active_calls", "gauge", "Calls up now.");
        let _ = writeln!(o, "voxgate_active_calls {}", self.active_calls.get());
        header(
            &mut o,
            "voxgate_draining",
            "gauge",
            "1 while draining (SIGTERM).",
        );
        let _ = writeln!(o, "voxgate_draining {}", self.draining.get());
        header(
            &mut o,
            "voxgate_calls_total",
            "counter",
            "Finished calls by outcome.",
        );
        for (i, l) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                o,
                "voxgate_calls_total{{outcome=\"{l}\"}} {}",
                self.calls_by_outcome[i].get()
            );
        }
        header(
            &mut o,
            "voxgate_sip_responses_total",
            "counter",
            "SIP responses sent by status code (retransmissions included).",
        );
        for (i, c) in self.sip_responses.iter().enumerate() {
            let v = c.get();
            if v > 0 {
                let _ = writeln!(o, "voxgate_sip_responses_total{{code=\"{}\"}} {v}", i + 100);
            }
        }
        let per_core =
            |o: &mut String,
             name: &str,
             help: &str,
             series: &dyn Fn(&CoreMetrics) -> Vec<(&'static str, f64)>| {
                header(o, name, "counter", help);
                for (i, c) in self.cores[..cores].iter().enumerate() {
                    for (label, v) in series(c) {
                        let sep = if label.is_empty() { "" } else { "," };
                        let _ = writeln!(o, "{name}{{core=\"{i}\"{sep}{label}}} {v}");
                    }
                }
            };
        let n = |c: &Counter| c.get() as f64;
        per_core(
            &mut o,
            "voxgate_rtp_packets_total",
            "RTP packets per media core and direction.",
            &|c| {
                vec![
                    ("direction=\"in\"", n(&c.packets_in)),
                    ("direction=\"out\"", n(&c.packets_out)),
                ]
            },
        );
        per_core(
            &mut o,
            "voxgate_srtp_auth_failures_total",
            "SRTP/SRTCP authentication failures per media core.",
            &|c| vec![("", n(&c.srtp_auth_failures))],
        );
        per_core(
            &mut o,
            "voxgate_srtp_replayed_total",
            "SRTP/SRTCP packets dropped as replays (duplicate or outside the window) per media core.",
            &|c| vec![("", n(&c.srtp_replayed))],
        );
        per_core(
            &mut o,
            "voxgate_srtp_protect_failures_total",
            "Outgoing SRTP/SRTCP packets not sent because they could not be protected (master key lifetime) per media core.",
            &|c| vec![("", n(&c.srtp_protect_failures))],
        );
        per_core(
            &mut o,
            "voxgate_jitter_buffer_events_total",
            "Jitter-buffer lost/late/concealed frames per media core.",
            &|c| {
                vec![
                    ("kind=\"lost\"", n(&c.jb_lost)),
                    ("kind=\"late\"", n(&c.jb_late)),
                    ("kind=\"concealed\"", n(&c.jb_concealed)),
                ]
            },
        );
        per_core(
            &mut o,
            "voxgate_queue_full_total",
            "Full command/event queue events per media core.",
            &|c| {
                vec![
                    ("queue=\"command\"", n(&c.command_queue_full)),
                    ("queue=\"event\"", n(&c.event_queue_full)),
                ]
            },
        );
        header(
            &mut o,
            "voxgate_media_core_service_lateness_seconds",
            "histogram",
            "How late each media core served session timers (playout, send, RTCP) past their deadlines; above 0.00025 s (the coalescing tick) the core fell behind.",
        );
        for (i, c) in self.cores[..cores].iter().enumerate() {
            let counts: Vec<u64> = c.service_lateness.iter().map(Counter::get).collect();
            histogram_series(
                &mut o,
                "voxgate_media_core_service_lateness_seconds",
                &format!("core=\"{i}\""),
                SERVICE_LATENESS_BOUNDS_US.iter().map(|b| *b as f64 / 1e6),
                &counts,
                c.service_lateness_sum_us.get() as f64 / 1e6,
                counts.iter().sum(),
            );
        }
        per_core(
            &mut o,
            "voxgate_media_core_cpu_seconds_total",
            "CPU time of each media core's thread (user and system, the kernel's packet work for its sockets included).",
            &|c| vec![("", c.cpu_ns.get() as f64 / 1e9)],
        );
        header(&mut o, "voxgate_provider_latency_seconds", "histogram", "Provider latency: stt end-of-speech to final, tts request to first audio, assistant round trip.");
        for p in Provider::ALL {
            let h = &self.provider_latency[p as usize];
            let counts: Vec<u64> = h.buckets.iter().map(Counter::get).collect();
            histogram_series(
                &mut o,
                "voxgate_provider_latency_seconds",
                &format!("provider=\"{}\"", p.label()),
                LATENCY_BUCKETS,
                &counts,
                h.sum_micros.get() as f64 / 1e6,
                h.count.get(),
            );
        }
        header(
            &mut o,
            "voxgate_provider_errors_total",
            "counter",
            "Provider errors.",
        );
        for p in Provider::ALL {
            let _ = writeln!(
                o,
                "voxgate_provider_errors_total{{provider=\"{}\"}} {}",
                p.label(),
                self.provider_errors[p as usize].get()
            );
        }
        header(
            &mut o,
            "voxgate_store_errors_total",
            "counter",
            "Failed store operations.",
        );
        let _ = writeln!(o, "voxgate_store_errors_total {}", self.store_errors.get());
        header(
            &mut o,
            "voxgate_store_queue_full_total",
            "counter",
            "Call-record operations that found the group-commit queue full and waited.",
        );
        let _ = writeln!(
            o,
            "voxgate_store_queue_full_total {}",
            self.store_queue_full.get()
        );
        header(
            &mut o,
            "voxgate_log_ring_evictions_total",
            "counter",
            "Log lines evicted from the in-memory search ring.",
        );
        let _ = writeln!(
            o,
            "voxgate_log_ring_evictions_total {}",
            self.log_ring_evictions.get()
        );
        o
    }
}

/// One labelled series of a histogram: cumulative `_bucket` lines for `bounds` (the
/// upper bounds, seconds) and `+Inf`, then `_sum` (seconds) and `_count`. `counts[i]`
/// is the number of observations in bucket `i` alone; `count` is every observation,
/// those above the last bound included.
fn histogram_series(
    o: &mut String,
    name: &str,
    label: &str,
    bounds: impl IntoIterator<Item = f64>,
    counts: &[u64],
    sum_secs: f64,
    count: u64,
) {
    let mut cum = 0;
    for (b, n) in bounds.into_iter().zip(counts) {
        cum += n;
        let _ = writeln!(o, "{name}_bucket{{{label},le=\"{b}\"}} {cum}");
    }
    let _ = writeln!(o, "{name}_bucket{{{label},le=\"+Inf\"}} {count}");
    let _ = writeln!(o, "{name}_sum{{{label}}} {sum_secs}");
    let _ = writeln!(o, "{name}_count{{{label}}} {count}");
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_in_exposition() {
        let m = Metrics::default();
        m.provider_latency(Provider::Assistant, Duration::from_millis(40));
        m.provider_latency(Provider::Assistant, Duration::from_millis(400));
        let text = m.render(2);
        assert!(text.contains(
            "voxgate_provider_latency_seconds_bucket{provider=\"assistant\",le=\"0.05\"} 1"
        ));
        assert!(text.contains(
            "voxgate_provider_latency_seconds_bucket{provider=\"assistant\",le=\"0.5\"} 2"
        ));
        assert!(text.contains("voxgate_provider_latency_seconds_count{provider=\"assistant\"} 2"));
    }

    #[test]
    fn core_service_lateness_is_a_cumulative_histogram_per_core() {
        let m = Metrics::default();
        let mut buckets = [0; SERVICE_LATENESS_BUCKETS];
        buckets[0] = 97;
        buckets[2] = 2;
        buckets[SERVICE_LATENESS_BUCKETS - 1] = 1;
        m.core(1).add_service_lateness(&buckets, 80_500);
        m.core(1).cpu_ns().add(1_500_000_000);
        let text = m.render(2);
        for line in [
            "voxgate_media_core_service_lateness_seconds_bucket{core=\"1\",le=\"0.00025\"} 97",
            "voxgate_media_core_service_lateness_seconds_bucket{core=\"1\",le=\"0.0005\"} 97",
            "voxgate_media_core_service_lateness_seconds_bucket{core=\"1\",le=\"0.001\"} 99",
            "voxgate_media_core_service_lateness_seconds_bucket{core=\"1\",le=\"0.05\"} 99",
            "voxgate_media_core_service_lateness_seconds_bucket{core=\"1\",le=\"+Inf\"} 100",
            "voxgate_media_core_service_lateness_seconds_sum{core=\"1\"} 0.0805",
            "voxgate_media_core_service_lateness_seconds_count{core=\"1\"} 100",
            "voxgate_media_core_service_lateness_seconds_count{core=\"0\"} 0",
            "voxgate_media_core_cpu_seconds_total{core=\"1\"} 1.5",
        ] {
            assert!(text.contains(line), "missing {line}");
        }
    }

    #[test]
    fn out_of_range_sip_codes_are_ignored() {
        let m = Metrics::default();
        m.sip_response(99);
        m.sip_response(700);
        m.sip_response(486);
        let text = m.render(1);
        assert!(text.contains("voxgate_sip_responses_total{code=\"486\"} 1"));
        assert_eq!(text.matches("voxgate_sip_responses_total{").count(), 1);
    }
}
