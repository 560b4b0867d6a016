//! Copies the media engine's cumulative counters into the Prometheus registry
//! ([`crate::metrics`]) from the control side.
//!
//! Nothing here runs on a media core or per packet. The engine already keeps each
//! session's counters ([`SessionStats`], reported every few seconds as `Event::Stats`
//! and once more in `Event::Closed`) and each core's SRTP and queue-full counters
//! ([`Engine::core_stats`]). The relay thread that drains the engine's events feeds
//! them to [`MediaMetrics`], which adds what grew since the last report to the series of
//! the core that owns the session. Adding deltas (rather than setting totals) keeps the
//! process-wide series right when more than one engine runs in a process (tests).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use voxgate_engine::session::SessionStats;
use voxgate_engine::worker::{CoreStats, Engine, Event, SessionId};

use crate::metrics::{metrics, Direction, JitterEvent, Queue};

/// How often the per-core engine counters are copied.
pub const CORE_COPY_INTERVAL: Duration = Duration::from_secs(1);

/// What has been copied so far.
#[derive(Debug, Default)]
pub struct MediaMetrics {
    /// Open sessions: owning core and the counters last copied.
    sessions: HashMap<SessionId, (usize, SessionStats)>,
    /// Per-core engine counters last copied (index = core).
    cores: Vec<CoreStats>,
    last_core_copy: Option<Instant>,
}

impl MediaMetrics {
    /// A session was opened on `core`.
    pub fn opened(&mut self, id: SessionId, core: usize) {
        self.sessions.insert(id, (core, SessionStats::default()));
    }

    /// An engine event: `Stats` and `Closed` carry the session's cumulative counters.
    pub fn observe(&mut self, ev: &Event) {
        let (id, stats, closed) = match ev {
            Event::Stats { id, stats } => (id, stats, false),
            Event::Closed { id, stats } => (id, stats, true),
            _ => return,
        };
        let Some((core, last)) = self.sessions.get_mut(id) else {
            return;
        };
        let m = metrics().core(*core);
        m.packets(Direction::In)
            .add(stats.packets_in.saturating_sub(last.packets_in));
        m.packets(Direction::Out)
            .add(stats.packets_out.saturating_sub(last.packets_out));
        m.jitter(JitterEvent::Lost)
            .add(stats.lost.saturating_sub(last.lost));
        m.jitter(JitterEvent::Late)
            .add(stats.late.saturating_sub(last.late));
        m.jitter(JitterEvent::Concealed)
            .add(stats.concealed.saturating_sub(last.concealed));
        *last = *stats;
        if closed {
            self.sessions.remove(id);
        }
    }

    /// Copies the engine's per-core counters (SRTP authentication failures, replays and
    /// protect failures, full
    /// queues, timer-service lateness, CPU time) when [`CORE_COPY_INTERVAL`] has passed since the last copy.
    pub fn copy_engine(&mut self, engine: &Engine, now: Instant) {
        if self
            .last_core_copy
            .is_some_and(|t| now.saturating_duration_since(t) < CORE_COPY_INTERVAL)
        {
            return;
        }
        self.last_core_copy = Some(now);
        self.copy_cores(&engine.core_stats());
    }

    /// Adds what each core's counters grew by since the last copy.
    pub fn copy_cores(&mut self, now: &[CoreStats]) {
        for s in now {
            if self.cores.len() <= s.core {
                self.cores.resize(s.core + 1, CoreStats::default());
            }
            let last = &mut self.cores[s.core];
            let m = metrics().core(s.core);
            let grown = s.since(last);
            m.srtp_auth_failures().add(grown.srtp_auth_failed);
            m.srtp_replayed().add(grown.srtp_replayed);
            m.srtp_protect_failures().add(grown.srtp_protect_failed);
            m.queue_full(Queue::Command).add(grown.commands_rejected);
            m.queue_full(Queue::Event).add(grown.events_dropped);
            m.add_service_lateness(&grown.service_lateness, grown.service_lateness_sum_us);
            m.cpu_ns().add(grown.cpu_ns);
            *last = *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every SRTP drop counter of a core reaches `/metrics` by what it grew since the
    /// last copy (core 61: no other test or core uses it).
    #[test]
    fn a_cores_srtp_drops_reach_the_metrics_by_their_growth() {
        let core = 61;
        let m = metrics().core(core);
        let before = (
            m.srtp_auth_failures().get(),
            m.srtp_replayed().get(),
            m.srtp_protect_failures().get(),
        );
        let mut mm = MediaMetrics::default();
        let mut s = CoreStats::default();
        s.core = core;
        s.srtp_auth_failed = 4;
        s.srtp_replayed = 9;
        s.srtp_protect_failed = 1;
        mm.copy_cores(&[s]);
        s.srtp_replayed = 12;
        mm.copy_cores(&[s]);
        assert_eq!(m.srtp_auth_failures().get() - before.0, 4);
        assert_eq!(m.srtp_replayed().get() - before.1, 12);
        assert_eq!(m.srtp_protect_failures().get() - before.2, 1);
    }
}
