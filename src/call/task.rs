//! The call task: one per call. It owns the call's [`Conversation`], its media session
//! ([`CallMedia`]), its recognition stream, the current synthesis, and its assistant
//! session, and executes the conversation's commands against the SIP dialog
//! ([`GatewayHandle`]).
//!
//! Everything the call waits on is one `select!`: engine events, recognition events,
//! synthesis chunks, the outstanding assistant request, the outstanding hold/REFER, SIP
//! events for this call, and the conversation's next timer. Blocking work (the embedded
//! recogniser and synthesiser) runs in the speech providers' own threads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio::sync::mpsc;
use tracing::Instrument as _;
use voxgate_engine::worker::Event as MediaEvent;

use super::conversation::{
    CallCommand, CallEventIn, CallOutcome, Conversation, ConversationConfig, TransferResult,
};
use super::dtmf_sequence::DtmfSequence;
use super::media::{CallMedia, MediaHub};
use super::speech_config::{SpeechConfig, SttSettings, TtsSettings};
use crate::assistant::{
    Assistant, AssistantError, AssistantSession, Context, Reply, TransferHeaderMethod,
    VoiceTelephony,
};
use crate::cdr::CallRecorder;
use crate::gateway::GatewayHandle;
use crate::live_calls::{LiveCallState, LiveUpdate};
use crate::metrics::{metrics, Provider};
use crate::settings::IntegrationSettings;
use crate::sip::dialog::{CallRef, Direction, ReferRequest, TransferOutcome};
use crate::sip::ua::{CallEvent as SipEvent, IncomingCall};
use crate::speech::{
    AudioChunk, Grammar, RecognitionEvent, RecognitionStream, RecognizeOptions, SpeechError,
    SpeechToText, SynthesisRequest, SynthesisStream, TextToSpeech,
};
use crate::store::{CallEnd, CallStart, RtpStats, SipDetails, StreamStats, TurnLatency};

/// What every call needs, shared.
#[derive(Clone)]
pub struct CallServices {
    /// SIP per-call commands.
    pub gateway: GatewayHandle,
    /// Media sessions.
    pub media: MediaHub,
    /// Speech to text.
    pub stt: Arc<dyn SpeechToText>,
    /// Text to speech.
    pub tts: Arc<dyn TextToSpeech>,
    /// The embedded synthesiser, for the call-failure message when `tts` is what failed.
    pub tts_fallback: Arc<dyn TextToSpeech>,
    /// The assistant.
    pub assistant: Arc<dyn Assistant>,
    /// The embedded recogniser's grammar (the assistant's vocabulary).
    pub grammar: Option<Arc<Grammar>>,
    /// Integration settings at call start.
    pub settings: Arc<IntegrationSettings>,
    /// Where each turn and the end of the call are reported.
    pub observer: Option<mpsc::UnboundedSender<CallNotice>>,
    /// Call records and monthly active users (`None`: not recorded, e.g. the demo).
    pub recorder: Option<CallRecorder>,
    /// Live settings: each new call takes the settings current when it arrives.
    pub live: Option<crate::live::LiveState>,
}

impl std::fmt::Debug for CallServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallServices")
            .field("stt", &self.stt)
            .field("tts", &self.tts)
            .finish()
    }
}

/// Per-turn timings (monotonic), for the log and the call record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnTiming {
    /// Turn number (1 = welcome).
    pub turn: u32,
    /// What the caller said or keyed (empty for the welcome and events).
    pub input: String,
    /// End of caller speech (last audio pushed) → final transcript.
    pub recognition: Option<Duration>,
    /// Request sent → reply received.
    pub assistant: Option<Duration>,
    /// Reply received → first synthesized chunk.
    pub synthesis: Option<Duration>,
    /// Reply received → first audio queued to the media core.
    pub reply_to_audio: Option<Duration>,
    /// Reply received → the answer's first RTP packet sent by the media core (the
    /// gateway's own share is this minus `synthesis`).
    pub reply_to_first_packet: Option<Duration>,
    /// What the assistant said first in this turn.
    pub response: String,
    /// The caller interrupted a prompt to give this turn's input.
    pub barge_in: bool,
    /// Barge-in: the caller's speech or key detected → playback stopped on the media
    /// core (the core stops sending at its next packet).
    pub barge_in_stop: Option<Duration>,
    /// Final transcript (or key) in → request handed to the assistant: the gateway's own
    /// share before the assistant.
    pub input_to_assistant: Option<Duration>,
}

impl TurnTiming {
    /// The gateway's own share of the turn: everything but STT, assistant and TTS
    /// compute (input → assistant request, plus first synthesized chunk → the answer's
    /// first RTP packet). `None` until that packet is sent.
    pub fn gateway_share(&self) -> Option<Duration> {
        let out = self
            .reply_to_first_packet?
            .checked_sub(self.synthesis.unwrap_or_default())?;
        Some(out + self.input_to_assistant.unwrap_or_default())
    }
}

/// What a call reports while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum CallNotice {
    /// A turn finished (its answer started playing, or it had no speech).
    Turn {
        /// SIP Call-ID.
        call_id: String,
        /// Timings.
        timing: TurnTiming,
    },
    /// The call ended.
    Ended {
        /// SIP Call-ID.
        call_id: String,
        /// How.
        outcome: CallOutcome,
        /// Turns taken.
        turns: u32,
    },
}

type AssistantFuture =
    BoxFuture<'static, (Box<dyn AssistantSession>, Result<Reply, AssistantError>)>;
type SipFuture = BoxFuture<'static, CallEventIn>;

/// Runs one call from its INVITE to its end, in the call's span
/// ([`crate::logs::call_span`]: Call-ID, instance ID, redacted caller number).
pub async fn run_call(
    svc: CallServices,
    incoming: IncomingCall,
    sip_events: mpsc::UnboundedReceiver<SipEvent>,
) -> CallOutcome {
    let instance_id = svc
        .recorder
        .as_ref()
        .map(|r| r.instance_id().to_owned())
        .unwrap_or_default();
    let span = crate::logs::call_span(
        &incoming.call_id,
        &instance_id,
        incoming.caller_number.as_deref().unwrap_or_default(),
    );
    // Instrumented, not entered: the span is current only while this call's task is
    // polled, so other tasks on the same thread never log under it.
    call_task(svc, incoming, sip_events).instrument(span).await
}

async fn call_task(
    svc: CallServices,
    incoming: IncomingCall,
    mut sip_events: mpsc::UnboundedReceiver<SipEvent>,
) -> CallOutcome {
    let call = incoming.call;
    let call_id = incoming.call_id.clone();
    let notify = |n: CallNotice| {
        if let Some(o) = &svc.observer {
            let _ = o.send(n);
        }
    };

    let record = match &svc.recorder {
        Some(r) => {
            let start = CallStart {
                started_at: crate::store::records::now_millis(),
                caller_number: incoming.caller_number.clone().unwrap_or_default(),
                called_number: incoming.called_number.clone(),
                sip_call_id: incoming.call_id.clone(),
                instance_id: r.instance_id().to_owned(),
                sip: SipDetails {
                    from_uri: Some(incoming.from.clone()),
                    to_uri: Some(incoming.to.clone()),
                    signaling_encrypted: incoming.transport == crate::sip::ua::Transport::Tls,
                    sip_authenticated: svc.settings.sip_auth.is_some(),
                    ..SipDetails::default()
                },
            };
            match r.start(start).await {
                Ok(id) => Some(id),
                Err(e) => {
                    tracing::error!("call record not started: {e}");
                    None
                }
            }
        }
        None => None,
    };

    // Answer first: a caller hears the failure message even when the assistant is down.
    match svc.gateway.answer(call).await {
        Ok(Ok(())) => {}
        other => {
            tracing::warn!(?other, "answer failed");
            let outcome = CallOutcome::CallFailed("answer failed".into());
            finish_record(&svc, record, &outcome, 0, Vec::new(), None, None).await;
            return outcome;
        }
    }
    if let (Some(r), Some(id)) = (&svc.recorder, record) {
        if let Err(e) = r.answer(id, crate::store::records::now_millis()).await {
            tracing::error!("call record answer time not written: {e}");
        }
    }
    let Some(mut media) = svc.media.attach(call) else {
        // The SIP side closes the media session when the dialog ends: a caller who hung
        // up between the answer and now is a completed (abandoned) call, not a failure.
        // Its `Ended` may still be on the way: wait for it, bounded.
        let hung_up = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(ev) = sip_events.recv().await {
                if matches!(ev, SipEvent::Ended { .. }) {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        let outcome = if hung_up {
            tracing::info!("caller hung up before the call's media was set up");
            CallOutcome::Completed
        } else {
            tracing::warn!("no media session for the call");
            let _ = svc.gateway.hangup(call, Vec::new()).await;
            CallOutcome::CallFailed("no media session".into())
        };
        finish_record(&svc, record, &outcome, 0, Vec::new(), None, None).await;
        return outcome;
    };
    let mut latencies: Vec<TurnLatency> = Vec::new();
    let mut custom_data: Option<serde_json::Map<String, serde_json::Value>> = None;
    let mut last_stats: Option<voxgate_engine::session::SessionStats> = None;
    let codec = crate::store::emodel::MediaCodec::of(media.codec);

    let mut context = initial_context(&incoming);

    let mut conv = Conversation::new(ConversationConfig::from_settings(&svc.settings));
    let mut session: Option<Box<dyn AssistantSession>> = None;
    let mut assistant_call: Option<AssistantFuture> = None;
    let mut sip_call: Option<SipFuture> = None;
    let mut synth: Option<SynthesisStream> = None;
    let mut synth_done = true;
    let mut playing = false;
    // Looped audio (hold music), queued again each time it has played out.
    let mut music: Option<Vec<i16>> = None;
    // The turn's answer is queued; its report waits for the first RTP packet.
    let mut turn_pending = false;
    // The assistant's speech configuration changes (configure commands).
    // and what they mean to the providers (derived on each change).
    let mut stt_cfg = SpeechConfig::default();
    let mut tts_cfg = SpeechConfig::default();
    let mut stt = SttSettings::default();
    let mut tts = TtsSettings::default();
    let mut timing = TurnTiming::default();
    let mut sent_at: Option<Instant> = None;
    let mut reply_at: Option<Instant> = None;
    let mut speech_end_at: Option<Instant> = None;
    let mut input_at: Option<Instant> = None;
    // When caller speech or a key was last detected, and how long the barge-in took.
    let mut heard_at: Option<Instant> = None;
    let mut barge_in_stop: Option<Duration> = None;
    let mut outcome = CallOutcome::Completed;
    // Keys to send, one at a time (the media core refuses a key while one is going out).
    let mut dtmf_out = DtmfSequence::new();

    // Both the assistant session and the recognition stream must open before the
    // welcome turn; if either fails the conversation takes the call-failure path.
    let mut rec: Option<RecognitionStream> = None;
    match svc.assistant.open_session().await {
        Ok(s) => session = Some(s),
        Err(e) => {
            metrics().provider_error(Provider::Assistant);
            conv.handle_event(Instant::now(), CallEventIn::AssistantFailed(e.to_string()));
        }
    }
    if session.is_some() {
        match start_recognition(&svc, &stt).await {
            Ok(r) => {
                rec = Some(r);
                conv.handle_event(Instant::now(), CallEventIn::Answered);
            }
            Err(e) => speech_failed(&mut conv, e),
        }
    }

    loop {
        // Execute what the conversation asked for.
        while let Some(cmd) = conv.poll_command() {
            let now = Instant::now();
            let embedded = matches!(cmd, CallCommand::SpeakEmbedded { .. });
            match cmd {
                CallCommand::MessageAssistant(input) => {
                    let is_hangup = matches!(
                        input.kind,
                        crate::assistant::InputKind::Event(crate::assistant::CallEvent::HangUp)
                    );
                    if std::mem::take(&mut turn_pending) {
                        // The answer never reached the wire (stopped before its first
                        // packet): report the turn without it.
                        report_turn(&svc, record, &timing, &mut latencies, &call_id);
                    }
                    // A one-turn speech configuration ends with the turn it covered.
                    if tts_cfg.end_turn() {
                        tts = TtsSettings::from_config(tts_cfg.current());
                    }
                    if stt_cfg.end_turn() {
                        stt = SttSettings::from_config(stt_cfg.current());
                        if !is_hangup && rec.is_some() {
                            restart_recognition(&svc, &stt, &mut rec, &mut conv).await;
                        }
                    }
                    if let Some(mut s) = session.take() {
                        timing = TurnTiming {
                            turn: conv.turns(),
                            input: input.text_value().to_owned(),
                            recognition: timing.recognition.take(),
                            barge_in: input.flags.barge_in_occurred,
                            barge_in_stop: barge_in_stop.take(),
                            input_to_assistant: input_at
                                .take()
                                .map(|t| now.saturating_duration_since(t)),
                            ..TurnTiming::default()
                        };
                        sent_at = Some(now);
                        reply_at = None;
                        let ctx = context.clone();
                        if is_hangup {
                            // Fire and forget: the call is over either way.
                            tokio::spawn(
                                async move {
                                    let _ = s.message(input, ctx).await;
                                    let _ = s.close().await;
                                }
                                .in_current_span(),
                            );
                        } else {
                            assistant_call = Some(
                                async move {
                                    let r = s.message(input, ctx).await;
                                    (s, r)
                                }
                                .boxed(),
                            );
                        }
                    }
                }
                CallCommand::Speak { text } | CallCommand::SpeakEmbedded { text } => {
                    if timing.response.is_empty() {
                        timing.response = text.clone();
                    }
                    let mut req = SynthesisRequest::text(text);
                    let tts = if embedded {
                        // The configured voice belongs to the service that failed.
                        &svc.tts_fallback
                    } else {
                        req.voice = svc.settings.tts_voice.clone();
                        tts.apply_to(&mut req);
                        &svc.tts
                    };
                    match tts.synthesize(req).await {
                        Ok(s) => {
                            synth = Some(s);
                            synth_done = false;
                            playing = true;
                        }
                        Err(e) => {
                            metrics().provider_error(Provider::TextToSpeech);
                            conv.handle_event(now, CallEventIn::PlaybackFailed(e.to_string()))
                        }
                    }
                }
                CallCommand::PlayAudio { url, looped } => match load_wav(&url).await {
                    Ok(pcm) if looped => {
                        // Not waited for: it plays on under what follows.
                        let _ = media.play(&pcm);
                        music = Some(pcm);
                    }
                    Ok(pcm) => {
                        let _ = media.play(&pcm);
                        synth_done = true;
                        playing = true;
                        // The turn's answer may be audio (or a response's audio fallback).
                        if let (None, Some(r)) = (timing.reply_to_audio, reply_at) {
                            timing.reply_to_audio = Some(Instant::now() - r);
                            turn_pending = true;
                        }
                    }
                    Err(e) if looped => tracing::warn!(%url, "looped audio not played: {e}"),
                    Err(e) => {
                        tracing::warn!(%url, "audio not played: {e}");
                        conv.handle_event(now, CallEventIn::PlaybackFinished);
                    }
                },
                CallCommand::StopPlayback => {
                    music = None;
                    let was_playing = playing;
                    if let Some(mut s) = synth.take() {
                        s.cancel();
                    }
                    synth_done = true;
                    playing = false;
                    let _ = media.stop_playback();
                    if let (true, Some(t)) = (was_playing, heard_at.take()) {
                        barge_in_stop = Some(Instant::now().saturating_duration_since(t));
                    }
                }
                CallCommand::PauseRecognition(paused) => {
                    if paused {
                        rec = None;
                    } else if rec.is_none() {
                        restart_recognition(&svc, &stt, &mut rec, &mut conv).await;
                    }
                }
                CallCommand::SendDtmf {
                    digits,
                    duration,
                    interval,
                } => {
                    dtmf_out.push(&digits, duration, interval);
                    send_due_keys(&mut dtmf_out, &media, now);
                }
                CallCommand::SendSipInfo { body, headers } => {
                    let gw = svc.gateway.clone();
                    let ct = headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case("content-type"))
                        .map(|h| h.value.clone())
                        // The seed's default when the assistant names none.
                        .unwrap_or_else(|| "application/text".into());
                    tokio::spawn(
                        async move {
                            let _ = gw
                                .send_info(call, &ct, body.unwrap_or_default().into_bytes())
                                .await;
                        }
                        .in_current_span(),
                    );
                }
                CallCommand::ConfigureStt(cfg, strategy) => {
                    stt_cfg.apply(cfg, strategy);
                    let after = SttSettings::from_config(stt_cfg.current());
                    tracing::info!(?strategy, settings = ?after, "speech-to-text reconfigured");
                    // Recognition parameters are fixed per stream: start a new one.
                    let changed = after != stt;
                    stt = after;
                    if changed && rec.is_some() {
                        restart_recognition(&svc, &stt, &mut rec, &mut conv).await;
                    }
                }
                CallCommand::ConfigureTts(cfg, strategy) => {
                    tts_cfg.apply(cfg, strategy);
                    tts = TtsSettings::from_config(tts_cfg.current());
                    tracing::info!(?strategy, settings = ?tts, "text-to-speech reconfigured");
                }
                CallCommand::Hold | CallCommand::Unhold => {
                    let dir = if matches!(cmd, CallCommand::Hold) {
                        Direction::SendOnly
                    } else {
                        Direction::SendRecv
                    };
                    let gw = svc.gateway.clone();
                    let hold = matches!(cmd, CallCommand::Hold);
                    live(&svc, record, LiveUpdate::Hold(hold));
                    let fut = async move {
                        let r = match gw.hold(call, dir).await {
                            Ok(Ok(s)) if (200..300).contains(&s) => Ok(()),
                            Ok(Ok(s)) => Err(format!("re-INVITE answered {s}")),
                            Ok(Err(e)) => Err(e.to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                        CallEventIn::HoldResult(r)
                    };
                    if hold {
                        sip_call = Some(fut.boxed());
                    } else {
                        tokio::spawn(fut.in_current_span());
                    }
                }
                CallCommand::Refer(t) => {
                    let target = t.target.clone().unwrap_or_default().replace("\\@", "@");
                    let mut headers: Vec<(String, String)> = t
                        .headers
                        .iter()
                        .map(|h| (h.name.clone(), h.value.clone()))
                        .collect();
                    if t.header_method != TransferHeaderMethod::CustomHeader {
                        tracing::debug!(method = ?t.header_method, "transfer headers sent as REFER headers");
                    }
                    headers.retain(|(_, v)| !v.is_empty());
                    let req = ReferRequest {
                        target,
                        referred_by: Some(format!("<sip:{}@voxgate>", incoming.called_number)),
                        headers,
                    };
                    live(&svc, record, LiveUpdate::State(LiveCallState::Transferring));
                    let gw = svc.gateway.clone();
                    let accept = t.accept_codes.clone();
                    sip_call = Some(
                        async move {
                            let r = match gw.refer(call, req).await {
                                Ok(Ok(TransferOutcome::Succeeded)) => TransferResult::Succeeded,
                                Ok(Ok(TransferOutcome::Failed(s))) if accept.contains(&s) => {
                                    TransferResult::Succeeded
                                }
                                Ok(Ok(TransferOutcome::Failed(s))) => {
                                    TransferResult::Failed(format!("{s}"))
                                }
                                Ok(Ok(o)) => TransferResult::Failed(format!("{o:?}")),
                                Ok(Err(e)) => TransferResult::Failed(e.to_string()),
                                Err(e) => TransferResult::Failed(e.to_string()),
                            };
                            CallEventIn::TransferResult(r)
                        }
                        .boxed(),
                    );
                }
                CallCommand::HangUp { headers } => {
                    let headers = headers.into_iter().map(|h| (h.name, h.value)).collect();
                    let _ = svc.gateway.hangup(call, headers).await;
                }
                CallCommand::RecordCustomData(m) => {
                    // Each object received is merged into what came before.
                    custom_data.get_or_insert_with(Default::default).extend(m);
                }
                CallCommand::Finished(o) => outcome = o,
            }
        }
        // A barge-in stops playback in the commands that follow the detection at once;
        // a detection that stopped nothing is forgotten.
        heard_at = None;
        if conv.is_ended() {
            break;
        }

        let sleep = sleep_until(conv.poll_timeout());
        let next_key = sleep_until(dtmf_out.poll_timeout());
        tokio::select! {
            ev = media.events.recv() => {
                let now = Instant::now();
                match ev {
                    Some(MediaEvent::Audio { frame, .. }) => {
                        if conv.wants_speech() {
                            if let Some(r) = &rec {
                                if let Err(e) = r.push(frame.pcm()) {
                                    tracing::debug!("recogniser queue: {e}");
                                }
                            }
                        }
                    }
                    Some(MediaEvent::SpeechStart { .. }) => { heard_at = Some(now); conv.handle_event(now, CallEventIn::SpeechStarted) }
                    Some(MediaEvent::SpeechEnd { .. }) => speech_end_at = Some(now),
                    Some(MediaEvent::Dtmf { digit, .. }) => { input_at = Some(now); heard_at = Some(now); conv.handle_event(now, CallEventIn::Dtmf(digit)) }
                    Some(MediaEvent::PlaybackStarted { at, .. }) => {
                        if std::mem::take(&mut turn_pending) {
                            // When the core sent it, not when the event got here.
                            timing.reply_to_first_packet = reply_at.map(|r| at.saturating_duration_since(r));
                            report_turn(&svc, record, &timing, &mut latencies, &call_id);
                        }
                    }
                    Some(MediaEvent::PlaybackIdle { .. }) => {
                        if playing && synth_done {
                            playing = false;
                            conv.handle_event(now, CallEventIn::PlaybackFinished);
                        } else if let (false, Some(pcm)) = (playing, &music) {
                            // Hold music played out: again from the start.
                            let _ = media.play(pcm);
                        }
                    }
                    Some(MediaEvent::Stats { stats, .. }) => last_stats = Some(stats),
                    Some(MediaEvent::RtpTimeout { .. }) => {
                        tracing::info!("no RTP from the caller: ending the call");
                        conv.handle_event(now, CallEventIn::CallerHungUp);
                        let _ = svc.gateway.hangup(call, Vec::new()).await;
                    }
                    Some(_) => {}
                    None => conv.handle_event(now, CallEventIn::CallerHungUp),
                }
            }
            ev = next_recognition(&mut rec) => {
                let now = Instant::now();
                match ev {
                    Some(Ok(RecognitionEvent::Final(t))) if t.confidence.is_some_and(|c| c < stt.confidence_threshold) => {
                        tracing::info!(text = %t.text, confidence = ?t.confidence, "recognised under the confidence threshold; not sent to the assistant");
                    }
                    Some(Ok(RecognitionEvent::Final(t))) => {
                        // End of caller speech (energy detector) → final transcript.
                        timing.recognition = speech_end_at.take().map(|a| now.saturating_duration_since(a));
                        tracing::info!(text = %t.text, confidence = ?t.confidence, "recognised");
                        input_at = Some(now);
                        conv.handle_event(now, CallEventIn::Transcript {
                            text: t.text,
                            confidence: t.confidence.unwrap_or(0.0),
                            result: None,
                        });
                    }
                    Some(Ok(RecognitionEvent::Interim(t))) if !t.text.is_empty() => {
                        heard_at.get_or_insert(now);
                        conv.handle_event(now, CallEventIn::SpeechStarted);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(SpeechError::Timeout("inactivity"))) | None => {
                        // The recogniser's inactivity limit or a clean end of the stream:
                        // start a fresh one. A service that refuses it fails the call.
                        restart_recognition(&svc, &stt, &mut rec, &mut conv).await;
                    }
                    Some(Err(e)) => {
                        // Any other error, a provider's connect/idle timeout included.
                        rec = None;
                        speech_failed(&mut conv, e);
                    }
                }
            }
            chunk = next_chunk(&mut synth) => {
                let now = Instant::now();
                match chunk {
                    Some(Ok(c)) => {
                        if timing.synthesis.is_none() {
                            timing.synthesis = reply_at.map(|r| now - r);
                        }
                        let pcm = match c {
                            AudioChunk::Pcm(p) => p,
                            AudioChunk::Mulaw(b) => b.iter().map(|&x| voxgate_engine::codec::g711::ulaw_decode(x)).collect(),
                        };
                        let _ = media.play(&pcm);
                        // Once per turn; audio with no assistant reply before it (a
                        // failure message) is not a turn. The turn is reported when its
                        // first RTP packet is out (PlaybackStarted).
                        if let (None, Some(r)) = (timing.reply_to_audio, reply_at) {
                            timing.reply_to_audio = Some(Instant::now() - r);
                            turn_pending = true;
                        }
                    }
                    Some(Err(e)) => {
                        metrics().provider_error(Provider::TextToSpeech);
                        synth = None;
                        synth_done = true;
                        conv.handle_event(now, CallEventIn::PlaybackFailed(e.to_string()));
                    }
                    None => { synth = None; synth_done = true; }
                }
            }
            r = poll_opt(&mut assistant_call) => {
                assistant_call = None;
                let (s, res) = r;
                session = Some(s);
                let now = Instant::now();
                reply_at = Some(now);
                timing.assistant = sent_at.map(|t| now - t);
                match res {
                    Ok(reply) => {
                        context = reply.context.clone();
                        // A reply with nothing to say is reported now; one with speech or
                        // audio when its first packet is out.
                        if !reply.actions.iter().any(|a| matches!(a, crate::assistant::VoiceAction::Speak { .. } | crate::assistant::VoiceAction::PlayAudio { looped: false, .. })) {
                            report_turn(&svc, record, &timing, &mut latencies, &call_id);
                        }
                        conv.handle_event(now, CallEventIn::AssistantReplied(reply));
                    }
                    Err(e) => {
                        metrics().provider_error(Provider::Assistant);
                        conv.handle_event(now, CallEventIn::AssistantFailed(e.to_string()))
                    }
                }
            }
            ev = poll_opt(&mut sip_call) => {
                sip_call = None;
                if matches!(ev, CallEventIn::TransferResult(TransferResult::Failed(_))) {
                    live(&svc, record, LiveUpdate::State(LiveCallState::Answered));
                }
                conv.handle_event(Instant::now(), ev);
            }
            ev = sip_events.recv() => {
                let now = Instant::now();
                match ev {
                    Some(SipEvent::Dtmf { digit, .. }) => {
                        input_at = Some(now);
                        heard_at = Some(now);
                        conv.handle_event(now, CallEventIn::Dtmf(digit))
                    }
                    Some(SipEvent::Ended { reason, .. }) => {
                        tracing::info!(?reason, "dialog ended");
                        // Whoever ended the dialog, the conversation is over (a no-op once
                        // it has already finished).
                        conv.handle_event(now, CallEventIn::CallerHungUp);
                    }
                    Some(_) => {}
                    None => conv.handle_event(now, CallEventIn::CallerHungUp),
                }
            }
            _ = sleep => conv.handle_timeout(Instant::now()),
            _ = next_key => send_due_keys(&mut dtmf_out, &media, Instant::now()),
        }
    }
    if turn_pending {
        report_turn(&svc, record, &timing, &mut latencies, &call_id);
    }
    if let Some(mut s) = synth.take() {
        s.cancel();
    }
    drop(rec);
    if let Some(mut s) = session.take() {
        let _ = s.close().await;
    }
    // The media session's final counters arrive once the SIP side closed it (bounded wait).
    let closing = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(Some(ev)) = tokio::time::timeout_at(closing, media.events.recv()).await {
        match ev {
            MediaEvent::Closed { stats, .. } => {
                last_stats = Some(stats);
                break;
            }
            MediaEvent::Stats { stats, .. } => last_stats = Some(stats),
            _ => {}
        }
    }
    let rtp = last_stats.map(|st| rtp_stats(&st, codec, svc_srtp(&incoming)));
    finish_record(
        &svc,
        record,
        &outcome,
        conv.turns(),
        latencies,
        rtp,
        custom_data,
    )
    .await;
    tracing::info!(?outcome, turns = conv.turns(), "call ended");
    notify(CallNotice::Ended {
        call_id,
        outcome: outcome.clone(),
        turns: conv.turns(),
    });
    outcome
}

/// The assistant context a call starts with: the SIP details of its INVITE and its
/// global session ID.
fn initial_context(incoming: &IncomingCall) -> Context {
    let mut vt = VoiceTelephony::new()
        .sip_call_id(&incoming.call_id)
        .sip_from_uri(&incoming.from)
        .sip_to_uri(&incoming.to)
        .sip_request_uri(&incoming.request_uri)
        .assistant_phone_number(&incoming.called_number)
        .session_id(global_session_id(incoming));
    if let Some(n) = &incoming.caller_number {
        vt = vt.user_phone_number(n);
    }
    for (n, v) in &incoming.custom_headers {
        vt = vt.custom_invite_header(n, v);
    }
    let mut context = Context::new();
    vt.apply(&mut context);
    context
}

/// The call's global session ID (`vgwSessionID`): the session UUID of the INVITE's
/// `Session-ID` header (RFC 7989) when the integration copies that header, else the
/// SIP Call-ID.
fn global_session_id(incoming: &IncomingCall) -> String {
    incoming
        .custom_headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Session-ID"))
        .and_then(|(_, v)| v.split(';').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(&incoming.call_id)
        .to_owned()
}

/// Updates this node's live view of the call (the console's live table).
fn live(svc: &CallServices, record: Option<crate::store::CallRecordId>, update: LiveUpdate) {
    if let (Some(r), Some(id)) = (&svc.recorder, record) {
        r.update_live(id, update);
    }
}

fn turn_latency(t: &TurnTiming) -> TurnLatency {
    let ms = |d: Option<Duration>| d.map(|d| d.as_millis().min(u128::from(u32::MAX)) as u32);
    if let Some(d) = t.recognition {
        metrics().provider_latency(Provider::SpeechToText, d);
    }
    if let Some(d) = t.assistant {
        metrics().provider_latency(Provider::Assistant, d);
    }
    if let Some(d) = t.synthesis {
        metrics().provider_latency(Provider::TextToSpeech, d);
    }
    TurnLatency {
        speech_to_text_ms: ms(t.recognition),
        assistant_ms: ms(t.assistant),
        text_to_speech_ms: ms(t.synthesis),
        ..TurnLatency::default()
    }
    .with_transcript(&t.input, &t.response, crate::pii::redaction())
}

fn svc_srtp(incoming: &IncomingCall) -> bool {
    incoming.offer_srtp
}

fn rtp_stats(
    st: &voxgate_engine::session::SessionStats,
    codec: crate::store::emodel::MediaCodec,
    encrypted: bool,
) -> RtpStats {
    let jitter_ms = f64::from(st.jitter_us) / 1000.0;
    RtpStats {
        codec,
        inbound: StreamStats {
            packets: st.packets_in,
            packets_lost: st.lost,
            average_jitter_ms: jitter_ms,
            maximum_jitter_ms: jitter_ms,
        },
        outbound: StreamStats {
            packets: st.packets_out,
            packets_lost: u64::try_from(st.remote_lost).unwrap_or(0),
            average_jitter_ms: 0.0,
            maximum_jitter_ms: 0.0,
        },
        rtt_ms: st.rtt.map(|d| d.as_secs_f64() * 1000.0),
        playout_delay_ms: f64::from(st.jitter_buffer_ms),
        encrypted,
    }
}

/// Writes the end of the call record (when records are kept).
async fn finish_record(
    svc: &CallServices,
    record: Option<crate::store::CallRecordId>,
    outcome: &CallOutcome,
    turns: u32,
    turn_latencies: Vec<TurnLatency>,
    rtp: Option<RtpStats>,
    custom: Option<serde_json::Map<String, serde_json::Value>>,
) {
    let (Some(r), Some(id)) = (&svc.recorder, record) else {
        return;
    };
    let (stored, details) = match outcome {
        CallOutcome::Completed => (crate::store::CallOutcome::Completed, None),
        CallOutcome::Transferred => (crate::store::CallOutcome::Transferred, None),
        CallOutcome::TransferFailed(why) => {
            (crate::store::CallOutcome::TransferFailed, Some(why.clone()))
        }
        CallOutcome::CallFailed(why) => (crate::store::CallOutcome::CallFailed, Some(why.clone())),
    };
    let end = CallEnd {
        ended_at: crate::store::records::now_millis(),
        outcome: stored,
        failure_details: details,
        turns,
        turn_latencies,
        rtp,
        cdr_custom_data: custom.map(serde_json::Value::Object),
        warnings: Vec::new(),
    };
    if let Err(e) = r.end(id, end).await {
        tracing::error!("call record end not written: {e}");
    }
}

fn log_turn(t: &TurnTiming) {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    tracing::info!(
        turn = t.turn,
        input = %t.input,
        recognition_ms = ?ms(t.recognition),
        assistant_ms = ?ms(t.assistant),
        synthesis_ms = ?ms(t.synthesis),
        reply_to_audio_ms = ?ms(t.reply_to_audio),
        reply_to_first_packet_ms = ?ms(t.reply_to_first_packet),
        gateway_ms = ?ms(t.gateway_share()),
        "turn"
    );
}

/// Speech to text could not be started or failed: the call takes the failure path.
fn speech_failed(conv: &mut Conversation, e: SpeechError) {
    tracing::warn!("speech to text failed: {e}");
    metrics().provider_error(Provider::SpeechToText);
    conv.handle_event(Instant::now(), CallEventIn::SpeechFailed(e.to_string()));
}

/// Sends the keys of `keys` that are due at `now` (at most one while tones go out).
fn send_due_keys(keys: &mut DtmfSequence, media: &CallMedia, now: Instant) {
    while let Some(k) = keys.poll_key(now) {
        if let Err(e) = media.send_dtmf(k.digit, k.duration) {
            tracing::warn!(digit = %k.digit, "DTMF key not sent: {e}");
        }
    }
}

/// Sleeps until `t`; forever when `None`.
async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
        None => std::future::pending().await,
    }
}

/// Starts a recognition stream with the integration's settings and, laid over them, the
/// assistant's speech-to-text configuration in force.
async fn start_recognition(
    svc: &CallServices,
    stt: &SttSettings,
) -> Result<RecognitionStream, SpeechError> {
    let mut opts = RecognizeOptions {
        grammar: svc.grammar.clone(),
        model: svc.settings.stt_model.clone(),
        customization_id: svc.settings.stt_customization_id.clone(),
        interim_results: true,
        inactivity_timeout: None,
        ..RecognizeOptions::default()
    };
    stt.apply_to(&mut opts);
    svc.stt.recognize(opts).await
}

/// Replaces the recognition stream with a new one; a service that refuses it takes the
/// call down the failure path.
async fn restart_recognition(
    svc: &CallServices,
    stt: &SttSettings,
    rec: &mut Option<RecognitionStream>,
    conv: &mut Conversation,
) {
    *rec = None;
    match start_recognition(svc, stt).await {
        Ok(r) => *rec = Some(r),
        Err(e) => speech_failed(conv, e),
    }
}

/// Logs a finished turn, keeps its latencies for the call record, and tells the live
/// view and the observer.
fn report_turn(
    svc: &CallServices,
    record: Option<crate::store::CallRecordId>,
    timing: &TurnTiming,
    latencies: &mut Vec<TurnLatency>,
    call_id: &str,
) {
    log_turn(timing);
    latencies.push(turn_latency(timing));
    live(svc, record, LiveUpdate::Turn(timing.turn));
    if let Some(o) = &svc.observer {
        let _ = o.send(CallNotice::Turn {
            call_id: call_id.to_owned(),
            timing: timing.clone(),
        });
    }
}

async fn next_recognition(
    rec: &mut Option<RecognitionStream>,
) -> Option<Result<RecognitionEvent, SpeechError>> {
    match rec {
        Some(r) => r.next_event().await,
        None => std::future::pending().await,
    }
}

async fn next_chunk(s: &mut Option<SynthesisStream>) -> Option<Result<AudioChunk, SpeechError>> {
    match s {
        Some(s) => s.next_chunk().await,
        None => std::future::pending().await,
    }
}

async fn poll_opt<T>(f: &mut Option<BoxFuture<'static, T>>) -> T {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

/// Reads an 8 kHz mono 16-bit WAV from a file path or `file://` URL.
/// Longest audio file fetched for `audio` / `vgwActPlayUrl`: 30 minutes of 8 kHz 16-bit.
const MAX_AUDIO_BYTES: usize = 30 * 60 * 16_000;
/// A fetch of an audio URL is given up after this long (the call goes on without it).
const AUDIO_FETCH_TIMEOUT: Duration = Duration::from_secs(10);

async fn load_wav(url: &str) -> Result<Vec<i16>, String> {
    let path = url.strip_prefix("file://").unwrap_or(url).to_owned();
    if path.starts_with("http://") || path.starts_with("https://") {
        let fetch = async {
            let mut resp = reqwest::get(&path)
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| e.to_string())?;
            let mut bytes = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                if bytes.len() + chunk.len() > MAX_AUDIO_BYTES {
                    return Err(format!("longer than {MAX_AUDIO_BYTES} bytes"));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(AUDIO_FETCH_TIMEOUT, fetch)
            .await
            .map_err(|_| format!("no audio within {AUDIO_FETCH_TIMEOUT:?}"))??;
        return super::wav::decode(&bytes)
            .map(|w| super::wav::to_8k(&w))
            .map_err(|e| e.to_string());
    }
    let bytes = tokio::fs::read(&path).await.map_err(|e| e.to_string())?;
    super::wav::decode(&bytes)
        .map(|w| super::wav::to_8k(&w))
        .map_err(|e| e.to_string())
}

/// Unused-call guard: a call whose SIP events arrive for an unknown call ref.
pub fn is_for(ev: &SipEvent, call: CallRef) -> bool {
    sip_event_call(ev) == Some(call)
}

/// The call a SIP event is about.
pub fn sip_event_call(ev: &SipEvent) -> Option<CallRef> {
    Some(match ev {
        SipEvent::Incoming(i) => i.call,
        SipEvent::Answered { call, .. }
        | SipEvent::Established { call }
        | SipEvent::MediaChanged { call, .. }
        | SipEvent::HoldResult { call, .. }
        | SipEvent::Dtmf { call, .. }
        | SipEvent::Transfer { call, .. }
        | SipEvent::Ended { call, .. } => *call,
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(custom_headers: Vec<(String, String)>) -> IncomingCall {
        IncomingCall {
            call: CallRef(1),
            call_id: "a84b4c76e66710@pc33".into(),
            from: "<sip:+15550100999@trunk>;tag=1".into(),
            to: "<sip:+19585550123@gw>".into(),
            request_uri: "sip:+19585550123@gw".into(),
            caller_number: Some("+15550100999".into()),
            called_number: "+19585550123".into(),
            custom_headers,
            transport: crate::sip::ua::Transport::Udp,
            remote: "127.0.0.1:5060".parse().expect("addr"),
            offer_srtp: false,
        }
    }

    fn session_id(ctx: &Context) -> Option<&str> {
        ctx.user_defined()?.get("vgwSessionID")?.as_str()
    }

    #[test]
    fn session_id_is_the_call_id_without_a_session_header() {
        let ctx = initial_context(&incoming(Vec::new()));
        assert_eq!(session_id(&ctx), Some("a84b4c76e66710@pc33"));
        let ud = ctx.user_defined().expect("user defined");
        assert_eq!(ud["vgwSIPCallID"], "a84b4c76e66710@pc33");
    }

    #[test]
    fn session_id_comes_from_a_copied_session_id_header() {
        let ctx = initial_context(&incoming(vec![(
            "Session-ID".into(),
            "ab30317f1a784dc48ff824d0d3715d86;remote=47755a9de7794ba387653f2099600ef2".into(),
        )]));
        assert_eq!(session_id(&ctx), Some("ab30317f1a784dc48ff824d0d3715d86"));
        // An empty one is no ID.
        let ctx = initial_context(&incoming(vec![("session-id".into(), " ".into())]));
        assert_eq!(session_id(&ctx), Some("a84b4c76e66710@pc33"));
    }
}
