//! Watson-format fixtures (tests/data/assistant/actions/) for every voice action, in the
//! response-type style and the legacy vgwAct* style.

use std::time::Duration;

use serde_json::{json, Value};
use voxgate::assistant::actions::from_response;
use voxgate::assistant::{
    CallVariable, Context, DtmfCollect, DtmfDigit, SipHeader, Transfer, TransferHeaderMethod,
    TransferMethod, UpdateStrategy, VoiceAction,
};

fn load(name: &str) -> (Vec<VoiceAction>, Context) {
    let path = format!(
        "{}/tests/data/assistant/actions/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut ctx = Context::from_json(v.get("context").cloned().unwrap_or(json!({})));
    let actions = from_response(&v["output"], &mut ctx);
    (actions, ctx)
}

fn speak(t: &str) -> VoiceAction {
    VoiceAction::Speak {
        text: t.into(),
        fallback_audio_url: None,
    }
}

fn h(n: &str, v: &str) -> SipHeader {
    SipHeader {
        name: n.into(),
        value: v.into(),
    }
}

fn obj(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn text_is_prepared_for_speech() {
    assert_eq!(load("rt_text").0, vec![speak("Hello there & welcome.")]);
}

#[test]
fn pause_is_ignored() {
    assert_eq!(load("rt_pause").0, vec![speak("After the pause.")]);
}

#[test]
fn audio_plays_url_in_loop() {
    assert_eq!(
        load("rt_audio").0,
        vec![VoiceAction::PlayAudio {
            url: "https://example.com/hold.wav".into(),
            looped: true
        }]
    );
}

#[test]
fn search_reads_intro_and_first_result_only() {
    assert_eq!(
        load("rt_search_short").0,
        vec![speak("I searched my knowledge base. Reset it in settings.")]
    );
}

#[test]
fn search_of_5000_chars_or_more_is_not_read() {
    assert_eq!(load("rt_search_long").0, vec![]);
}

#[test]
fn connect_to_agent_speaks_then_transfers() {
    let (a, _) = load("rt_connect_to_agent");
    assert_eq!(
        a,
        vec![
            speak("I'll transfer you to an agent"),
            VoiceAction::Transfer(Transfer {
                target: Some("sip:user@domain.com".into()),
                method: TransferMethod::Refer,
                target_header: None,
                headers: vec![
                    h("Customer-Header1", "Some-Custom-Info"),
                    h("User-To-User", "XXXXXX")
                ],
                header_method: TransferHeaderMethod::ReferToHeader,
                accept_codes: vec![410, 202],
                failure_message: Some("Sorry, I could not find an agent.".into()),
            })
        ]
    );
}

#[test]
fn connect_to_agent_hangup_method_with_messages_inside_transfer_info() {
    let (a, _) = load("rt_connect_hangup_method");
    assert_eq!(a[0], speak("Please hold on."));
    let VoiceAction::Transfer(t) = &a[1] else {
        panic!("{a:?}")
    };
    assert_eq!(t.method, TransferMethod::Hangup);
    assert_eq!(t.target_header.as_deref(), Some("Transfer-Target"));
    assert_eq!(t.failure_message.as_deref(), Some("No agent."));
}

#[test]
fn end_session_carries_bye_headers() {
    assert_eq!(
        load("rt_end_session").0,
        vec![VoiceAction::Hangup {
            headers: vec![h("Customer-Header1", "Some-Custom-Info")]
        }]
    );
}

#[test]
fn dtmf_collect_parameters() {
    assert_eq!(
        load("rt_dtmf_collect").0,
        vec![VoiceAction::CollectDtmf(DtmfCollect {
            termination_key: Some('#'),
            count: Some(16),
            minimum_count: None,
            maximum_count: None,
            inter_digit_timeout: Some(Duration::from_millis(3000)),
            ignore_speech: true,
            stop_after_collection: true,
        })]
    );
}

#[test]
fn dtmf_send_digits() {
    let (a, _) = load("rt_dtmf_send");
    let ms = Duration::from_millis;
    assert_eq!(
        a,
        vec![VoiceAction::SendDtmf {
            digits: vec![
                DtmfDigit {
                    code: 9,
                    duration: ms(200),
                    volume: -8
                },
                DtmfDigit {
                    code: 11,
                    duration: ms(100),
                    volume: 0
                }
            ],
            interval: ms(100),
        }]
    );
    let VoiceAction::SendDtmf { digits, .. } = &a[0] else {
        unreachable!()
    };
    assert_eq!(
        digits.iter().map(DtmfDigit::symbol).collect::<String>(),
        "9#"
    );
}

#[test]
fn dtmf_send_with_out_of_range_code_is_skipped_not_fatal() {
    assert_eq!(load("rt_dtmf_send_bad").0, vec![speak("Still here.")]);
}

#[test]
fn dtmf_barge_in_toggles() {
    assert_eq!(
        load("rt_dtmf_barge_in").0,
        vec![
            VoiceAction::DtmfBargeIn(false),
            VoiceAction::DtmfBargeIn(true)
        ]
    );
}

#[test]
fn speech_to_text_configure_with_update_strategy() {
    assert_eq!(
        load("rt_stt_configure").0,
        vec![VoiceAction::ConfigureStt {
            config: obj(
                json!({"narrowband_recognize": {"model": "en-US_NarrowbandModel", "language_customization_id": "abc"}})
            ),
            strategy: UpdateStrategy::MergeOnce,
        }]
    );
}

#[test]
fn text_to_speech_configure_and_barge_in() {
    assert_eq!(
        load("rt_tts_configure").0,
        vec![
            VoiceAction::ConfigureTts {
                config: obj(json!({"synthesize": {"voice": "en-US_LisaVoice"}})),
                strategy: UpdateStrategy::Replace
            },
            VoiceAction::SpeechBargeIn(false),
            VoiceAction::SpeechBargeIn(true),
        ]
    );
}

#[test]
fn start_and_stop_activities() {
    assert_eq!(
        load("rt_activities").0,
        vec![
            VoiceAction::StartActivities(vec![json!({"type": "sip_recording"})]),
            VoiceAction::StopActivities(vec![json!({"type": "sip_recording"})]),
        ]
    );
}

#[test]
fn user_defined_vgw_action_in_generic_order() {
    assert_eq!(
        load("rt_user_defined").0,
        vec![
            VoiceAction::ForceNoInputTurn,
            VoiceAction::PlayAudio {
                url: "https://example.com/moh.wav".into(),
                looped: true
            }
        ]
    );
}

#[test]
fn phone_channel_variant_is_chosen() {
    assert_eq!(load("rt_channels").0, vec![speak("Press one.")]);
}

#[test]
fn unknown_response_types_and_commands_are_skipped() {
    assert_eq!(load("rt_unknown").0, vec![speak("Only this is spoken.")]);
    assert_eq!(load("legacy_unknown").0, vec![speak("Still talking.")]);
}

#[test]
fn legacy_transfer_from_context_is_consumed() {
    let (a, ctx) = load("legacy_transfer");
    assert_eq!(
        a,
        vec![VoiceAction::Transfer(Transfer {
            target: Some("sip:12345556789@myhost.com".into()),
            method: TransferMethod::Refer,
            target_header: None,
            headers: vec![
                h("Custom-Header1", "123"),
                h("X-Reason", "billing"),
                h("User-to-User", "abcd")
            ],
            header_method: TransferHeaderMethod::ContactHeader,
            accept_codes: vec![410, 202],
            failure_message: None,
        })]
    );
    assert!(
        ctx.variable("vgwAction").is_none(),
        "command must run once: {ctx:?}"
    );
}

#[test]
fn legacy_transfer_hangup_method_after_text() {
    let (a, _) = load("legacy_transfer_hangup");
    assert_eq!(a[0], speak("Transferring."));
    let VoiceAction::Transfer(t) = &a[1] else {
        panic!("{a:?}")
    };
    assert_eq!(
        (t.target.as_deref(), t.method),
        (Some("tel:+18883334444"), TransferMethod::Hangup)
    );
    assert_eq!(t.target_header.as_deref(), Some("X-Target"));
}

#[test]
fn legacy_hangup_after_text() {
    assert_eq!(
        load("legacy_hangup").0,
        vec![speak("Goodbye."), VoiceAction::Hangup { headers: vec![] }]
    );
}

#[test]
fn legacy_play_text_with_own_text_and_fallback_audio() {
    assert_eq!(
        load("legacy_play_text").0,
        vec![VoiceAction::Speak {
            text: "Your code is ready.".into(),
            fallback_audio_url: Some("https://example.com/err.wav".into())
        }]
    );
}

#[test]
fn legacy_play_text_without_text_plays_output_in_sequence_position() {
    assert_eq!(
        load("legacy_play_text_default").0,
        vec![
            VoiceAction::SpeechBargeIn(false),
            speak("Default text."),
            VoiceAction::Hangup { headers: vec![] }
        ]
    );
}

#[test]
fn legacy_play_url() {
    assert_eq!(
        load("legacy_play_url").0,
        vec![VoiceAction::PlayAudio {
            url: "https://example.com/a.wav".into(),
            looped: true
        }]
    );
}

#[test]
fn legacy_collect_dtmf_range() {
    assert_eq!(
        load("legacy_collect_dtmf").0,
        vec![VoiceAction::CollectDtmf(DtmfCollect {
            termination_key: Some('#'),
            count: None,
            minimum_count: Some(2),
            maximum_count: Some(6),
            inter_digit_timeout: Some(Duration::from_millis(2500)),
            ignore_speech: true,
            stop_after_collection: true,
        })]
    );
}

#[test]
fn legacy_barge_in_commands() {
    assert_eq!(
        load("legacy_barge_in").0,
        vec![
            VoiceAction::SpeechBargeIn(true),
            VoiceAction::SpeechBargeIn(false),
            VoiceAction::DtmfBargeIn(true),
            VoiceAction::DtmfBargeIn(false)
        ]
    );
}

#[test]
fn legacy_stt_and_dtmf_pause_commands() {
    assert_eq!(
        load("legacy_stt_pause").0,
        vec![
            VoiceAction::PauseStt(true),
            VoiceAction::PauseStt(false),
            VoiceAction::SttDuringPlayback(false),
            VoiceAction::SttDuringPlayback(true),
            VoiceAction::PauseDtmf(true),
            VoiceAction::PauseDtmf(false),
        ]
    );
}

#[test]
fn legacy_stt_and_tts_config() {
    assert_eq!(
        load("legacy_stt_config").0,
        vec![VoiceAction::ConfigureStt {
            config: obj(
                json!({"config": {"model": "en-GB_NarrowbandModel", "smart_formatting": true}})
            ),
            strategy: UpdateStrategy::MergeOnce,
        }]
    );
    assert_eq!(
        load("legacy_tts_config").0,
        vec![VoiceAction::ConfigureTts {
            config: obj(json!({"config": {"voice": "en-GB_KateVoice"}})),
            strategy: UpdateStrategy::Replace
        }]
    );
}

#[test]
fn legacy_force_no_input_exclude_cache_and_sip_info() {
    assert_eq!(
        load("legacy_force_no_input").0,
        vec![VoiceAction::ForceNoInputTurn]
    );
    assert_eq!(
        load("legacy_exclude_cache").0,
        vec![speak("Your PIN is 1234."), VoiceAction::ExcludeFromTtsCache]
    );
    assert_eq!(
        load("legacy_sip_info").0,
        vec![VoiceAction::SendSipInfo {
            headers: vec![
                h("Content-Type", "application/text"),
                h("User-to-User", "3a4b")
            ],
            body: Some("hello".into())
        }]
    );
}

#[test]
fn variables_come_first_legacy_and_modern() {
    let ms = Duration::from_millis;
    assert_eq!(
        load("legacy_variables").0,
        vec![
            VoiceAction::Set(CallVariable::ConversationResponseTimeout(ms(5000))),
            VoiceAction::Set(CallVariable::PostResponseTimeout(ms(9000))),
            VoiceAction::Set(CallVariable::FinalUtteranceTimeout(ms(4000))),
            VoiceAction::Set(CallVariable::DisconnectAfterNoInputTurns(3)),
            VoiceAction::Set(CallVariable::DisconnectOnTransferFailure(false)),
            VoiceAction::Set(CallVariable::TransferFailedMessage(
                "Sorry, the transfer failed.".into()
            )),
            VoiceAction::Set(CallVariable::ErrAudioUrl(
                "https://example.com/err.wav".into()
            )),
            VoiceAction::Set(CallVariable::ConversationFailedAudioUrl(
                "https://example.com/failed.wav".into()
            )),
            VoiceAction::Set(CallVariable::TransferFailedAudioUrl(
                "https://example.com/transfer.wav".into()
            )),
            VoiceAction::Set(CallVariable::ConversationFailedMessage(
                "We have a problem.".into()
            )),
            VoiceAction::Set(CallVariable::CdrCustomData(obj(json!({"key1": "value1"})))),
        ]
    );
    assert_eq!(
        load("modern_variables").0,
        vec![
            VoiceAction::Set(CallVariable::ConversationResponseTimeout(ms(5000))),
            VoiceAction::Set(CallVariable::PostResponseTimeout(ms(10000))),
        ]
    );
}

#[test]
fn v1_top_level_context_commands_and_output_text() {
    let (a, ctx) = load("legacy_top_context");
    assert_eq!(
        a,
        vec![speak("Bye."), VoiceAction::Hangup { headers: vec![] }]
    );
    assert!(ctx.as_map().get("vgwActionSequence").is_none());
    assert_eq!(
        load("legacy_output_text").0,
        vec![speak("First line."), speak("Second line.")]
    );
}

#[test]
fn transfer_failure_message_is_capped_at_1024_chars() {
    let long = "a".repeat(1500);
    let mut ctx = Context::from_json(
        json!({"skills": {"main skill": {"user_defined": {"vgwTransferFailedMessage": long}}}}),
    );
    let a = from_response(&json!({"generic": []}), &mut ctx);
    assert_eq!(
        a,
        vec![VoiceAction::Set(CallVariable::TransferFailedMessage(
            "a".repeat(1024)
        ))]
    );
}
