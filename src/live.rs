//! The state new calls read without a restart: integration settings, the number list
//! and the lifecycle (draining) flag.
//!
//! Writers (admin API, SIGHUP reload, SIGTERM) publish through [`LiveState`]; the SIP
//! layer holds a clone and reads, per INVITE:
//! ```
//! # let live = voxgate::live::LiveState::new(Default::default(), Default::default());
//! if live.is_draining() { /* answer 503 */ }
//! let settings = live.settings();            // Arc<IntegrationSettings>, a snapshot
//! let known = live.numbers().contains_dialed("+19585550123");
//! # let _ = (settings, known);
//! ```
//! Reads are a `watch::Receiver::borrow` (a read lock held for an `Arc` clone), cheap
//! enough per INVITE. A call keeps the `Arc` it took at INVITE time for its whole life,
//! so a settings change applies to new calls only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::metrics::metrics;
use crate::numbers::NumberSet;
use crate::settings::IntegrationSettings;

/// Lifecycle phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Accepting calls.
    Running,
    /// SIGTERM received: new INVITEs get 503; active calls may run until `deadline`,
    /// then the call layer ends them with BYE.
    Draining {
        /// When remaining calls must be ended.
        deadline: Instant,
    },
}

#[derive(Debug)]
struct Shared {
    settings: watch::Sender<Arc<IntegrationSettings>>,
    numbers: watch::Sender<Arc<NumberSet>>,
    phase: watch::Sender<Phase>,
    draining: AtomicBool,
    store_ok: AtomicBool,
}

/// Handle to the live state; cheap to clone.
#[derive(Debug, Clone)]
pub struct LiveState {
    shared: Arc<Shared>,
}

impl LiveState {
    /// Starts in [`Phase::Running`] with the given settings and numbers.
    pub fn new(settings: IntegrationSettings, numbers: NumberSet) -> Self {
        Self {
            shared: Arc::new(Shared {
                settings: watch::Sender::new(Arc::new(settings)),
                numbers: watch::Sender::new(Arc::new(numbers)),
                phase: watch::Sender::new(Phase::Running),
                draining: AtomicBool::new(false),
                store_ok: AtomicBool::new(true),
            }),
        }
    }

    /// Current settings snapshot.
    pub fn settings(&self) -> Arc<IntegrationSettings> {
        Arc::clone(&self.shared.settings.borrow())
    }

    /// Current number list snapshot.
    pub fn numbers(&self) -> Arc<NumberSet> {
        Arc::clone(&self.shared.numbers.borrow())
    }

    /// Publishes new settings (already validated and stored).
    pub fn publish_settings(&self, s: IntegrationSettings) {
        self.shared.settings.send_replace(Arc::new(s));
    }

    /// Publishes a new number list (already stored).
    pub fn publish_numbers(&self, n: NumberSet) {
        self.shared.numbers.send_replace(Arc::new(n));
    }

    /// Subscribes to settings changes.
    pub fn watch_settings(&self) -> watch::Receiver<Arc<IntegrationSettings>> {
        self.shared.settings.subscribe()
    }

    /// Subscribes to changes of the number list.
    pub fn watch_numbers(&self) -> watch::Receiver<Arc<NumberSet>> {
        self.shared.numbers.subscribe()
    }

    /// Subscribes to lifecycle changes (the call layer waits on this for the drain deadline).
    pub fn watch_phase(&self) -> watch::Receiver<Phase> {
        self.shared.phase.subscribe()
    }

    /// Whether new INVITEs must be refused with 503 (one atomic load).
    #[inline]
    pub fn is_draining(&self) -> bool {
        self.shared.draining.load(Ordering::Acquire)
    }

    /// Current phase.
    pub fn phase(&self) -> Phase {
        *self.shared.phase.borrow()
    }

    /// Enters draining (idempotent: a second SIGTERM keeps the first deadline).
    pub fn begin_drain(&self, deadline: Instant) {
        // The phase changes first (under the watch's lock, so two callers cannot both
        // win), then the flag: whoever sees `is_draining()` also sees the deadline.
        let changed = self.shared.phase.send_if_modified(|p| {
            if *p == Phase::Running {
                *p = Phase::Draining { deadline };
                true
            } else {
                false
            }
        });
        if changed {
            metrics().draining.set(1);
            self.shared.draining.store(true, Ordering::Release);
        }
    }

    /// Records whether the store answered the last probe (readiness input).
    pub fn set_store_ok(&self, ok: bool) {
        self.shared.store_ok.store(ok, Ordering::Release);
    }

    /// Ready = running and the store answers. `/healthz` returns 503 otherwise, so a
    /// load balancer (Kamailio dispatcher, Kubernetes) stops sending new calls.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.shared.store_ok.load(Ordering::Acquire)
    }
}
