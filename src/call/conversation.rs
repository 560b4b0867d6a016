//! The conversation of one call, sans-IO.
//!
//! [`Conversation`] is the phone integration's turn logic without any I/O: events in
//! (the call was answered, the assistant replied, the caller spoke or pressed a key,
//! playback finished, a transfer ended, a timer fired) and [`CallCommand`]s out (message
//! the assistant, speak, stop playback, hold, REFER, hang up). It never reads the clock:
//! every entry point takes `now`, and [`Conversation::poll_timeout`] says when to call
//! [`Conversation::handle_timeout`]. The async driver in `call::task` executes the
//! commands against the SIP dialog, the media session, speech and the assistant.
//!
//! Invariants:
//! - At most one assistant request is outstanding; input that arrives while one is out
//!   is not sent (the caller is talking over a thinking assistant).
//! - Voice actions run in order; a `Speak`/`PlayAudio` blocks the list until playback
//!   finishes or the caller barges in.
//! - Once [`CallCommand::Finished`] is emitted nothing else is.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::assistant::{
    CallEvent, CallVariable, DtmfCollect, Reply, SipHeader, Transfer, TurnInput, UpdateStrategy,
    VoiceAction,
};

/// Per-call settings the conversation starts with (from the integration settings);
/// the assistant may change several of them during the call.
#[derive(Debug, Clone)]
pub struct ConversationConfig {
    /// Wait for caller input after a response has played (`vgwPostResponseTimeout`).
    pub post_response_timeout: Duration,
    /// Wait for a final transcript once the caller started speaking.
    pub final_utterance_timeout: Option<Duration>,
    /// Wait for the assistant's reply before retrying once, then failing the call.
    pub assistant_timeout: Duration,
    /// Wait for a transfer's outcome (hold answered, NOTIFY with a final sipfrag).
    pub transfer_timeout: Duration,
    /// Hang up after a failed transfer (else `vgwCallTransferFailed` goes to the assistant).
    pub disconnect_on_transfer_failure: bool,
    /// Said when a transfer fails.
    pub transfer_failure_message: String,
    /// Said when the call fails (speech or assistant down).
    pub call_failure_message: String,
    /// Where the caller goes when the call fails; `None` ends the call.
    pub call_failure_target: Option<String>,
    /// Put the caller on hold before the REFER.
    pub hold_on_transfer: bool,
    /// Hang up after this many consecutive turns without caller input.
    pub max_no_input_turns: Option<u32>,
    /// Played instead of a response the TTS service could not say (`vgwErrAudioURL`).
    pub err_audio_url: Option<String>,
    /// Played instead of the call-failure message when the TTS service cannot say it
    /// (`vgwConversationFailedAudioURL`).
    pub call_failure_audio_url: Option<String>,
    /// Played instead of the transfer-failure message when the TTS service cannot say
    /// it (`vgwTransferFailedAudioURL`).
    pub transfer_failure_audio_url: Option<String>,
}

impl Default for ConversationConfig {
    fn default() -> Self {
        let s = crate::settings::IntegrationSettings::default();
        Self::from_settings(&s)
    }
}

impl ConversationConfig {
    /// The starting configuration for a call under these integration settings.
    pub fn from_settings(s: &crate::settings::IntegrationSettings) -> Self {
        Self {
            post_response_timeout: Duration::from_millis(7000),
            final_utterance_timeout: None,
            assistant_timeout: Duration::from_secs(10),
            transfer_timeout: Duration::from_secs(30),
            disconnect_on_transfer_failure: s.disconnect_on_transfer_failure,
            transfer_failure_message: s.transfer_failure_message.clone(),
            call_failure_message: s.call_failure_message.clone(),
            call_failure_target: s.call_failure_sip_target.clone(),
            hold_on_transfer: !s.no_hold_on_transfer,
            max_no_input_turns: None,
            err_audio_url: None,
            call_failure_audio_url: None,
            transfer_failure_audio_url: None,
        }
    }
}

/// Something that happened to the call.
#[derive(Debug, Clone)]
pub enum CallEventIn {
    /// The call is up (200 OK acknowledged, media flowing).
    Answered,
    /// The assistant answered the outstanding request.
    AssistantReplied(Reply),
    /// The assistant could not be reached or failed.
    AssistantFailed(String),
    /// The caller started speaking (energy detector or first interim result).
    SpeechStarted,
    /// A final transcript.
    Transcript {
        /// Recognised text.
        text: String,
        /// The recogniser's confidence, 0–1.
        confidence: f32,
        /// The STT result as Watson JSON, passed to the assistant.
        result: Option<Value>,
    },
    /// Speech to text failed.
    SpeechFailed(String),
    /// A DTMF key (RFC 4733 or SIP INFO).
    Dtmf(char),
    /// The audio of the current `Speak`/`PlayAudio` has been sent in full.
    PlaybackFinished,
    /// Synthesis or the audio fetch failed.
    PlaybackFailed(String),
    /// The hold re-INVITE was answered (`Ok`) or refused.
    HoldResult(Result<(), String>),
    /// The final outcome of a REFER.
    TransferResult(TransferResult),
    /// The caller hung up (BYE or CANCEL from the trunk, or RTP timeout).
    CallerHungUp,
}

/// How a transfer ended, as far as the conversation cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferResult {
    /// NOTIFY with a 2xx sipfrag: the agent has the caller.
    Succeeded,
    /// REFER refused, a non-2xx sipfrag, or no outcome in time.
    Failed(String),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum CallCommand {
    /// Send this turn to the assistant.
    MessageAssistant(TurnInput),
    /// Synthesise and play text.
    Speak {
        /// The text.
        text: String,
    },
    /// Synthesise and play text with the embedded synthesiser: the TTS service is what
    /// failed, and the caller must still hear the closing message.
    SpeakEmbedded {
        /// The text.
        text: String,
    },
    /// Play a WAV from a URL or file.
    PlayAudio {
        /// Source.
        url: String,
        /// Restart when done, until stopped.
        looped: bool,
    },
    /// Stop playback now (barge-in).
    StopPlayback,
    /// Pause (`true`) or resume recognition.
    PauseRecognition(bool),
    /// Send RFC 4733 tones.
    SendDtmf {
        /// Keys.
        digits: Vec<char>,
        /// Duration of each tone.
        duration: Duration,
        /// Gap between tones.
        interval: Duration,
    },
    /// Send a SIP INFO in the dialog.
    SendSipInfo {
        /// Extra headers.
        headers: Vec<SipHeader>,
        /// Optional body.
        body: Option<String>,
    },
    /// Reconfigure speech to text.
    ConfigureStt(serde_json::Map<String, Value>, UpdateStrategy),
    /// Reconfigure text to speech.
    ConfigureTts(serde_json::Map<String, Value>, UpdateStrategy),
    /// Put the caller on hold (re-INVITE a=sendonly).
    Hold,
    /// Take the caller off hold (re-INVITE a=sendrecv).
    Unhold,
    /// Transfer with REFER.
    Refer(Transfer),
    /// End the call with BYE.
    HangUp {
        /// Extra BYE headers.
        headers: Vec<SipHeader>,
    },
    /// Merge into the call record's custom data.
    RecordCustomData(serde_json::Map<String, Value>),
    /// The conversation is over; nothing follows.
    Finished(CallOutcome),
}

/// How the call ended, for the call record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The assistant or the caller ended it normally.
    Completed,
    /// Handed to an agent.
    Transferred,
    /// A transfer failed and the call was disconnected.
    TransferFailed(String),
    /// Speech or the assistant failed; the reason is kept.
    CallFailed(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    /// Before `Answered`.
    Idle,
    /// Waiting for the assistant; the `Instant` is the deadline, `bool` = already retried.
    AwaitingAssistant { deadline: Instant, retried: bool },
    /// Running the reply's actions; `playing` while a Speak/PlayAudio is out.
    Acting { playing: bool },
    /// Waiting for caller input.
    Listening { deadline: Option<Instant> },
    /// Hold re-INVITE sent; REFER follows.
    Holding { deadline: Instant },
    /// REFER sent; waiting for its outcome.
    Referring { deadline: Instant },
    /// Saying a last message before hang-up or failure transfer.
    Closing { then: Closing },
    /// Done.
    Ended,
}

#[derive(Debug, Clone, PartialEq)]
enum Closing {
    HangUp(CallOutcome),
    FailureTransfer(String),
    /// Transfer failed, call stays up: tell the assistant.
    ResumeAfterTransferFailure,
}

#[derive(Debug, Clone, Default)]
struct DtmfState {
    collect: Option<DtmfCollect>,
    digits: String,
    inter_digit_deadline: Option<Instant>,
}

/// The sans-IO conversation of one call. See the module docs.
#[derive(Debug)]
pub struct Conversation {
    cfg: ConversationConfig,
    phase: Phase,
    actions: VecDeque<VoiceAction>,
    out: VecDeque<CallCommand>,
    last_input: Option<TurnInput>,
    speech_barge_in: bool,
    dtmf_barge_in: bool,
    stt_paused: bool,
    dtmf_paused: bool,
    barge_in_occurred: bool,
    speech_deadline: Option<Instant>,
    dtmf: DtmfState,
    no_input_turns: u32,
    transfer: Option<Transfer>,
    held: bool,
    turns: u32,
    failing: bool,
    failure_reason: Option<String>,
    /// The TTS service failed in this call: what is still said goes to the embedded
    /// synthesiser.
    tts_down: bool,
    /// The message said in [`Phase::Closing`], to say again with the embedded
    /// synthesiser when the TTS service fails on it.
    closing_message: Option<String>,
    /// Looped audio (hold music) is playing: it goes on under what follows until the
    /// next turn's reply, other audio, or the end of the call.
    music: bool,
    /// What to play if the TTS service fails on the response being said.
    speak_fallback: Option<String>,
    /// What to play if the TTS service fails on the closing message.
    closing_audio: Option<String>,
}

impl Conversation {
    /// A conversation for a call that is about to be answered.
    pub fn new(cfg: ConversationConfig) -> Self {
        Self {
            cfg,
            phase: Phase::Idle,
            actions: VecDeque::new(),
            out: VecDeque::new(),
            last_input: None,
            speech_barge_in: true,
            dtmf_barge_in: true,
            stt_paused: false,
            dtmf_paused: false,
            barge_in_occurred: false,
            speech_deadline: None,
            dtmf: DtmfState::default(),
            no_input_turns: 0,
            transfer: None,
            held: false,
            turns: 0,
            failing: false,
            failure_reason: None,
            tts_down: false,
            closing_message: None,
            music: false,
            speak_fallback: None,
            closing_audio: None,
        }
    }

    /// Number of assistant turns sent so far.
    pub fn turns(&self) -> u32 {
        self.turns
    }

    /// Whether [`CallCommand::Finished`] has been emitted.
    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Whether caller speech currently matters (recognition may be skipped otherwise).
    pub fn wants_speech(&self) -> bool {
        if self.stt_paused || self.is_ended() {
            return false;
        }
        match self.phase {
            Phase::Listening { .. } => true,
            Phase::Acting { playing: true } => self.speech_barge_in,
            _ => false,
        }
    }

    /// The next command to execute, if any.
    pub fn poll_command(&mut self) -> Option<CallCommand> {
        self.out.pop_front()
    }

    /// When [`Conversation::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::AwaitingAssistant { deadline, .. }
            | Phase::Holding { deadline }
            | Phase::Referring { deadline } => Some(*deadline),
            Phase::Listening { deadline } => *deadline,
            _ => None,
        };
        [phase, self.speech_deadline, self.dtmf.inter_digit_deadline]
            .into_iter()
            .flatten()
            .min()
    }

    /// Feeds one event.
    pub fn handle_event(&mut self, now: Instant, event: CallEventIn) {
        if self.is_ended() {
            return;
        }
        match event {
            CallEventIn::Answered => {
                if self.phase == Phase::Idle {
                    self.send_turn(now, TurnInput::welcome());
                }
            }
            CallEventIn::AssistantReplied(reply) => self.on_reply(now, reply),
            CallEventIn::AssistantFailed(reason) => {
                // Idle: the session could not be opened, so the welcome never went out.
                if matches!(self.phase, Phase::Idle | Phase::AwaitingAssistant { .. }) {
                    self.fail_call(now, format!("assistant: {reason}"));
                }
            }
            CallEventIn::SpeechFailed(reason) => {
                self.fail_call(now, format!("speech to text: {reason}"))
            }
            CallEventIn::SpeechStarted => self.on_speech_started(now),
            CallEventIn::Transcript { text, result, .. } => self.on_transcript(now, text, result),
            CallEventIn::Dtmf(key) => self.on_dtmf(now, key),
            CallEventIn::PlaybackFinished => self.on_playback_done(now),
            CallEventIn::PlaybackFailed(reason) => {
                self.tts_down = true;
                match self.phase {
                    // The TTS service failed on the last message: play its audio
                    // (`vgw*FailedAudioURL`), else say it with the embedded synthesiser;
                    // each fallback once.
                    Phase::Closing { .. } => {
                        if let Some(url) = self.closing_audio.take() {
                            tracing::warn!(%reason, %url, "text to speech failed on the closing message; playing its audio");
                            self.out.push_back(CallCommand::StopPlayback);
                            self.out
                                .push_back(CallCommand::PlayAudio { url, looped: false });
                        } else if let Some(text) = self.closing_message.take() {
                            tracing::warn!(%reason, "text to speech failed on the closing message; using the embedded synthesiser");
                            self.out.push_back(CallCommand::StopPlayback);
                            self.out.push_back(CallCommand::SpeakEmbedded { text });
                        } else {
                            // It could not be said at all; carry on with what follows it.
                            self.on_playback_done(now);
                        }
                    }
                    // A response with an audio fallback (`errAudioURL`, `vgwErrAudioURL`):
                    // play it instead and go on.
                    Phase::Acting { playing: true } if self.speak_fallback.is_some() => {
                        let url = self.speak_fallback.take().unwrap_or_default();
                        tracing::warn!(%reason, %url, "text to speech failed; playing the response's audio fallback");
                        self.out.push_back(CallCommand::StopPlayback);
                        self.out
                            .push_back(CallCommand::PlayAudio { url, looped: false });
                    }
                    _ => self.fail_call(now, format!("text to speech: {reason}")),
                }
            }
            CallEventIn::HoldResult(result) => self.on_hold_result(now, result),
            CallEventIn::TransferResult(result) => self.on_transfer_result(now, result),
            CallEventIn::CallerHungUp => {
                // Tell the assistant (fire and forget), then stop everything.
                self.out.push_back(CallCommand::StopPlayback);
                self.out
                    .push_back(CallCommand::MessageAssistant(TurnInput::event(
                        CallEvent::HangUp,
                    )));
                let outcome = match &self.phase {
                    _ if self.failing => {
                        CallOutcome::CallFailed(self.failure_reason.clone().unwrap_or_default())
                    }
                    Phase::Referring { .. } => CallOutcome::Transferred,
                    Phase::Closing {
                        then: Closing::HangUp(o),
                    } => o.clone(),
                    _ => CallOutcome::Completed,
                };
                self.finish(outcome);
            }
        }
    }

    /// Fires the timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_ended() {
            return;
        }
        if self.dtmf.inter_digit_deadline.is_some_and(|d| d <= now) {
            self.dtmf.inter_digit_deadline = None;
            self.finish_dtmf_collection(now, false);
            return;
        }
        if self.speech_deadline.is_some_and(|d| d <= now) {
            self.speech_deadline = None;
            if matches!(self.phase, Phase::Listening { .. }) {
                self.send_turn(now, TurnInput::event(CallEvent::FinalUtteranceTimeout));
                return;
            }
        }
        match self.phase.clone() {
            Phase::AwaitingAssistant { deadline, retried } if deadline <= now => {
                if retried {
                    self.fail_call(now, "assistant: no reply in time".to_owned());
                } else if let Some(input) = self.last_input.clone() {
                    // One retry, as the seed's phone integration does.
                    self.out.push_back(CallCommand::MessageAssistant(input));
                    self.phase = Phase::AwaitingAssistant {
                        deadline: now + self.cfg.assistant_timeout,
                        retried: true,
                    };
                }
            }
            Phase::Listening { deadline: Some(d) } if d <= now => {
                self.no_input_turns += 1;
                if self
                    .cfg
                    .max_no_input_turns
                    .is_some_and(|max| self.no_input_turns >= max)
                {
                    self.out.push_back(CallCommand::HangUp {
                        headers: Vec::new(),
                    });
                    self.finish(CallOutcome::Completed);
                    return;
                }
                let collecting = self.dtmf.collect.is_some();
                let mut input = TurnInput::event(CallEvent::PostResponseTimeout);
                if collecting {
                    input = input.with_dtmf_collection(false);
                    self.dtmf = DtmfState::default();
                }
                self.send_turn_counted(now, input, false);
            }
            Phase::Holding { deadline } if deadline <= now => {
                self.on_hold_result(now, Err("no answer to the hold re-INVITE".to_owned()));
            }
            Phase::Referring { deadline } if deadline <= now => {
                self.on_transfer_result(now, TransferResult::Failed("no outcome in time".into()));
            }
            _ => {}
        }
    }

    fn send_turn(&mut self, now: Instant, input: TurnInput) {
        self.send_turn_counted(now, input, true);
    }

    fn send_turn_counted(&mut self, now: Instant, mut input: TurnInput, caller_input: bool) {
        if caller_input && !matches!(input.kind, crate::assistant::InputKind::Welcome) {
            self.no_input_turns = 0;
        }
        if self.barge_in_occurred {
            input = input.with_barge_in(true);
            self.barge_in_occurred = false;
        }
        self.speech_deadline = None;
        self.turns += 1;
        self.last_input = Some(input.clone());
        self.out.push_back(CallCommand::MessageAssistant(input));
        self.phase = Phase::AwaitingAssistant {
            deadline: now + self.cfg.assistant_timeout,
            retried: false,
        };
    }

    fn on_reply(&mut self, now: Instant, reply: Reply) {
        if !matches!(self.phase, Phase::AwaitingAssistant { .. }) {
            return;
        }
        // The turn the music covered has completed (the seed: "when the vgwNoInputTurn
        // turn completes, the looped audio stops").
        self.stop_music();
        self.actions = reply.actions.into();
        self.phase = Phase::Acting { playing: false };
        self.run_actions(now);
    }

    /// Runs queued actions until one blocks (playback, transfer) or the list is empty.
    fn run_actions(&mut self, now: Instant) {
        while let Some(action) = self.actions.pop_front() {
            match action {
                VoiceAction::Speak {
                    text,
                    fallback_audio_url,
                } => {
                    if text.trim().is_empty() {
                        continue;
                    }
                    self.stop_music();
                    self.speak_fallback =
                        fallback_audio_url.or_else(|| self.cfg.err_audio_url.clone());
                    self.out.push_back(CallCommand::Speak { text });
                    self.phase = Phase::Acting { playing: true };
                    return;
                }
                VoiceAction::PlayAudio { url, looped } => {
                    self.stop_music();
                    self.out.push_back(CallCommand::PlayAudio { url, looped });
                    if looped {
                        // Hold music plays on under what follows; it does not block the list.
                        self.music = true;
                        continue;
                    }
                    self.phase = Phase::Acting { playing: true };
                    return;
                }
                VoiceAction::Transfer(t) => {
                    self.start_transfer(now, t);
                    return;
                }
                VoiceAction::Hangup { headers } => {
                    self.out.push_back(CallCommand::HangUp { headers });
                    self.finish(CallOutcome::Completed);
                    return;
                }
                VoiceAction::CollectDtmf(c) => {
                    self.dtmf = DtmfState {
                        collect: Some(c),
                        ..DtmfState::default()
                    };
                    self.dtmf_paused = false;
                }
                VoiceAction::SendDtmf { digits, interval } => {
                    let duration = digits
                        .first()
                        .map_or(Duration::from_millis(200), |d| d.duration);
                    let digits = digits.iter().map(|d| d.symbol()).collect();
                    self.out.push_back(CallCommand::SendDtmf {
                        digits,
                        duration,
                        interval,
                    });
                }
                VoiceAction::DtmfBargeIn(on) => self.dtmf_barge_in = on,
                VoiceAction::SpeechBargeIn(on) => self.speech_barge_in = on,
                VoiceAction::PauseStt(paused) => {
                    self.stt_paused = paused;
                    self.out.push_back(CallCommand::PauseRecognition(paused));
                }
                VoiceAction::PauseDtmf(paused) => self.dtmf_paused = paused,
                VoiceAction::ConfigureStt { config, strategy } => {
                    self.out
                        .push_back(CallCommand::ConfigureStt(config, strategy));
                }
                VoiceAction::ConfigureTts { config, strategy } => {
                    self.out
                        .push_back(CallCommand::ConfigureTts(config, strategy));
                }
                VoiceAction::ForceNoInputTurn => {
                    self.actions.clear();
                    self.send_turn_counted(now, TurnInput::event(CallEvent::NoInputTurn), false);
                    return;
                }
                VoiceAction::SendSipInfo { headers, body } => {
                    self.out
                        .push_back(CallCommand::SendSipInfo { headers, body });
                }
                VoiceAction::Set(var) => self.apply_variable(var),
                other => {
                    tracing::debug!(action = ?other, "voice action has no effect on the phone");
                }
            }
        }
        self.start_listening(now);
    }

    fn apply_variable(&mut self, var: CallVariable) {
        match var {
            CallVariable::ConversationResponseTimeout(d) => self.cfg.assistant_timeout = d,
            CallVariable::PostResponseTimeout(d) => self.cfg.post_response_timeout = d,
            CallVariable::FinalUtteranceTimeout(d) => self.cfg.final_utterance_timeout = Some(d),
            CallVariable::DisconnectAfterNoInputTurns(n) => {
                self.cfg.max_no_input_turns = (n > 0).then_some(n)
            }
            CallVariable::DisconnectOnTransferFailure(on) => {
                self.cfg.disconnect_on_transfer_failure = on
            }
            CallVariable::TransferFailedMessage(m) => self.cfg.transfer_failure_message = m,
            CallVariable::ConversationFailedMessage(m) => self.cfg.call_failure_message = m,
            CallVariable::ErrAudioUrl(u) => self.cfg.err_audio_url = Some(u),
            CallVariable::ConversationFailedAudioUrl(u) => {
                self.cfg.call_failure_audio_url = Some(u)
            }
            CallVariable::TransferFailedAudioUrl(u) => {
                self.cfg.transfer_failure_audio_url = Some(u)
            }
            CallVariable::CdrCustomData(m) => self.out.push_back(CallCommand::RecordCustomData(m)),
            #[allow(unreachable_patterns)] // the enum is #[non_exhaustive]
            other => tracing::debug!(variable = ?other, "call variable not used by the phone"),
        }
    }

    /// Stops looped audio, if any is playing.
    fn stop_music(&mut self) {
        if std::mem::take(&mut self.music) {
            self.out.push_back(CallCommand::StopPlayback);
        }
    }

    fn start_listening(&mut self, now: Instant) {
        let deadline = if self.dtmf.inter_digit_deadline.is_some() {
            None
        } else {
            Some(now + self.cfg.post_response_timeout)
        };
        self.phase = Phase::Listening { deadline };
    }

    fn on_playback_done(&mut self, now: Instant) {
        match self.phase.clone() {
            Phase::Acting { playing: true } => {
                self.phase = Phase::Acting { playing: false };
                self.run_actions(now);
            }
            Phase::Closing { then } => match then {
                Closing::HangUp(outcome) => {
                    self.out.push_back(CallCommand::HangUp {
                        headers: Vec::new(),
                    });
                    self.finish(outcome);
                }
                Closing::FailureTransfer(target) => {
                    let t = Transfer {
                        target: Some(target),
                        ..Transfer::default()
                    };
                    self.out.push_back(CallCommand::Refer(t.clone()));
                    self.transfer = Some(t);
                    self.phase = Phase::Referring {
                        deadline: now + self.cfg.transfer_timeout,
                    };
                }
                Closing::ResumeAfterTransferFailure => {
                    self.send_turn_counted(
                        now,
                        TurnInput::event(CallEvent::CallTransferFailed),
                        false,
                    );
                }
            },
            _ => {}
        }
    }

    fn barge_in(&mut self, now: Instant) {
        self.out.push_back(CallCommand::StopPlayback);
        self.music = false;
        self.barge_in_occurred = true;
        // What was still to be said is dropped; settings in the rest of the list still apply.
        let rest: Vec<VoiceAction> = self.actions.drain(..).collect();
        for action in rest {
            match action {
                VoiceAction::Speak { .. } | VoiceAction::PlayAudio { .. } => {}
                VoiceAction::Transfer(_) | VoiceAction::Hangup { .. } => {
                    // A transfer or hang-up is not cancelled by talking over the prompt.
                    self.actions.push_back(action);
                }
                other => self.actions.push_back(other),
            }
        }
        self.phase = Phase::Acting { playing: false };
        let blocking = self
            .actions
            .iter()
            .any(|a| matches!(a, VoiceAction::Transfer(_) | VoiceAction::Hangup { .. }));
        self.run_actions(now);
        if !blocking {
            // Listening, without the post-response timer: the caller is already talking.
            self.phase = Phase::Listening { deadline: None };
        }
    }

    fn on_speech_started(&mut self, now: Instant) {
        if self.stt_paused {
            return;
        }
        match self.phase {
            Phase::Acting { playing: true } if self.speech_barge_in => self.barge_in(now),
            Phase::Listening { .. } => {
                self.phase = Phase::Listening { deadline: None };
            }
            _ => return,
        }
        if let Some(t) = self.cfg.final_utterance_timeout {
            self.speech_deadline = Some(now + t);
        }
    }

    fn on_transcript(&mut self, now: Instant, text: String, result: Option<Value>) {
        if self.stt_paused || text.trim().is_empty() {
            return;
        }
        if self.dtmf.collect.as_ref().is_some_and(|c| c.ignore_speech)
            && !self.dtmf.digits.is_empty()
        {
            return;
        }
        match self.phase {
            Phase::Acting { playing: true } if self.speech_barge_in => self.barge_in(now),
            Phase::Listening { .. } => {}
            _ => return,
        }
        if !matches!(self.phase, Phase::Listening { .. }) {
            return;
        }
        let mut input = TurnInput::text(text.trim());
        if let Some(r) = result {
            input = input.with_stt_result(r);
        }
        if self.dtmf.collect.is_some() {
            input = input.with_dtmf_collection(false);
            self.dtmf = DtmfState::default();
        }
        self.send_turn(now, input);
    }

    fn on_dtmf(&mut self, now: Instant, key: char) {
        if self.dtmf_paused {
            return;
        }
        match self.phase {
            Phase::Acting { playing: true } if self.dtmf_barge_in => self.barge_in(now),
            Phase::Listening { .. } => {}
            _ => return,
        }
        if !matches!(self.phase, Phase::Listening { .. }) {
            return;
        }
        let Some(collect) = self.dtmf.collect.clone() else {
            // No collection configured: each key is a turn of its own.
            self.send_turn(now, TurnInput::dtmf(key.to_string()));
            return;
        };
        if collect.termination_key == Some(key) {
            let n = self.dtmf.digits.chars().count() as u32;
            let ok = collect.count.is_none_or(|c| n == c)
                && collect.minimum_count.is_none_or(|m| n >= m);
            self.finish_dtmf_collection(now, ok);
            return;
        }
        self.dtmf.digits.push(key);
        let n = self.dtmf.digits.chars().count() as u32;
        let complete =
            collect.count.is_some_and(|c| n >= c) || collect.maximum_count.is_some_and(|m| n >= m);
        if complete {
            self.finish_dtmf_collection(now, true);
            return;
        }
        match collect.inter_digit_timeout {
            // The inter-digit timer replaces the post-response timer once a key came.
            Some(t) => {
                self.dtmf.inter_digit_deadline = Some(now + t);
                self.phase = Phase::Listening { deadline: None };
            }
            // Without it, the post-response timer restarts on each key.
            None => {
                self.phase = Phase::Listening {
                    deadline: Some(now + self.cfg.post_response_timeout),
                }
            }
        }
    }

    fn finish_dtmf_collection(&mut self, now: Instant, complete: bool) {
        let Some(collect) = self.dtmf.collect.take() else {
            return;
        };
        let digits = std::mem::take(&mut self.dtmf.digits);
        self.dtmf.inter_digit_deadline = None;
        let n = digits.chars().count() as u32;
        let ok =
            complete || (collect.minimum_count.is_some_and(|m| n >= m) && collect.count.is_none());
        if collect.stop_after_collection {
            self.dtmf_paused = true;
        }
        self.send_turn(now, TurnInput::dtmf(digits).with_dtmf_collection(ok));
    }

    fn start_transfer(&mut self, now: Instant, t: Transfer) {
        if let Some(msg) = &t.failure_message {
            self.cfg.transfer_failure_message = msg.clone();
        }
        self.transfer = Some(t.clone());
        if self.cfg.hold_on_transfer {
            self.out.push_back(CallCommand::Hold);
            self.phase = Phase::Holding {
                deadline: now + self.cfg.transfer_timeout,
            };
        } else {
            self.out.push_back(CallCommand::Refer(t));
            self.phase = Phase::Referring {
                deadline: now + self.cfg.transfer_timeout,
            };
        }
    }

    fn on_hold_result(&mut self, now: Instant, result: Result<(), String>) {
        if !matches!(self.phase, Phase::Holding { .. }) {
            return;
        }
        match result {
            Ok(()) => self.held = true,
            // A trunk that refuses the hold can still take the REFER.
            Err(e) => {
                tracing::warn!(error = %e, "hold before transfer failed; transferring anyway")
            }
        }
        if let Some(t) = self.transfer.clone() {
            self.out.push_back(CallCommand::Refer(t));
        }
        self.phase = Phase::Referring {
            deadline: now + self.cfg.transfer_timeout,
        };
    }

    fn on_transfer_result(&mut self, now: Instant, result: TransferResult) {
        if !matches!(self.phase, Phase::Referring { .. }) {
            return;
        }
        let failure_transfer = self.cfg.call_failure_target.is_some()
            && self.transfer.as_ref().and_then(|t| t.target.as_ref())
                == self.cfg.call_failure_target.as_ref()
            && self.failing;
        match result {
            TransferResult::Succeeded => {
                let outcome = if failure_transfer {
                    CallOutcome::CallFailed(self.failure_reason.clone().unwrap_or_default())
                } else {
                    CallOutcome::Transferred
                };
                self.out.push_back(CallCommand::HangUp {
                    headers: Vec::new(),
                });
                self.finish(outcome);
            }
            TransferResult::Failed(reason) => {
                if self.held {
                    self.out.push_back(CallCommand::Unhold);
                    self.held = false;
                }
                if failure_transfer {
                    let why = self.failure_reason.clone().unwrap_or_default();
                    self.out.push_back(CallCommand::HangUp {
                        headers: Vec::new(),
                    });
                    self.finish(CallOutcome::CallFailed(format!(
                        "{why}; failure transfer: {reason}"
                    )));
                    return;
                }
                let then = if self.cfg.disconnect_on_transfer_failure {
                    Closing::HangUp(CallOutcome::TransferFailed(reason))
                } else {
                    Closing::ResumeAfterTransferFailure
                };
                let audio = self.cfg.transfer_failure_audio_url.clone();
                self.say_then(now, self.cfg.transfer_failure_message.clone(), audio, then);
            }
        }
    }

    /// Says a last message (or, when the TTS service cannot, plays `audio`, else says it
    /// with the embedded synthesiser), then does `then`.
    fn say_then(&mut self, now: Instant, text: String, audio: Option<String>, then: Closing) {
        self.actions.clear();
        self.stop_music();
        self.closing_audio = audio;
        if text.trim().is_empty() {
            self.closing_message = None;
            self.closing_audio = None;
            self.phase = Phase::Closing { then };
            self.on_playback_done(now);
            return;
        }
        self.phase = Phase::Closing { then };
        if !self.tts_down {
            self.closing_message = Some(text.clone());
            self.out.push_back(CallCommand::Speak { text });
        } else if let Some(url) = self.closing_audio.take() {
            // The TTS service already failed in this call: the operator's audio first.
            self.closing_message = Some(text);
            self.out
                .push_back(CallCommand::PlayAudio { url, looped: false });
        } else {
            self.closing_message = None;
            self.out.push_back(CallCommand::SpeakEmbedded { text });
        }
    }

    fn fail_call(&mut self, now: Instant, reason: String) {
        if matches!(self.phase, Phase::Ended) || self.failing {
            return;
        }
        tracing::warn!(%reason, "call failed");
        self.failing = true;
        self.failure_reason = Some(reason.clone());
        self.out.push_back(CallCommand::StopPlayback);
        self.music = false;
        let then = match self.cfg.call_failure_target.clone() {
            Some(target) => Closing::FailureTransfer(target),
            None => Closing::HangUp(CallOutcome::CallFailed(reason)),
        };
        let audio = self.cfg.call_failure_audio_url.clone();
        self.say_then(now, self.cfg.call_failure_message.clone(), audio, then);
    }

    fn finish(&mut self, outcome: CallOutcome) {
        self.actions.clear();
        self.out.push_back(CallCommand::Finished(outcome));
        self.phase = Phase::Ended;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assistant::{Context, DtmfCollect, InputKind};

    fn reply(actions: Vec<VoiceAction>) -> CallEventIn {
        CallEventIn::AssistantReplied(Reply {
            actions,
            context: Context::default(),
        })
    }

    fn speak(t: &str) -> VoiceAction {
        VoiceAction::Speak {
            text: t.to_owned(),
            fallback_audio_url: None,
        }
    }

    fn drain(c: &mut Conversation) -> Vec<CallCommand> {
        std::iter::from_fn(|| c.poll_command()).collect()
    }

    fn sent_input(cmds: &[CallCommand]) -> Option<TurnInput> {
        cmds.iter().find_map(|c| match c {
            CallCommand::MessageAssistant(i) => Some(i.clone()),
            _ => None,
        })
    }

    fn answered(cfg: ConversationConfig) -> (Conversation, Instant) {
        let t0 = Instant::now();
        let mut c = Conversation::new(cfg);
        c.handle_event(t0, CallEventIn::Answered);
        let cmds = drain(&mut c);
        assert_eq!(sent_input(&cmds).map(|i| i.kind), Some(InputKind::Welcome));
        (c, t0)
    }

    #[test]
    fn welcome_speak_then_listen_then_text_turn() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(t0, reply(vec![speak("Hello"), speak("How can I help?")]));
        assert_eq!(
            drain(&mut c),
            vec![CallCommand::Speak {
                text: "Hello".into()
            }]
        );
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        assert_eq!(
            drain(&mut c),
            vec![CallCommand::Speak {
                text: "How can I help?".into()
            }]
        );
        assert!(!c.wants_speech() || c.speech_barge_in);
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        assert!(drain(&mut c).is_empty());
        assert!(c.wants_speech());
        c.handle_event(
            t0,
            CallEventIn::Transcript {
                text: "billing".into(),
                confidence: 0.9,
                result: None,
            },
        );
        let input = sent_input(&drain(&mut c)).expect("a turn");
        assert_eq!(input.kind, InputKind::Text("billing".into()));
        assert!(!input.flags.barge_in_occurred);
        assert_eq!(c.turns(), 2);
    }

    #[test]
    fn post_response_timeout_sends_the_event_after_seven_seconds() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(t0, reply(vec![speak("Hi")]));
        drain(&mut c);
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        let due = c.poll_timeout().expect("post-response timer");
        assert_eq!(due - t0, Duration::from_millis(7000));
        c.handle_timeout(due - Duration::from_millis(1));
        assert!(drain(&mut c).is_empty());
        c.handle_timeout(due);
        let input = sent_input(&drain(&mut c)).expect("timeout turn");
        assert_eq!(input.kind, InputKind::Event(CallEvent::PostResponseTimeout));
        assert!(input.flags.post_response_timeout_occurred);
    }

    #[test]
    fn assistant_variable_changes_the_post_response_timeout() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(
            t0,
            reply(vec![VoiceAction::Set(CallVariable::PostResponseTimeout(
                Duration::from_secs(2),
            ))]),
        );
        assert_eq!(
            c.poll_timeout().map(|d| d - t0),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn speech_barge_in_stops_playback_and_flags_the_turn() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(t0, reply(vec![speak("A long prompt"), speak("and more")]));
        drain(&mut c);
        c.handle_event(t0, CallEventIn::SpeechStarted);
        let cmds = drain(&mut c);
        assert_eq!(cmds, vec![CallCommand::StopPlayback]);
        // The rest of the prompt is dropped; no post-response timer while the caller talks.
        assert_eq!(c.poll_timeout(), None);
        c.handle_event(
            t0,
            CallEventIn::Transcript {
                text: "agent".into(),
                confidence: 0.8,
                result: None,
            },
        );
        let input = sent_input(&drain(&mut c)).expect("turn");
        assert_eq!(input.kind, InputKind::Text("agent".into()));
        assert!(input.flags.barge_in_occurred);
    }

    #[test]
    fn barge_in_disabled_keeps_the_prompt_playing() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(
            t0,
            reply(vec![VoiceAction::SpeechBargeIn(false), speak("Listen")]),
        );
        drain(&mut c);
        c.handle_event(t0, CallEventIn::SpeechStarted);
        c.handle_event(
            t0,
            CallEventIn::Transcript {
                text: "hey".into(),
                confidence: 0.8,
                result: None,
            },
        );
        assert!(drain(&mut c).is_empty());
    }

    #[test]
    fn dtmf_collection_with_count_and_termination_key() {
        let (mut c, t0) = answered(ConversationConfig::default());
        let collect = DtmfCollect {
            count: Some(3),
            ..DtmfCollect::default()
        };
        c.handle_event(
            t0,
            reply(vec![VoiceAction::CollectDtmf(collect), speak("Enter code")]),
        );
        drain(&mut c);
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        for k in ['1', '2'] {
            c.handle_event(t0, CallEventIn::Dtmf(k));
            assert!(sent_input(&drain(&mut c)).is_none());
        }
        c.handle_event(t0, CallEventIn::Dtmf('3'));
        let input = sent_input(&drain(&mut c)).expect("turn");
        assert_eq!(input.kind, InputKind::Dtmf("123".into()));
        assert_eq!(input.flags.dtmf_collection_succeeded, Some(true));

        // Termination key before the count: collection fails but the digits go through.
        let collect = DtmfCollect {
            count: Some(4),
            termination_key: Some('#'),
            ..Default::default()
        };
        c.handle_event(t0, reply(vec![VoiceAction::CollectDtmf(collect)]));
        c.handle_event(t0, CallEventIn::Dtmf('9'));
        c.handle_event(t0, CallEventIn::Dtmf('#'));
        let input = sent_input(&drain(&mut c)).expect("turn");
        assert_eq!(input.kind, InputKind::Dtmf("9".into()));
        assert_eq!(input.flags.dtmf_collection_succeeded, Some(false));
    }

    #[test]
    fn inter_digit_timeout_ends_a_range_collection() {
        let (mut c, t0) = answered(ConversationConfig::default());
        let collect = DtmfCollect {
            minimum_count: Some(2),
            maximum_count: Some(5),
            inter_digit_timeout: Some(Duration::from_millis(3000)),
            ..DtmfCollect::default()
        };
        c.handle_event(t0, reply(vec![VoiceAction::CollectDtmf(collect)]));
        c.handle_event(t0, CallEventIn::Dtmf('4'));
        c.handle_event(t0 + Duration::from_secs(1), CallEventIn::Dtmf('2'));
        let due = c.poll_timeout().expect("inter-digit timer");
        assert_eq!(due - t0, Duration::from_secs(4));
        c.handle_timeout(due);
        let input = sent_input(&drain(&mut c)).expect("turn");
        assert_eq!(input.kind, InputKind::Dtmf("42".into()));
        assert_eq!(input.flags.dtmf_collection_succeeded, Some(true));
    }

    #[test]
    fn single_key_without_collection_is_a_turn() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(t0, reply(vec![speak("Press 1")]));
        drain(&mut c);
        c.handle_event(t0, CallEventIn::Dtmf('1'));
        let cmds = drain(&mut c);
        assert_eq!(cmds[0], CallCommand::StopPlayback);
        let input = sent_input(&cmds).expect("turn");
        assert_eq!(input.kind, InputKind::Dtmf("1".into()));
        assert!(input.flags.barge_in_occurred);
    }

    fn transfer_to(uri: &str) -> VoiceAction {
        VoiceAction::Transfer(Transfer {
            target: Some(uri.into()),
            ..Transfer::default()
        })
    }

    #[test]
    fn transfer_holds_first_then_refers_and_ends_on_success() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(
            t0,
            reply(vec![speak("Transferring"), transfer_to("sip:agent@pbx")]),
        );
        drain(&mut c);
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        assert_eq!(drain(&mut c), vec![CallCommand::Hold]);
        c.handle_event(t0, CallEventIn::HoldResult(Ok(())));
        let cmds = drain(&mut c);
        assert!(
            matches!(&cmds[..], [CallCommand::Refer(t)] if t.target.as_deref() == Some("sip:agent@pbx"))
        );
        c.handle_event(t0, CallEventIn::TransferResult(TransferResult::Succeeded));
        let cmds = drain(&mut c);
        assert_eq!(
            cmds.last(),
            Some(&CallCommand::Finished(CallOutcome::Transferred))
        );
        assert!(c.is_ended());
    }

    #[test]
    fn no_hold_option_refers_at_once() {
        let cfg = ConversationConfig {
            hold_on_transfer: false,
            ..Default::default()
        };
        let (mut c, t0) = answered(cfg);
        c.handle_event(t0, reply(vec![transfer_to("sip:agent@pbx")]));
        assert!(matches!(&drain(&mut c)[..], [CallCommand::Refer(_)]));
    }

    #[test]
    fn transfer_failure_with_disconnect_says_the_message_and_hangs_up() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(t0, reply(vec![transfer_to("sip:agent@pbx")]));
        drain(&mut c);
        c.handle_event(t0, CallEventIn::HoldResult(Ok(())));
        drain(&mut c);
        c.handle_event(
            t0,
            CallEventIn::TransferResult(TransferResult::Failed("486".into())),
        );
        let cmds = drain(&mut c);
        assert_eq!(cmds[0], CallCommand::Unhold);
        assert!(matches!(&cmds[1], CallCommand::Speak { text } if text.contains("transfer")));
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        let cmds = drain(&mut c);
        assert_eq!(cmds[0], CallCommand::HangUp { headers: vec![] });
        assert_eq!(
            cmds[1],
            CallCommand::Finished(CallOutcome::TransferFailed("486".into()))
        );
    }

    #[test]
    fn transfer_failure_without_disconnect_tells_the_assistant() {
        let cfg = ConversationConfig {
            disconnect_on_transfer_failure: false,
            ..Default::default()
        };
        let (mut c, t0) = answered(cfg);
        c.handle_event(t0, reply(vec![transfer_to("sip:agent@pbx")]));
        drain(&mut c);
        c.handle_event(t0, CallEventIn::HoldResult(Err("488".into())));
        drain(&mut c);
        // No outcome in time counts as a failure.
        let due = c.poll_timeout().expect("transfer timer");
        c.handle_timeout(due);
        drain(&mut c);
        c.handle_event(due, CallEventIn::PlaybackFinished);
        let input = sent_input(&drain(&mut c)).expect("turn");
        assert_eq!(input.kind, InputKind::Event(CallEvent::CallTransferFailed));
        assert!(!c.is_ended());
    }

    #[test]
    fn assistant_failure_says_the_message_and_transfers_to_the_failure_target() {
        let cfg = ConversationConfig {
            call_failure_target: Some("sip:fallback@pbx".into()),
            ..Default::default()
        };
        let (mut c, t0) = answered(cfg);
        c.handle_event(
            t0,
            CallEventIn::AssistantFailed("connection refused".into()),
        );
        let cmds = drain(&mut c);
        assert!(matches!(&cmds[1], CallCommand::Speak { .. }));
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        let cmds = drain(&mut c);
        assert!(
            matches!(&cmds[..], [CallCommand::Refer(t)] if t.target.as_deref() == Some("sip:fallback@pbx"))
        );
        c.handle_event(t0, CallEventIn::TransferResult(TransferResult::Succeeded));
        let cmds = drain(&mut c);
        assert!(
            matches!(cmds.last(), Some(CallCommand::Finished(CallOutcome::CallFailed(r))) if r.contains("connection refused"))
        );
    }

    #[test]
    fn assistant_timeout_retries_once_then_fails_the_call() {
        let (mut c, t0) = answered(ConversationConfig::default());
        let due = c.poll_timeout().expect("assistant timer");
        c.handle_timeout(due);
        assert!(sent_input(&drain(&mut c)).is_some(), "one retry");
        let due2 = c.poll_timeout().expect("second timer");
        assert!(due2 > due);
        c.handle_timeout(due2);
        let cmds = drain(&mut c);
        assert!(cmds.iter().any(|c| matches!(c, CallCommand::Speak { .. })));
        c.handle_event(due2, CallEventIn::PlaybackFailed("tts down".into()));
        // The TTS service failed on the failure message: the embedded synthesiser says it.
        let cmds = drain(&mut c);
        assert!(
            cmds.iter()
                .any(|c| matches!(c, CallCommand::SpeakEmbedded { .. })),
            "{cmds:?}"
        );
        c.handle_event(due2, CallEventIn::PlaybackFailed("espeak down".into()));
        let cmds = drain(&mut c);
        assert!(matches!(
            cmds.last(),
            Some(CallCommand::Finished(CallOutcome::CallFailed(_)))
        ));
        let _ = t0;
    }

    fn failure_message() -> String {
        ConversationConfig::default().call_failure_message
    }

    #[test]
    fn assistant_failing_before_the_answer_says_the_message_and_hangs_up() {
        // The session could not be opened: the call never left Idle.
        let t0 = Instant::now();
        let mut c = Conversation::new(ConversationConfig::default());
        c.handle_event(
            t0,
            CallEventIn::AssistantFailed("connection refused".into()),
        );
        let cmds = drain(&mut c);
        assert!(
            cmds.contains(&CallCommand::Speak {
                text: failure_message()
            }),
            "{cmds:?}"
        );
        assert!(sent_input(&cmds).is_none(), "no turn without a session");
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        let cmds = drain(&mut c);
        assert_eq!(cmds[0], CallCommand::HangUp { headers: vec![] });
        assert!(
            matches!(&cmds[1], CallCommand::Finished(CallOutcome::CallFailed(r)) if r.contains("connection refused")),
            "{cmds:?}"
        );
        assert!(c.is_ended());
    }

    #[test]
    fn assistant_failing_before_the_answer_transfers_to_the_failure_target() {
        let cfg = ConversationConfig {
            call_failure_target: Some("sip:fallback@pbx".into()),
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut c = Conversation::new(cfg);
        c.handle_event(t0, CallEventIn::AssistantFailed("503".into()));
        assert!(drain(&mut c)
            .iter()
            .any(|c| matches!(c, CallCommand::Speak { .. })));
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        assert!(
            matches!(&drain(&mut c)[..], [CallCommand::Refer(t)] if t.target.as_deref() == Some("sip:fallback@pbx"))
        );
        c.handle_event(t0, CallEventIn::TransferResult(TransferResult::Succeeded));
        assert!(matches!(
            drain(&mut c).last(),
            Some(CallCommand::Finished(CallOutcome::CallFailed(r))) if r.contains("503")
        ));
    }

    #[test]
    fn speech_failing_before_the_answer_fails_the_call() {
        let t0 = Instant::now();
        let mut c = Conversation::new(ConversationConfig::default());
        c.handle_event(t0, CallEventIn::SpeechFailed("unreachable".into()));
        assert!(drain(&mut c).contains(&CallCommand::Speak {
            text: failure_message()
        }));
        // A late Answered does not start the welcome turn.
        c.handle_event(t0, CallEventIn::Answered);
        assert!(sent_input(&drain(&mut c)).is_none());
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        assert!(matches!(
            drain(&mut c).last(),
            Some(CallCommand::Finished(CallOutcome::CallFailed(r))) if r.starts_with("speech to text")
        ));
    }

    #[test]
    fn tts_failure_says_the_failure_message_with_the_embedded_synthesiser() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(t0, reply(vec![speak("Hello")]));
        drain(&mut c);
        c.handle_event(t0, CallEventIn::PlaybackFailed("503".into()));
        let cmds = drain(&mut c);
        assert!(
            cmds.contains(&CallCommand::SpeakEmbedded {
                text: failure_message()
            }),
            "{cmds:?}"
        );
        assert!(
            !cmds.iter().any(|c| matches!(c, CallCommand::Speak { .. })),
            "not through the TTS service that just failed: {cmds:?}"
        );
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        let cmds = drain(&mut c);
        assert_eq!(cmds[0], CallCommand::HangUp { headers: vec![] });
        assert!(matches!(
            &cmds[1],
            CallCommand::Finished(CallOutcome::CallFailed(r)) if r.starts_with("text to speech")
        ));
    }

    #[test]
    fn tts_failing_on_the_failure_message_retries_it_embedded() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(t0, CallEventIn::AssistantFailed("500".into()));
        assert!(drain(&mut c).contains(&CallCommand::Speak {
            text: failure_message()
        }));
        c.handle_event(t0, CallEventIn::PlaybackFailed("connection reset".into()));
        assert_eq!(
            drain(&mut c),
            vec![
                CallCommand::StopPlayback,
                CallCommand::SpeakEmbedded {
                    text: failure_message()
                }
            ]
        );
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        assert!(matches!(
            drain(&mut c).last(),
            Some(CallCommand::Finished(CallOutcome::CallFailed(r))) if r.contains("500")
        ));
    }

    #[test]
    fn caller_hang_up_ends_everything_at_once() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(t0, reply(vec![speak("Hello")]));
        drain(&mut c);
        c.handle_event(t0, CallEventIn::CallerHungUp);
        let cmds = drain(&mut c);
        assert_eq!(cmds[0], CallCommand::StopPlayback);
        assert_eq!(
            sent_input(&cmds).map(|i| i.kind),
            Some(InputKind::Event(CallEvent::HangUp))
        );
        assert_eq!(
            cmds.last(),
            Some(&CallCommand::Finished(CallOutcome::Completed))
        );
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        assert!(drain(&mut c).is_empty(), "nothing after Finished");
    }

    #[test]
    fn hangup_action_ends_the_call_with_its_headers() {
        let (mut c, t0) = answered(ConversationConfig::default());
        let headers = vec![SipHeader {
            name: "X-Reason".into(),
            value: "done".into(),
        }];
        c.handle_event(
            t0,
            reply(vec![
                speak("Bye"),
                VoiceAction::Hangup {
                    headers: headers.clone(),
                },
            ]),
        );
        drain(&mut c);
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        let cmds = drain(&mut c);
        assert_eq!(
            cmds,
            vec![
                CallCommand::HangUp { headers },
                CallCommand::Finished(CallOutcome::Completed)
            ]
        );
    }

    #[test]
    fn no_input_turns_limit_hangs_up() {
        let cfg = ConversationConfig {
            max_no_input_turns: Some(2),
            ..Default::default()
        };
        let (mut c, _t0) = answered(cfg);
        let mut now = _t0;
        c.handle_event(now, reply(vec![]));
        for _ in 0..2 {
            let due = c.poll_timeout().expect("timer");
            now = due;
            c.handle_timeout(now);
            if c.is_ended() {
                break;
            }
            drain(&mut c);
            c.handle_event(now, reply(vec![]));
        }
        assert!(c.is_ended());
        let cmds = drain(&mut c);
        assert_eq!(
            cmds.last(),
            Some(&CallCommand::Finished(CallOutcome::Completed))
        );
    }

    /// Playback is stopped before the next thing is said.
    fn assert_stops_before_speaking(cmds: &[CallCommand]) {
        let stop = cmds.iter().position(|c| *c == CallCommand::StopPlayback);
        let say = cmds
            .iter()
            .position(|c| matches!(c, CallCommand::Speak { .. }));
        assert!(
            matches!((stop, say), (Some(a), Some(b)) if a < b),
            "{cmds:?}"
        );
    }

    fn music(url: &str) -> VoiceAction {
        VoiceAction::PlayAudio {
            url: url.to_owned(),
            looped: true,
        }
    }

    #[test]
    fn looped_audio_plays_through_the_no_input_turn_and_stops_at_its_reply() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(
            t0,
            reply(vec![
                speak("Please hold"),
                music("file:///hold.wav"),
                VoiceAction::ForceNoInputTurn,
            ]),
        );
        assert_eq!(
            drain(&mut c),
            vec![CallCommand::Speak {
                text: "Please hold".into()
            }]
        );
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        let cmds = drain(&mut c);
        assert_eq!(
            cmds.first(),
            Some(&CallCommand::PlayAudio {
                url: "file:///hold.wav".into(),
                looped: true
            })
        );
        let input = sent_input(&cmds).expect("the no-input turn starts at once");
        assert_eq!(input.kind, InputKind::Event(CallEvent::NoInputTurn));
        assert!(!cmds.contains(&CallCommand::StopPlayback));
        // The music does not block: the turn is out while it plays.
        c.handle_event(t0, reply(vec![speak("Your order is ready")]));
        assert_eq!(
            drain(&mut c),
            vec![
                CallCommand::StopPlayback,
                CallCommand::Speak {
                    text: "Your order is ready".into()
                }
            ]
        );
        // Stopped once: the next prompt's end stops nothing more.
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        assert!(!drain(&mut c).contains(&CallCommand::StopPlayback));
    }

    #[test]
    fn looped_audio_stops_before_other_audio_in_the_same_reply() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(
            t0,
            reply(vec![music("file:///hold.wav"), speak("One moment")]),
        );
        let cmds = drain(&mut c);
        assert_eq!(
            cmds,
            vec![
                CallCommand::PlayAudio {
                    url: "file:///hold.wav".into(),
                    looped: true
                },
                CallCommand::StopPlayback,
                CallCommand::Speak {
                    text: "One moment".into()
                }
            ]
        );
    }

    #[test]
    fn looped_audio_stops_for_the_failure_message() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(
            t0,
            reply(vec![
                music("file:///hold.wav"),
                VoiceAction::ForceNoInputTurn,
            ]),
        );
        drain(&mut c);
        c.handle_event(t0, CallEventIn::AssistantFailed("503".into()));
        let cmds = drain(&mut c);
        assert_stops_before_speaking(&cmds);
    }

    /// Answers with `cfg`, the assistant sets `vgwDisconnectCallOnNoUserInputTurnCount`
    /// to `n`, and the caller stays silent through one post-response timeout.
    fn silent_turn_with_no_input_count(
        cfg: ConversationConfig,
        n: u32,
    ) -> (Conversation, Vec<CallCommand>) {
        let (mut c, t0) = answered(cfg);
        c.handle_event(
            t0,
            reply(vec![VoiceAction::Set(
                CallVariable::DisconnectAfterNoInputTurns(n),
            )]),
        );
        drain(&mut c);
        let due = c.poll_timeout().expect("post-response timer");
        c.handle_timeout(due);
        let cmds = drain(&mut c);
        (c, cmds)
    }

    #[test]
    fn assistant_sets_the_no_input_hang_up_count() {
        let (c, cmds) = silent_turn_with_no_input_count(ConversationConfig::default(), 1);
        assert!(
            matches!(cmds.first(), Some(CallCommand::HangUp { .. })),
            "{cmds:?}"
        );
        assert!(c.is_ended());
        // 0 turns the limit off again.
        let cfg = ConversationConfig {
            max_no_input_turns: Some(1),
            ..Default::default()
        };
        let (c, _) = silent_turn_with_no_input_count(cfg, 0);
        assert!(!c.is_ended());
    }

    #[test]
    fn a_response_tts_cannot_say_plays_its_audio_fallback_and_the_call_goes_on() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(
            t0,
            reply(vec![
                VoiceAction::Speak {
                    text: "Your balance".into(),
                    fallback_audio_url: Some("file:///balance.wav".into()),
                },
                speak("Anything else?"),
            ]),
        );
        drain(&mut c);
        c.handle_event(t0, CallEventIn::PlaybackFailed("503".into()));
        assert_eq!(
            drain(&mut c),
            vec![
                CallCommand::StopPlayback,
                CallCommand::PlayAudio {
                    url: "file:///balance.wav".into(),
                    looped: false
                }
            ]
        );
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        assert_eq!(
            drain(&mut c),
            vec![CallCommand::Speak {
                text: "Anything else?".into()
            }]
        );
        // No fallback for this one: the call fails.
        c.handle_event(t0, CallEventIn::PlaybackFailed("503".into()));
        let cmds = drain(&mut c);
        assert!(
            cmds.iter()
                .any(|c| matches!(c, CallCommand::SpeakEmbedded { .. })),
            "{cmds:?}"
        );
    }

    #[test]
    fn the_integration_wide_error_audio_covers_every_response() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(
            t0,
            reply(vec![
                VoiceAction::Set(CallVariable::ErrAudioUrl("file:///err.wav".into())),
                speak("Hello"),
            ]),
        );
        drain(&mut c);
        c.handle_event(t0, CallEventIn::PlaybackFailed("timeout".into()));
        assert!(drain(&mut c).contains(&CallCommand::PlayAudio {
            url: "file:///err.wav".into(),
            looped: false
        }));
        assert!(!c.is_ended());
    }

    #[test]
    fn failure_message_tts_cannot_say_plays_the_failure_audio_then_hangs_up() {
        let (mut c, t0) = answered(ConversationConfig {
            call_failure_audio_url: Some("file:///failed.wav".into()),
            ..Default::default()
        });
        c.handle_event(t0, CallEventIn::AssistantFailed("down".into()));
        let cmds = drain(&mut c);
        assert!(
            cmds.iter().any(|c| matches!(c, CallCommand::Speak { .. })),
            "TTS is tried first: {cmds:?}"
        );
        c.handle_event(t0, CallEventIn::PlaybackFailed("503".into()));
        assert_eq!(
            drain(&mut c),
            vec![
                CallCommand::StopPlayback,
                CallCommand::PlayAudio {
                    url: "file:///failed.wav".into(),
                    looped: false
                }
            ]
        );
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        let cmds = drain(&mut c);
        assert!(
            matches!(cmds.first(), Some(CallCommand::HangUp { .. })),
            "{cmds:?}"
        );
        assert!(c.is_ended());
    }

    #[test]
    fn with_tts_already_down_the_transfer_failure_audio_plays_at_once() {
        let (mut c, t0) = answered(ConversationConfig {
            transfer_failure_audio_url: Some("file:///transfer.wav".into()),
            err_audio_url: Some("file:///err.wav".into()),
            ..Default::default()
        });
        c.handle_event(
            t0,
            reply(vec![
                speak("Connecting you"),
                VoiceAction::Transfer(Transfer {
                    target: Some("sip:agent@example.com".into()),
                    ..Transfer::default()
                }),
            ]),
        );
        drain(&mut c);
        // TTS fails on the prompt: the error audio plays, the transfer goes on.
        c.handle_event(t0, CallEventIn::PlaybackFailed("503".into()));
        drain(&mut c);
        c.handle_event(t0, CallEventIn::PlaybackFinished);
        drain(&mut c);
        c.handle_event(t0, CallEventIn::HoldResult(Ok(())));
        drain(&mut c);
        c.handle_event(
            t0,
            CallEventIn::TransferResult(TransferResult::Failed("486".into())),
        );
        let cmds = drain(&mut c);
        assert!(
            cmds.contains(&CallCommand::PlayAudio {
                url: "file:///transfer.wav".into(),
                looped: false
            }),
            "{cmds:?}"
        );
        assert!(!cmds.iter().any(|c| matches!(c, CallCommand::Speak { .. })));
    }

    #[test]
    fn hold_music_started_before_a_transfer_plays_through_hold_and_refer() {
        let (mut c, t0) = answered(ConversationConfig::default());
        c.handle_event(
            t0,
            reply(vec![
                music("file:///hold.wav"),
                VoiceAction::Transfer(Transfer {
                    target: Some("sip:agent@example.com".into()),
                    ..Transfer::default()
                }),
            ]),
        );
        let mut cmds = drain(&mut c);
        c.handle_event(t0, CallEventIn::HoldResult(Ok(())));
        cmds.extend(drain(&mut c));
        assert!(cmds.contains(&CallCommand::Hold), "{cmds:?}");
        assert!(
            cmds.iter().any(|c| matches!(c, CallCommand::Refer(_))),
            "{cmds:?}"
        );
        assert!(!cmds.contains(&CallCommand::StopPlayback), "{cmds:?}");
        // A failed transfer stops it before the failure message.
        c.handle_event(
            t0,
            CallEventIn::TransferResult(TransferResult::Failed("486".into())),
        );
        let cmds = drain(&mut c);
        assert_stops_before_speaking(&cmds);
    }
}
