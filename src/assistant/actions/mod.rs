//! Voice actions: what the call layer does with an assistant reply.
//!
//! Reads both styles of the phone integration docs:
//! - response types in `output.generic` (`text`, `pause`, `audio`, `search`,
//!   `connect_to_agent`, `end_session`, `dtmf`, `speech_to_text`, `text_to_speech`,
//!   `start_activities`, `stop_activities`, `user_defined` with `vgwAction`);
//! - legacy `vgwAct*` commands in `output` or the context (`vgwAction`,
//!   `vgwActionSequence`) and the `vgw*` variables.
//!
//! Order of the list: variables first (timeouts and failure messages must apply before
//! anything runs), then `output.generic` in order, then legacy commands from `output`,
//! then legacy commands from the context. A legacy `vgwActPlayText` without its own `text`
//! plays the turn's text responses at its position (they are not spoken twice).
//! Unknown or malformed commands are logged (`tracing::warn!`) and skipped; they never
//! end a call.

use std::time::Duration;

use serde_json::{Map, Value};

use super::context::Context;
use super::speech_text::prepare_for_speech;
use crate::settings::MAX_TRANSFER_FAILURE_MESSAGE;

mod legacy;
use legacy::{legacy_commands, parse_legacy, take_legacy, variables};

/// Longest search answer (intro plus first result, in characters) that is read out.
pub const MAX_SEARCH_CHARS: usize = 5000;

/// A SIP header name and value to add to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// How a transfer is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferMethod {
    /// SIP REFER (default).
    #[default]
    Refer,
    /// Play the text, then BYE with the target in a header.
    Hangup,
}

/// Where the transfer headers go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferHeaderMethod {
    /// As headers of the REFER (default).
    #[default]
    CustomHeader,
    /// As URI headers of the Contact.
    ContactHeader,
    /// As URI headers of the Refer-To.
    ReferToHeader,
}

/// A transfer to a human agent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transfer {
    /// SIP or tel URI, with the `\\@` escape removed. `None` when only the hangup method
    /// is used with a target taken from the integration settings.
    pub target: Option<String>,
    /// REFER or BYE.
    pub method: TransferMethod,
    /// Header that carries the target in the BYE (hangup method); default `Transfer-Target`.
    pub target_header: Option<String>,
    /// Headers to add to the transfer request.
    pub headers: Vec<SipHeader>,
    /// Where those headers go.
    pub header_method: TransferHeaderMethod,
    /// NOTIFY status codes to treat as success.
    pub accept_codes: Vec<u16>,
    /// Played if the transfer fails (`agent_unavailable.message`).
    pub failure_message: Option<String>,
}

/// Parameters of a DTMF collection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DtmfCollect {
    /// Key that ends the input, e.g. `#`.
    pub termination_key: Option<char>,
    /// Exact number of digits.
    pub count: Option<u32>,
    /// Minimum number of digits.
    pub minimum_count: Option<u32>,
    /// Maximum number of digits; reaching it ends the collection.
    pub maximum_count: Option<u32>,
    /// Time allowed between digits.
    pub inter_digit_timeout: Option<Duration>,
    /// Ignore speech once a digit arrived, until the collection ends.
    pub ignore_speech: bool,
    /// Stop DTMF input when the collection completes.
    pub stop_after_collection: bool,
}

/// One DTMF tone to send (RFC 4733 event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// Event code 0-15 (`*` = 10, `#` = 11, `A`-`D` = 12-15).
    pub code: u8,
    /// Tone duration (default 200 ms).
    pub duration: Duration,
    /// Power level in dBm0, 0 to -63 (default 0).
    pub volume: i8,
}

impl DtmfDigit {
    /// The key this code stands for.
    pub fn symbol(&self) -> char {
        match self.code {
            0..=9 => char::from(b'0' + self.code),
            10 => '*',
            11 => '#',
            c => char::from(b'A' + (c - 12)),
        }
    }
}

/// How a speech configuration change applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateStrategy {
    /// Replace for the rest of the call (default).
    #[default]
    Replace,
    /// Replace for the next turn only.
    ReplaceOnce,
    /// Merge for the rest of the call.
    Merge,
    /// Merge for the next turn only.
    MergeOnce,
}

impl UpdateStrategy {
    fn parse(s: &str) -> Option<UpdateStrategy> {
        match s {
            "replace" => Some(UpdateStrategy::Replace),
            "replace_once" | "replaceOnce" => Some(UpdateStrategy::ReplaceOnce),
            "merge" => Some(UpdateStrategy::Merge),
            "merge_once" | "mergeOnce" => Some(UpdateStrategy::MergeOnce),
            _ => None,
        }
    }
}

/// A call setting the assistant sets through a `vgw*` variable or
/// `integrations.voice_telephony`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CallVariable {
    /// `vgwConversationResponseTimeout` / `turn_settings.timeout_count`.
    ConversationResponseTimeout(Duration),
    /// `vgwPostResponseTimeoutCount` / `post_response_timeout_count`.
    PostResponseTimeout(Duration),
    /// `vgwFinalUtteranceTimeout` / `final_utterance_timeout_count`.
    FinalUtteranceTimeout(Duration),
    /// `vgwDisconnectCallOnTransferFailure`: `Yes` hangs up, `No` sends
    /// `vgwCallTransferFailed` to the assistant.
    DisconnectOnTransferFailure(bool),
    /// `vgwDisconnectCallOnNoUserInputTurnCount`: hang up after this many consecutive
    /// post-response timeouts (0 = never).
    DisconnectAfterNoInputTurns(u32),
    /// `vgwTransferFailedMessage`.
    TransferFailedMessage(String),
    /// `vgwConversationFailedMessage`.
    ConversationFailedMessage(String),
    /// `vgwErrAudioURL`: played when the TTS service cannot say a response.
    ErrAudioUrl(String),
    /// `vgwConversationFailedAudioURL`: played when the TTS service cannot say the
    /// call-failure message.
    ConversationFailedAudioUrl(String),
    /// `vgwTransferFailedAudioURL`: played when the TTS service cannot say the
    /// transfer-failure message.
    TransferFailedAudioUrl(String),
    /// `cdr_custom_data`, merged into the call record.
    CdrCustomData(Map<String, Value>),
}

/// One thing the call layer must do, in list order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum VoiceAction {
    /// Synthesise and play text (already prepared for speech).
    Speak {
        /// Plain text.
        text: String,
        /// WAV to play if TTS is unreachable (`errAudioURL`).
        fallback_audio_url: Option<String>,
    },
    /// Play a WAV (8 kHz mono PCM) from a URL (`audio`, `vgwActPlayUrl`).
    PlayAudio {
        /// Source URL.
        url: String,
        /// Restart when finished, until the next turn.
        looped: bool,
    },
    /// Transfer the call (`connect_to_agent`, `vgwActTransfer`).
    Transfer(Transfer),
    /// End the call with BYE (`end_session`, `vgwActHangup`).
    Hangup {
        /// Headers to add to the BYE.
        headers: Vec<SipHeader>,
    },
    /// Collect DTMF digits for the next turn.
    CollectDtmf(DtmfCollect),
    /// Send DTMF tones to the caller.
    SendDtmf {
        /// Tones in order.
        digits: Vec<DtmfDigit>,
        /// Gap between tones (default 200 ms).
        interval: Duration,
    },
    /// Whether keypresses interrupt playback.
    DtmfBargeIn(bool),
    /// Whether speech interrupts playback.
    SpeechBargeIn(bool),
    /// Pause (`true`) or resume (`false`) speech recognition.
    PauseStt(bool),
    /// Whether recognition runs during playback.
    SttDuringPlayback(bool),
    /// Ignore (`true`) or accept again (`false`) DTMF input.
    PauseDtmf(bool),
    /// Reconfigure speech to text (opaque Watson STT parameters).
    ConfigureStt {
        /// `narrowband_recognize`, `broadband_recognize`, `band_preference`, ... (or the
        /// legacy `config`, `broadbandConfig`, `bandPreference`).
        config: Map<String, Value>,
        /// How the change applies.
        strategy: UpdateStrategy,
    },
    /// Reconfigure text to speech (opaque Watson TTS parameters, e.g. `synthesize.voice`
    /// or the legacy `config.voice`).
    ConfigureTts {
        /// The parameters.
        config: Map<String, Value>,
        /// How the change applies.
        strategy: UpdateStrategy,
    },
    /// Start activities such as recording (`start_activities`).
    StartActivities(Vec<Value>),
    /// Stop activities (`stop_activities`).
    StopActivities(Vec<Value>),
    /// Start a new turn at once with `vgwNoInputTurn`.
    ForceNoInputTurn,
    /// Send a SIP INFO (`vgwActSendSIPInfo`).
    SendSipInfo {
        /// Headers of the INFO.
        headers: Vec<SipHeader>,
        /// Optional body.
        body: Option<String>,
    },
    /// Do not cache this turn's synthesis (`vgwActExcludeFromTTSCache`).
    ExcludeFromTtsCache,
    /// Change a call setting.
    Set(CallVariable),
}

fn as_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str)
}

fn as_num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_u32(v: Option<&Value>) -> Option<u32> {
    as_num(v)
        .filter(|n| *n >= 0.0 && *n <= f64::from(u32::MAX))
        .map(|n| n as u32)
}

fn as_bool(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" => Some(true),
            "no" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn millis(v: Option<&Value>) -> Option<Duration> {
    as_num(v)
        .filter(|n| *n >= 0.0 && n.is_finite())
        .map(|n| Duration::from_millis(n as u64))
}

/// Removes the `\\@` (or `\@`) escape Watson requires in SIP URIs.
pub fn unescape_uri(uri: &str) -> String {
    uri.replace("\\\\@", "@").replace("\\@", "@")
}

fn headers_from_list(v: Option<&Value>) -> Vec<SipHeader> {
    let mut out = Vec::new();
    match v {
        Some(Value::Array(items)) => {
            for item in items {
                if let (Some(n), Some(val)) = (as_str(item.get("name")), item.get("value")) {
                    let value = val
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| val.to_string());
                    out.push(SipHeader {
                        name: n.to_string(),
                        value,
                    });
                }
            }
        }
        Some(Value::Object(map)) => {
            for (n, val) in map {
                let value = val
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| val.to_string());
                out.push(SipHeader {
                    name: n.clone(),
                    value,
                });
            }
        }
        _ => {}
    }
    out
}

fn is_for_phone(response: &Value) -> bool {
    match response.get("channels").and_then(Value::as_array) {
        None => true,
        Some(chs) => chs
            .iter()
            .any(|c| as_str(c.get("channel")) == Some("voice_telephony")),
    }
}

fn speak(text: &str) -> Option<VoiceAction> {
    let t = prepare_for_speech(text);
    (!t.is_empty()).then_some(VoiceAction::Speak {
        text: t,
        fallback_audio_url: None,
    })
}

/// A transfer-failure message prepared for speech and capped at the integration's limit
/// ([`MAX_TRANSFER_FAILURE_MESSAGE`] characters).
fn transfer_failure_text(m: &str) -> String {
    let t = prepare_for_speech(m);
    if t.chars().count() > MAX_TRANSFER_FAILURE_MESSAGE {
        tracing::warn!(
            chars = t.chars().count(),
            "transfer-failure message over {MAX_TRANSFER_FAILURE_MESSAGE} characters; truncated"
        );
        return t.chars().take(MAX_TRANSFER_FAILURE_MESSAGE).collect();
    }
    t
}

fn object_params(v: Option<&Value>) -> Map<String, Value> {
    v.and_then(Value::as_object).cloned().unwrap_or_default()
}

fn configure(params: &Value, strategy_keys: &[&str]) -> (Map<String, Value>, UpdateStrategy) {
    let mut config = object_params(Some(params));
    let mut strategy = UpdateStrategy::Replace;
    for k in strategy_keys {
        if let Some(v) = config.remove(*k) {
            match v.as_str().and_then(UpdateStrategy::parse) {
                Some(s) => strategy = s,
                None => tracing::warn!(value = %v, "unknown update strategy; using replace"),
            }
        }
    }
    (config, strategy)
}

fn parse_collect(p: &Value, legacy: bool) -> VoiceAction {
    let k = |modern: &'static str, old: &'static str| p.get(if legacy { old } else { modern });
    VoiceAction::CollectDtmf(DtmfCollect {
        termination_key: as_str(k("termination_key", "dtmfTermKey")).and_then(|s| s.chars().next()),
        count: as_u32(k("count", "dtmfCount")),
        minimum_count: as_u32(k("minimum_count", "dtmfMinCount")),
        maximum_count: as_u32(k("maximum_count", "dtmfMaxCount")),
        inter_digit_timeout: millis(k("inter_digit_timeout_count", "dtmfInterDigitTimeoutCount")),
        ignore_speech: as_bool(k("ignore_speech", "dtmfIgnoreSpeech")).unwrap_or(false),
        stop_after_collection: as_bool(k("stop_after_collection", "dtmfPauseAfterCollection"))
            .unwrap_or(false),
    })
}

fn parse_send(p: &Value) -> Option<VoiceAction> {
    let mut digits = Vec::new();
    for d in p.get("digits")?.as_array()? {
        let code = as_u32(d.get("code")).filter(|c| *c <= 15)?;
        let volume = as_num(d.get("volume")).unwrap_or(0.0);
        if !(-63.0..=0.0).contains(&volume) {
            return None;
        }
        digits.push(DtmfDigit {
            code: code as u8,
            duration: millis(d.get("duration")).unwrap_or(Duration::from_millis(200)),
            volume: volume as i8,
        });
    }
    let interval = millis(p.get("send_interval")).unwrap_or(Duration::from_millis(200));
    Some(VoiceAction::SendDtmf { digits, interval })
}

fn parse_connect_to_agent(r: &Value) -> Vec<VoiceAction> {
    let info = r.get("transfer_info");
    let sip = info.and_then(|i| i.pointer("/target/service_desk/sip"));
    let msg = |key: &str| {
        as_str(r.get(key).and_then(|m| m.get("message")))
            .or_else(|| as_str(info.and_then(|i| i.get(key)).and_then(|m| m.get("message"))))
    };
    let get = |k: &str| sip.and_then(|s| s.get(k));
    let method = match as_str(get("transfer_method")) {
        Some(m) if m.eq_ignore_ascii_case("hangup") => TransferMethod::Hangup,
        _ => TransferMethod::Refer,
    };
    let target = as_str(get("uri")).map(unescape_uri);
    let mut out = Vec::new();
    if target.is_none() && method == TransferMethod::Refer {
        tracing::warn!("connect_to_agent without transfer_info.target.service_desk.sip.uri; using the integration's failure target");
    }
    if let Some(a) = msg("agent_available").and_then(speak) {
        out.push(a);
    }
    let header_method = match as_str(get("transfer_headers_send_method")) {
        Some("contact_header") => TransferHeaderMethod::ContactHeader,
        Some("refer_to_header") => TransferHeaderMethod::ReferToHeader,
        _ => TransferHeaderMethod::CustomHeader,
    };
    let codes = get("accept_transfer_reject_codes").or_else(|| get("notify_codes_to_accept"));
    let accept_codes = codes
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|c| as_u32(Some(c)).map(|c| c as u16))
                .collect()
        })
        .unwrap_or_default();
    out.push(VoiceAction::Transfer(Transfer {
        target,
        method,
        target_header: as_str(get("transfer_target_header")).map(str::to_string),
        headers: headers_from_list(get("transfer_headers")),
        header_method,
        accept_codes,
        failure_message: msg("agent_unavailable").map(transfer_failure_text),
    }));
    out
}

fn parse_search(r: &Value) -> Option<VoiceAction> {
    let header = as_str(r.get("header")).unwrap_or("");
    let results = r.get("primary_results").or_else(|| r.get("results"));
    let first = results.and_then(Value::as_array).and_then(|a| a.first());
    let body = first
        .and_then(|f| {
            as_str(f.get("body")).or_else(|| {
                as_str(
                    f.get("highlight")
                        .and_then(|h| h.get("body"))
                        .and_then(|b| b.get(0)),
                )
            })
        })
        .unwrap_or("");
    let text = prepare_for_speech(&format!("{header}\n\n{body}"));
    let chars = text.chars().count();
    if chars >= MAX_SEARCH_CHARS {
        tracing::warn!(
            chars,
            "search response of 5,000 characters or more is not read"
        );
        return None;
    }
    (!text.is_empty()).then_some(VoiceAction::Speak {
        text,
        fallback_audio_url: None,
    })
}

/// Parses one `output.generic` item. `texts` collects spoken text for legacy PlayText.
fn parse_generic(r: &Value, out: &mut Vec<(VoiceAction, bool)>) {
    if !is_for_phone(r) {
        return;
    }
    let cmd = r
        .pointer("/command_info/type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let params = r
        .pointer("/command_info/parameters")
        .cloned()
        .unwrap_or(Value::Null);
    let push = |out: &mut Vec<(VoiceAction, bool)>, a: VoiceAction| out.push((a, false));
    match as_str(r.get("response_type")).unwrap_or("") {
        "text" => {
            let t = as_str(r.get("text")).or_else(|| {
                as_str(
                    r.get("values")
                        .and_then(|v| v.get(0))
                        .and_then(|v| v.get("text")),
                )
            });
            if let Some(a) = t.and_then(speak) {
                out.push((a, true));
            }
        }
        "pause" => tracing::debug!("pause response ignored on the phone"),
        "audio" => match as_str(r.get("source")) {
            Some(url) => push(
                out,
                VoiceAction::PlayAudio {
                    url: url.to_string(),
                    looped: as_bool(r.pointer("/channel_options/voice_telephony/loop"))
                        .unwrap_or(false),
                },
            ),
            None => tracing::warn!("audio response without source skipped"),
        },
        "search" => {
            if let Some(a) = parse_search(r) {
                push(out, a);
            }
        }
        "connect_to_agent" => {
            for a in parse_connect_to_agent(r) {
                push(out, a);
            }
        }
        "end_session" => push(
            out,
            VoiceAction::Hangup {
                headers: headers_from_list(
                    r.pointer("/channel_options/voice_telephony/sip/headers"),
                ),
            },
        ),
        "dtmf" => match cmd {
            "collect" => push(out, parse_collect(&params, false)),
            "send" => match parse_send(&params) {
                Some(a) => push(out, a),
                None => tracing::warn!("dtmf send with invalid digits skipped"),
            },
            "disable_barge_in" => push(out, VoiceAction::DtmfBargeIn(false)),
            "enable_barge_in" => push(out, VoiceAction::DtmfBargeIn(true)),
            "stop" => push(out, VoiceAction::PauseDtmf(true)),
            "start" => push(out, VoiceAction::PauseDtmf(false)),
            other => tracing::warn!(command = other, "unknown dtmf command skipped"),
        },
        "speech_to_text" => match cmd {
            "configure" => {
                let (config, strategy) = configure(&params, &["update_strategy"]);
                push(out, VoiceAction::ConfigureStt { config, strategy });
            }
            other => tracing::warn!(command = other, "unknown speech_to_text command skipped"),
        },
        "text_to_speech" => match cmd {
            "configure" => {
                let (config, strategy) = configure(&params, &["update_strategy", "update_method"]);
                push(out, VoiceAction::ConfigureTts { config, strategy });
            }
            "disable_barge_in" => push(out, VoiceAction::SpeechBargeIn(false)),
            "enable_barge_in" => push(out, VoiceAction::SpeechBargeIn(true)),
            other => tracing::warn!(command = other, "unknown text_to_speech command skipped"),
        },
        "start_activities" | "stop_activities" => {
            let list = r
                .get("activities")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let start = as_str(r.get("response_type")) == Some("start_activities");
            push(
                out,
                if start {
                    VoiceAction::StartActivities(list)
                } else {
                    VoiceAction::StopActivities(list)
                },
            );
        }
        "user_defined" => {
            let ud = r.get("user_defined");
            for cmd in legacy_commands(ud) {
                parse_legacy(&cmd, out);
            }
        }
        other => tracing::warn!(
            response_type = other,
            "response type not supported on the phone; skipped"
        ),
    }
}

/// Turns a v2 `output` object and the returned context into voice actions. Legacy
/// commands found in the context are consumed (removed), so they run once.
pub fn from_response(output: &Value, context: &mut Context) -> Vec<VoiceAction> {
    let mut actions = variables(context);
    let mut list: Vec<(VoiceAction, bool)> = Vec::new();
    match output.get("generic").and_then(Value::as_array) {
        Some(generic) => {
            for r in generic {
                parse_generic(r, &mut list);
            }
        }
        None => {
            // Pre-generic (v1 style) output: `text` is a string or a list of strings.
            let texts: Vec<&str> = match output.get("text") {
                Some(Value::String(s)) => vec![s.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            for t in texts {
                if let Some(a) = speak(t) {
                    list.push((a, true));
                }
            }
        }
    }
    let mut legacy = Vec::new();
    for cmd in legacy_commands(Some(output)) {
        parse_legacy(&cmd, &mut legacy);
    }
    let from_user_defined = take_legacy(context.user_defined_mut());
    let mut top = context.to_json();
    let from_top = top.as_object_mut().map(take_legacy).unwrap_or_default();
    if !from_top.is_empty() {
        *context = Context::from_json(top);
    }
    for cmd in from_user_defined.into_iter().chain(from_top) {
        parse_legacy(&cmd, &mut legacy);
    }
    let plays_default = legacy.iter().any(|(a, marker)| {
        *marker && matches!(a, VoiceAction::Speak { text, .. } if text.is_empty())
    });
    if plays_default {
        let texts: Vec<VoiceAction> = list
            .iter()
            .filter(|(_, t)| *t)
            .map(|(a, _)| a.clone())
            .collect();
        list.retain(|(_, t)| !*t);
        let mut merged = Vec::new();
        let mut used = false;
        for (a, marker) in legacy {
            match a {
                VoiceAction::Speak {
                    text,
                    fallback_audio_url,
                } if marker && text.is_empty() => {
                    if !used {
                        for t in &texts {
                            if let VoiceAction::Speak { text, .. } = t {
                                merged.push((
                                    VoiceAction::Speak {
                                        text: text.clone(),
                                        fallback_audio_url: fallback_audio_url.clone(),
                                    },
                                    false,
                                ));
                            }
                        }
                        used = true;
                    }
                }
                other => merged.push((other, false)),
            }
        }
        legacy = merged;
    }
    actions.extend(list.into_iter().map(|(a, _)| a));
    actions.extend(legacy.into_iter().map(|(a, _)| a));
    actions
}

/// Parses a whole v2 message response body (`{"output": ..., "context": ...}`) and turns
/// it into voice actions plus the context to keep.
pub fn from_message_json(body: &[u8]) -> Result<(Vec<VoiceAction>, Context), serde_json::Error> {
    let v: Value = serde_json::from_slice(body)?;
    let mut context = Context::from_json(v.get("context").cloned().unwrap_or(Value::Null));
    let actions = from_response(v.get("output").unwrap_or(&Value::Null), &mut context);
    Ok((actions, context))
}
