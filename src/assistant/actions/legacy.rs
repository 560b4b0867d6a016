//! The legacy style: `vgwAct*` commands (`vgwAction`, `vgwActionSequence`) and the
//! `vgw*` call variables.

use super::*;

/// `vgwAction` and `vgwActionSequence` found in an object, in that order of keys:
/// the sequence first if both exist (it is the multi-command form).
pub(super) fn legacy_commands(holder: Option<&Value>) -> Vec<Value> {
    let mut out = Vec::new();
    let Some(h) = holder else { return out };
    if let Some(seq) = h.get("vgwActionSequence").and_then(Value::as_array) {
        out.extend(seq.iter().cloned());
    }
    if let Some(a) = h.get("vgwAction") {
        out.push(a.clone());
    }
    out
}

pub(super) fn parse_legacy(cmd: &Value, out: &mut Vec<(VoiceAction, bool)>) {
    let name = as_str(cmd.get("command")).unwrap_or("");
    let p = cmd.get("parameters").cloned().unwrap_or(Value::Null);
    let push = |out: &mut Vec<(VoiceAction, bool)>, a: VoiceAction| out.push((a, false));
    match name {
        "vgwActPlayText" => {
            let fallback = as_str(p.get("errAudioURL")).map(str::to_string);
            match p
                .get("text")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(Value::as_str)
            {
                Some(t) => {
                    if let Some(VoiceAction::Speak { text, .. }) = speak(t) {
                        push(
                            out,
                            VoiceAction::Speak {
                                text,
                                fallback_audio_url: fallback,
                            },
                        );
                    }
                }
                // Marker: play the turn's text responses here.
                None => out.push((
                    VoiceAction::Speak {
                        text: String::new(),
                        fallback_audio_url: fallback,
                    },
                    true,
                )),
            }
        }
        "vgwActPlayUrl" => match as_str(p.get("url")) {
            Some(url) => push(
                out,
                VoiceAction::PlayAudio {
                    url: url.to_string(),
                    looped: as_bool(p.get("playURLInLoop")).unwrap_or(false),
                },
            ),
            None => tracing::warn!("vgwActPlayUrl without url skipped"),
        },
        "vgwActTransfer" => {
            let mut headers = headers_from_list(p.get("transferHeaders"));
            if let (Some(n), Some(v)) = (
                as_str(p.get("transferHeader")),
                as_str(p.get("transferHeaderVal")),
            ) {
                headers.push(SipHeader {
                    name: n.into(),
                    value: v.into(),
                });
            }
            let header_method = match as_str(p.get("uuiSendMethod")) {
                Some("contactHeader") => TransferHeaderMethod::ContactHeader,
                Some("referToURL") => TransferHeaderMethod::ReferToHeader,
                _ => TransferHeaderMethod::CustomHeader,
            };
            if let Some(uui) = as_str(p.get("uuiData")) {
                headers.push(SipHeader {
                    name: "User-to-User".into(),
                    value: uui.into(),
                });
            }
            let method = match as_str(p.get("transferMethod")) {
                Some(m) if m.eq_ignore_ascii_case("hangup") => TransferMethod::Hangup,
                _ => TransferMethod::Refer,
            };
            let accept_codes = as_str(p.get("acceptTransferRejectCodes"))
                .map(|s| s.split(',').filter_map(|c| c.trim().parse().ok()).collect())
                .unwrap_or_default();
            push(
                out,
                VoiceAction::Transfer(Transfer {
                    target: as_str(p.get("transferTarget")).map(unescape_uri),
                    method,
                    target_header: as_str(p.get("transferTargetHeader")).map(str::to_string),
                    headers,
                    header_method,
                    accept_codes,
                    failure_message: None,
                }),
            );
        }
        "vgwActHangup" => push(
            out,
            VoiceAction::Hangup {
                headers: Vec::new(),
            },
        ),
        "vgwActCollectDTMF" => push(out, parse_collect(&p, true)),
        "vgwActEnableSpeechBargeIn" => push(out, VoiceAction::SpeechBargeIn(true)),
        "vgwActDisableSpeechBargeIn" => push(out, VoiceAction::SpeechBargeIn(false)),
        "vgwActEnableDTMFBargeIn" => push(out, VoiceAction::DtmfBargeIn(true)),
        "vgwActDisableDTMFBargeIn" => push(out, VoiceAction::DtmfBargeIn(false)),
        "vgwActPauseSTT" => push(out, VoiceAction::PauseStt(true)),
        "vgwActUnPauseSTT" => push(out, VoiceAction::PauseStt(false)),
        "vgwActEnableSTTDuringPlayback" => push(out, VoiceAction::SttDuringPlayback(true)),
        "vgwActDisableSTTDuringPlayback" => push(out, VoiceAction::SttDuringPlayback(false)),
        "vgwActPauseDTMF" => push(out, VoiceAction::PauseDtmf(true)),
        "vgwActUnPauseDTMF" => push(out, VoiceAction::PauseDtmf(false)),
        "vgwActSetSTTConfig" => {
            let (config, strategy) = configure(&p, &["updateMethod"]);
            push(out, VoiceAction::ConfigureStt { config, strategy });
        }
        "vgwActSetTTSConfig" => {
            let (config, strategy) = configure(&p, &["updateMethod"]);
            push(out, VoiceAction::ConfigureTts { config, strategy });
        }
        "vgwActForceNoInputTurn" => push(out, VoiceAction::ForceNoInputTurn),
        "vgwActExcludeFromTTSCache" => push(out, VoiceAction::ExcludeFromTtsCache),
        "vgwActSendSIPInfo" => push(
            out,
            VoiceAction::SendSipInfo {
                headers: headers_from_list(p.get("sipHeaders")),
                body: as_str(p.get("messageBody")).map(str::to_string),
            },
        ),
        other => tracing::warn!(command = other, "unknown phone command skipped"),
    }
}

pub(super) fn variables(context: &Context) -> Vec<VoiceAction> {
    let mut out = Vec::new();
    let ud = context.user_defined();
    let vt = context.voice_telephony();
    let get = |legacy: &str, modern: &str| {
        vt.and_then(|v| {
            if modern.contains('/') {
                v.get("turn_settings").and_then(|t| t.get("timeout_count"))
            } else {
                v.get(modern)
            }
        })
        .or_else(|| ud.and_then(|u| u.get(legacy)))
    };
    let mut push_ms = |v: Option<&Value>, f: fn(Duration) -> CallVariable| {
        if let Some(d) = millis(v) {
            out.push(VoiceAction::Set(f(d)));
        }
    };
    push_ms(
        get(
            "vgwConversationResponseTimeout",
            "turn_settings/timeout_count",
        ),
        CallVariable::ConversationResponseTimeout,
    );
    push_ms(
        get("vgwPostResponseTimeoutCount", "post_response_timeout_count"),
        CallVariable::PostResponseTimeout,
    );
    push_ms(
        get("vgwFinalUtteranceTimeout", "final_utterance_timeout_count"),
        CallVariable::FinalUtteranceTimeout,
    );
    let u = |k: &str| ud.and_then(|u| u.get(k));
    if let Some(n) = as_u32(u("vgwDisconnectCallOnNoUserInputTurnCount")) {
        out.push(VoiceAction::Set(CallVariable::DisconnectAfterNoInputTurns(
            n,
        )));
    }
    if let Some(b) = as_bool(u("vgwDisconnectCallOnTransferFailure")) {
        out.push(VoiceAction::Set(CallVariable::DisconnectOnTransferFailure(
            b,
        )));
    }
    if let Some(m) = as_str(u("vgwTransferFailedMessage")) {
        out.push(VoiceAction::Set(CallVariable::TransferFailedMessage(
            transfer_failure_text(m),
        )));
    }
    for (key, var) in [
        (
            "vgwErrAudioURL",
            CallVariable::ErrAudioUrl as fn(String) -> CallVariable,
        ),
        (
            "vgwConversationFailedAudioURL",
            CallVariable::ConversationFailedAudioUrl,
        ),
        (
            "vgwTransferFailedAudioURL",
            CallVariable::TransferFailedAudioUrl,
        ),
    ] {
        if let Some(url) = as_str(u(key)).filter(|s| !s.trim().is_empty()) {
            out.push(VoiceAction::Set(var(url.to_owned())));
        }
    }
    if let Some(m) = as_str(u("vgwConversationFailedMessage")) {
        out.push(VoiceAction::Set(CallVariable::ConversationFailedMessage(
            prepare_for_speech(m),
        )));
    }
    if let Some(cdr) = vt
        .and_then(|v| v.get("cdr_custom_data"))
        .and_then(Value::as_object)
    {
        out.push(VoiceAction::Set(CallVariable::CdrCustomData(cdr.clone())));
    }
    out
}

/// Removes and returns the legacy commands held in a context object (`vgwActionSequence`
/// items first, then `vgwAction`). v1-style exports put them at the top of the context,
/// v2 dialog skills under `skills["main skill"].user_defined`.
pub(super) fn take_legacy(map: &mut Map<String, Value>) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(Value::Array(seq)) = map.remove("vgwActionSequence") {
        out.extend(seq);
    }
    if let Some(a) = map.remove("vgwAction") {
        out.push(a);
    }
    out
}
