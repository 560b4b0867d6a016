//! The call layer's writer for call records, usage and call metrics.
//!
//! ```no_run
//! # async fn f(rec: voxgate::cdr::CallRecorder) -> Result<(), voxgate::store::StoreError> {
//! use voxgate::store::{CallEnd, CallOutcome, CallStart};
//! use voxgate::store::records::now_millis;
//! let id = rec.start(CallStart {
//!     started_at: now_millis(),
//!     caller_number: "+15551230000".into(),
//!     called_number: "+19585550123".into(),
//!     sip_call_id: "a84b4c76e66710@pc33".into(),
//!     instance_id: rec.instance_id().into(),
//!     sip: Default::default(),
//! }).await?;                                   // counts the caller for MAU, active_calls += 1
//! rec.answer(id, now_millis()).await?;
//! rec.end(id, CallEnd { ended_at: now_millis(), outcome: CallOutcome::Completed,
//!     failure_details: None, turns: 3, turn_latencies: vec![], rtp: None,
//!     cdr_custom_data: None, warnings: vec![] }).await?;         // active_calls -= 1, calls_total{outcome} += 1
//! # Ok(()) }
//! ```
//! A call refused before admission (403/486/488/503) is written with
//! [`CallRecorder::rejected`]: one record with outcome `rejected {status}`. It does not
//! count towards MAU (the caller was never served) and does not touch `active_calls`.

use crate::live_calls::{LiveCallState, LiveCalls, LiveUpdate};
use crate::metrics::metrics;
use crate::store::{CallEnd, CallOutcome, CallRecordId, CallRecordWriter, CallStart, StoreError};

/// Writes call records; cheap to clone (one per call task is fine).
#[derive(Debug, Clone)]
pub struct CallRecorder {
    writer: CallRecordWriter,
    store_caller_numbers: bool,
    instance_id: String,
    live: LiveCalls,
}

impl CallRecorder {
    /// A recorder; `store_caller_numbers = false` keeps only the caller hash.
    pub fn new(writer: CallRecordWriter, store_caller_numbers: bool, instance_id: String) -> Self {
        Self {
            writer,
            store_caller_numbers,
            instance_id,
            live: LiveCalls::default(),
        }
    }

    /// This node's calls while they are up (state and turns so far).
    pub fn live_calls(&self) -> &LiveCalls {
        &self.live
    }

    /// The call reached a turn or changed state (the console's live view; not stored).
    pub fn update_live(&self, id: CallRecordId, update: LiveUpdate) {
        self.live.update(id, update);
    }

    /// This node's instance id.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// An admitted call started: record it (and its caller's monthly activity) durably.
    /// Group-committed with other calls' writes; returns once committed.
    pub async fn start(&self, start: CallStart) -> Result<CallRecordId, StoreError> {
        let id = self
            .writer
            .start(start, self.store_caller_numbers, true)
            .await
            .inspect_err(|_| metrics().store_errors.inc())?;
        metrics().active_calls.inc();
        self.live.started(id);
        Ok(id)
    }

    /// The call was answered (200 OK sent).
    pub async fn answer(&self, id: CallRecordId, at: i64) -> Result<(), StoreError> {
        self.live
            .update(id, LiveUpdate::State(LiveCallState::Answered));
        self.writer
            .answer(id, at)
            .await
            .inspect_err(|_| metrics().store_errors.inc())
    }

    /// The call ended. Decrements `active_calls` even if the write fails.
    pub async fn end(&self, id: CallRecordId, end: CallEnd) -> Result<(), StoreError> {
        metrics().active_calls.dec();
        metrics().call_ended(&end.outcome);
        let written = self
            .writer
            .end(id, end)
            .await
            .inspect_err(|_| metrics().store_errors.inc());
        // After the write: the store's row is closed before the live view lets go.
        self.live.ended(id);
        written
    }

    /// A call refused with `status` before admission: one complete record, no MAU.
    pub async fn rejected(&self, start: CallStart, status: u16) -> Result<(), StoreError> {
        let outcome = CallOutcome::Rejected { status };
        metrics().call_ended(&outcome);
        let ended_at = start.started_at;
        let id = self
            .writer
            .start(start, self.store_caller_numbers, false)
            .await
            .inspect_err(|_| metrics().store_errors.inc())?;
        self.writer
            .end(
                id,
                CallEnd {
                    ended_at,
                    outcome,
                    failure_details: None,
                    turns: 0,
                    turn_latencies: Vec::new(),
                    rtp: None,
                    cdr_custom_data: None,
                    warnings: vec![],
                },
            )
            .await
            .inspect_err(|_| metrics().store_errors.inc())
    }
}
