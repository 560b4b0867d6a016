//! What the gateway sends the assistant on each turn.

use serde_json::{json, Map, Value};

use super::context::Context;

/// Events the gateway reports to the assistant as the turn's input text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallEvent {
    /// The caller hung up (`vgwHangUp`).
    HangUp,
    /// Nothing was said within the post-response timeout (`vgwPostResponseTimeout`).
    PostResponseTimeout,
    /// No final utterance arrived in time (`vgwFinalUtteranceTimeout`).
    FinalUtteranceTimeout,
    /// A turn forced by `vgwActForceNoInputTurn` (`vgwNoInputTurn`).
    NoInputTurn,
    /// A transfer failed and the call stays up (`vgwCallTransferFailed`).
    CallTransferFailed,
}

impl CallEvent {
    /// The word sent as `input.text`.
    pub fn word(self) -> &'static str {
        match self {
            CallEvent::HangUp => "vgwHangUp",
            CallEvent::PostResponseTimeout => "vgwPostResponseTimeout",
            CallEvent::FinalUtteranceTimeout => "vgwFinalUtteranceTimeout",
            CallEvent::NoInputTurn => "vgwNoInputTurn",
            CallEvent::CallTransferFailed => "vgwCallTransferFailed",
        }
    }

    /// Parses an event word.
    pub fn from_word(word: &str) -> Option<CallEvent> {
        [
            CallEvent::HangUp,
            CallEvent::PostResponseTimeout,
            CallEvent::FinalUtteranceTimeout,
            CallEvent::NoInputTurn,
            CallEvent::CallTransferFailed,
        ]
        .into_iter()
        .find(|e| e.word() == word)
    }
}

/// The kind of input of one turn.
#[derive(Debug, Clone, PartialEq)]
pub enum InputKind {
    /// The first turn of a call: empty text, so `welcome` nodes fire.
    Welcome,
    /// Recognised speech.
    Text(String),
    /// DTMF digits collected from the keypad (`*`, `#`, `A`-`D` included).
    Dtmf(String),
    /// A gateway event.
    Event(CallEvent),
}

/// Per-turn flags, sent as `input.integrations.voice_telephony` (and as the legacy
/// `vgw*` context variables). They are valid for one turn only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnFlags {
    /// The caller spoke or pressed a key over the prompt.
    pub barge_in_occurred: bool,
    /// The post-response timeout expired.
    pub post_response_timeout_occurred: bool,
    /// The final-utterance timeout expired.
    pub final_utterance_timeout_occurred: bool,
    /// Outcome of a DTMF collection, when one was active.
    pub dtmf_collection_succeeded: Option<bool>,
    /// The speech-to-text result (Watson STT JSON) that produced the text, if any.
    pub speech_to_text_result: Option<Value>,
}

/// One turn's input: its kind plus the per-turn flags.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnInput {
    /// Text, digits, event or welcome.
    pub kind: InputKind,
    /// Per-turn flags.
    pub flags: TurnFlags,
}

impl TurnInput {
    /// The first turn of a call.
    pub fn welcome() -> TurnInput {
        TurnInput {
            kind: InputKind::Welcome,
            flags: TurnFlags::default(),
        }
    }

    /// Recognised speech.
    pub fn text(text: impl Into<String>) -> TurnInput {
        TurnInput {
            kind: InputKind::Text(text.into()),
            flags: TurnFlags::default(),
        }
    }

    /// DTMF digits.
    pub fn dtmf(digits: impl Into<String>) -> TurnInput {
        TurnInput {
            kind: InputKind::Dtmf(digits.into()),
            flags: TurnFlags::default(),
        }
    }

    /// A gateway event; sets the matching per-turn flag.
    pub fn event(event: CallEvent) -> TurnInput {
        let mut flags = TurnFlags::default();
        match event {
            CallEvent::PostResponseTimeout => flags.post_response_timeout_occurred = true,
            CallEvent::FinalUtteranceTimeout => flags.final_utterance_timeout_occurred = true,
            _ => {}
        }
        TurnInput {
            kind: InputKind::Event(event),
            flags,
        }
    }

    /// Marks that barge-in occurred on this turn.
    pub fn with_barge_in(mut self, occurred: bool) -> TurnInput {
        self.flags.barge_in_occurred = occurred;
        self
    }

    /// Records the outcome of the active DTMF collection.
    pub fn with_dtmf_collection(mut self, succeeded: bool) -> TurnInput {
        self.flags.dtmf_collection_succeeded = Some(succeeded);
        self
    }

    /// Attaches the STT result JSON.
    pub fn with_stt_result(mut self, result: Value) -> TurnInput {
        self.flags.speech_to_text_result = Some(result);
        self
    }

    /// Whether the input is DTMF.
    pub fn is_dtmf(&self) -> bool {
        matches!(self.kind, InputKind::Dtmf(_))
    }

    /// The `input.text` sent to the assistant.
    pub fn text_value(&self) -> &str {
        match &self.kind {
            InputKind::Welcome => "",
            InputKind::Text(t) | InputKind::Dtmf(t) => t,
            InputKind::Event(e) => e.word(),
        }
    }

    /// The `input.integrations.voice_telephony` object of a v2 message request.
    pub fn voice_telephony_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("is_dtmf".into(), Value::Bool(self.is_dtmf()));
        m.insert(
            "barge_in_occurred".into(),
            Value::Bool(self.flags.barge_in_occurred),
        );
        if self.flags.post_response_timeout_occurred {
            m.insert("post_response_timeout_occurred".into(), Value::Bool(true));
        }
        if self.flags.final_utterance_timeout_occurred {
            m.insert("final_utterance_timeout_occurred".into(), Value::Bool(true));
        }
        if let Some(ok) = self.flags.dtmf_collection_succeeded {
            m.insert("dtmf_collection_succeeded".into(), Value::Bool(ok));
        }
        if let Some(r) = &self.flags.speech_to_text_result {
            m.insert("speech_to_text_result".into(), r.clone());
        }
        Value::Object(m)
    }

    /// The whole v2 `input` object.
    pub fn to_v2_json(&self) -> Value {
        json!({
            "message_type": "text",
            "text": self.text_value(),
            "integrations": { "voice_telephony": self.voice_telephony_json() },
            "options": { "return_context": true },
        })
    }

    /// Parses a v2 `input` object (the server side of [`TurnInput::to_v2_json`]).
    pub fn from_v2_json(input: &Value) -> TurnInput {
        let text = input.get("text").and_then(Value::as_str).unwrap_or("");
        let vt = input.pointer("/integrations/voice_telephony");
        let flag = |k: &str| vt.and_then(|v| v.get(k)).and_then(Value::as_bool);
        let kind = if text.is_empty() {
            InputKind::Welcome
        } else if let Some(e) = CallEvent::from_word(text) {
            InputKind::Event(e)
        } else if flag("is_dtmf") == Some(true) {
            InputKind::Dtmf(text.to_string())
        } else {
            InputKind::Text(text.to_string())
        };
        TurnInput {
            kind,
            flags: TurnFlags {
                barge_in_occurred: flag("barge_in_occurred").unwrap_or(false),
                post_response_timeout_occurred: flag("post_response_timeout_occurred")
                    .unwrap_or(false),
                final_utterance_timeout_occurred: flag("final_utterance_timeout_occurred")
                    .unwrap_or(false),
                dtmf_collection_succeeded: flag("dtmf_collection_succeeded"),
                speech_to_text_result: vt.and_then(|v| v.get("speech_to_text_result")).cloned(),
            },
        }
    }

    /// Writes this turn's legacy `vgw*` variables into the skill's user-defined context,
    /// first clearing the ones left from the previous turn (they are per-turn).
    pub fn apply_legacy(&self, context: &mut Context) {
        let ud = context.user_defined_mut();
        for k in PER_TURN_LEGACY {
            ud.remove(*k);
        }
        let yes_no = |b: bool| Value::String(if b { "Yes" } else { "No" }.into());
        ud.insert("vgwIsDTMF".into(), yes_no(self.is_dtmf()));
        ud.insert(
            "vgwBargeInOccurred".into(),
            yes_no(self.flags.barge_in_occurred),
        );
        if let Some(ok) = self.flags.dtmf_collection_succeeded {
            ud.insert("vgwDTMFCollectionSucceeded".into(), yes_no(ok));
        }
        match self.kind {
            InputKind::Event(CallEvent::HangUp) => {
                ud.insert("vgwHangUp".into(), yes_no(true));
            }
            InputKind::Event(CallEvent::CallTransferFailed) => {
                ud.insert("vgwCallTransferFailed".into(), yes_no(true));
            }
            _ => {}
        }
    }
}

/// Legacy variables that describe one turn only.
const PER_TURN_LEGACY: &[&str] = &[
    "vgwIsDTMF",
    "vgwBargeInOccurred",
    "vgwDTMFCollectionSucceeded",
    "vgwHangUp",
    "vgwCallTransferFailed",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_input_round_trips_flags_and_kind() {
        let cases = [
            TurnInput::welcome(),
            TurnInput::text("agent")
                .with_barge_in(true)
                .with_stt_result(json!({"result_index": 0})),
            TurnInput::dtmf("12#").with_dtmf_collection(false),
            TurnInput::event(CallEvent::PostResponseTimeout),
            TurnInput::event(CallEvent::FinalUtteranceTimeout),
            TurnInput::event(CallEvent::CallTransferFailed),
        ];
        for t in cases {
            assert_eq!(TurnInput::from_v2_json(&t.to_v2_json()), t);
        }
    }

    #[test]
    fn legacy_flags_are_per_turn() {
        let mut ctx = Context::new();
        TurnInput::event(CallEvent::CallTransferFailed).apply_legacy(&mut ctx);
        assert_eq!(ctx.variable("vgwCallTransferFailed"), Some(&json!("Yes")));
        TurnInput::dtmf("1")
            .with_dtmf_collection(true)
            .apply_legacy(&mut ctx);
        assert_eq!(ctx.variable("vgwCallTransferFailed"), None);
        assert_eq!(ctx.variable("vgwIsDTMF"), Some(&json!("Yes")));
        assert_eq!(
            ctx.variable("vgwDTMFCollectionSucceeded"),
            Some(&json!("Yes"))
        );
    }
}
