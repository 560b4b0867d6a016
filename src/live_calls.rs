//! This node's view of its calls while they are up: state and turns so far.
//!
//! The store learns a call's turns only when it ends (one write at start, answer and
//! end), so the admin console's live table would show 0 turns and only ringing/answered.
//! Each call task updates [`LiveCalls`] instead (through its [`crate::cdr::CallRecorder`]),
//! and `GET /v1/calls/live` lays it over the store's open records: calls of this node
//! get their current state and turn, other nodes' calls keep what the store says.
//!
//! Updates happen a few times per call (answer, each turn, hold, transfer), never on the
//! packet path; a plain mutex over a map is enough.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;

use crate::store::CallRecordId;

/// Where a call is, as the console shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveCallState {
    /// Admitted, not answered yet.
    Ringing,
    /// Answered: the conversation is running.
    Answered,
    /// Put on hold (re-INVITE sent) before a transfer.
    OnHold,
    /// REFER sent to an agent; waiting for the outcome.
    Transferring,
}

impl LiveCallState {
    /// The label the API and the console use.
    pub fn label(self) -> &'static str {
        match self {
            LiveCallState::Ringing => "ringing",
            LiveCallState::Answered => "answered",
            LiveCallState::OnHold => "on_hold",
            LiveCallState::Transferring => "transferring",
        }
    }
}

/// One call's live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LiveCall {
    /// State.
    pub state: LiveCallState,
    /// Turns taken so far (the welcome is turn 1).
    pub turns: u32,
}

/// What a call reports while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveUpdate {
    /// A turn finished; its number.
    Turn(u32),
    /// The state changed.
    State(LiveCallState),
    /// Put on hold (`true`) or taken off hold (`false`, back in conversation).
    Hold(bool),
}

/// The calls up on this node, by call-record id; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct LiveCalls {
    calls: Arc<Mutex<HashMap<CallRecordId, LiveCall>>>,
}

impl LiveCalls {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<CallRecordId, LiveCall>) -> T) -> T {
        // A panic while holding the lock cannot leave a map entry half-written.
        f(&mut self.calls.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A call was admitted (ringing, no turns).
    pub fn started(&self, id: CallRecordId) {
        self.with(|m| {
            m.insert(
                id,
                LiveCall {
                    state: LiveCallState::Ringing,
                    turns: 0,
                },
            )
        });
    }

    /// Applies `update` to a call that is up (ignored for unknown calls).
    pub fn update(&self, id: CallRecordId, update: LiveUpdate) {
        self.with(|m| {
            if let Some(c) = m.get_mut(&id) {
                match update {
                    LiveUpdate::Turn(n) => c.turns = c.turns.max(n),
                    LiveUpdate::State(s) => c.state = s,
                    LiveUpdate::Hold(true) => c.state = LiveCallState::OnHold,
                    LiveUpdate::Hold(false) => c.state = LiveCallState::Answered,
                }
            }
        });
    }

    /// The call ended.
    pub fn ended(&self, id: CallRecordId) {
        self.with(|m| m.remove(&id));
    }

    /// The live view of `id`, if it is up on this node.
    pub fn get(&self, id: CallRecordId) -> Option<LiveCall> {
        self.with(|m| m.get(&id).copied())
    }

    /// Calls up on this node.
    pub fn len(&self) -> usize {
        self.with(|m| m.len())
    }

    /// No call is up on this node.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_moves_through_its_states_and_leaves() {
        let live = LiveCalls::default();
        let id = CallRecordId(7);
        live.update(id, LiveUpdate::Turn(3));
        assert_eq!(live.get(id), None, "updates before the start are dropped");
        live.started(id);
        assert_eq!(live.get(id).unwrap().state, LiveCallState::Ringing);
        live.update(id, LiveUpdate::State(LiveCallState::Answered));
        live.update(id, LiveUpdate::Turn(2));
        live.update(id, LiveUpdate::Turn(1));
        assert_eq!(
            live.get(id),
            Some(LiveCall {
                state: LiveCallState::Answered,
                turns: 2
            }),
            "the turn count never goes back"
        );
        live.update(id, LiveUpdate::Hold(true));
        assert_eq!(live.get(id).unwrap().state, LiveCallState::OnHold);
        live.update(id, LiveUpdate::Hold(false));
        assert_eq!(live.get(id).unwrap().state, LiveCallState::Answered);
        live.update(id, LiveUpdate::State(LiveCallState::Transferring));
        assert_eq!(live.get(id).unwrap().state.label(), "transferring");
        assert_eq!(live.len(), 1);
        live.ended(id);
        assert!(live.is_empty());
    }
}
