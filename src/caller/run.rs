//! The caller's script: place the call, then for each step wait for the gateway's prompt
//! to finish, recognise it, and say or key the next input; follow the hold re-INVITE,
//! REFER and BYE as a trunk would. Everything it sees is reported as a [`CallerLine`].

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use voxgate_engine::codec::CodecKind;
use voxgate_engine::session::SessionConfig;
use voxgate_engine::srtp::sdes::CryptoAttribute;
use voxgate_engine::srtp::SrtpSession;

use super::leg::{CallLeg, LegError, LegEvent, LegOptions, TransferBehaviour};
use super::media::{CallerMedia, MediaCommand, MediaReport};
use crate::sip::sdp::answer::Codec;
use crate::sip::sdp::Direction;
use crate::speech::{
    AudioChunk, EspeakTts, Grammar, PocketSphinxStt, RecognitionEvent, RecognizeOptions,
    SpeechError, SynthesisRequest,
};

/// Audio kept from before the speech detector reports a prompt's start (400 ms at
/// 8 kHz) and prepended to it. The detector fires after 60 ms of speech, so without it
/// a prompt would reach the recogniser cut into its first syllable, with no silence
/// before it; PocketSphinx's fresh decoder then reads a welcome coded with Opus as a
/// digit string (see tests/opus_call.rs).
const LEAD_IN_SAMPLES: usize = 8 * 400;

/// The audio of the prompt being heard, with a lead-in of what came just before its
/// detected start.
#[derive(Debug, Default)]
struct PromptCapture {
    prompt: Vec<i16>,
    lead_in: VecDeque<i16>,
}

impl PromptCapture {
    /// Heard audio: part of the prompt while `in_prompt`, else kept as a lead-in.
    fn heard(&mut self, pcm: &[i16], in_prompt: bool) {
        if in_prompt {
            self.prompt.extend_from_slice(pcm);
        } else {
            self.lead_in.extend(pcm);
            let over = self.lead_in.len().saturating_sub(LEAD_IN_SAMPLES);
            self.lead_in.drain(..over);
        }
    }

    /// A prompt started: it begins with the lead-in.
    fn start(&mut self) {
        self.prompt.extend(self.lead_in.drain(..));
    }

    /// Whether a prompt is being captured.
    fn in_prompt(&self) -> bool {
        !self.prompt.is_empty()
    }

    /// The prompt's audio; the capture starts afresh.
    fn take(&mut self) -> Vec<i16> {
        std::mem::take(&mut self.prompt)
    }
}

/// One thing the caller does after the gateway's prompt has finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Say this phrase (synthesized with espeak-ng, sent as RTP).
    Say(String),
    /// Press these keys (RFC 4733).
    Press(String),
    /// Hang up.
    HangUp,
}

/// Options of a scripted call.
#[derive(Debug, Clone)]
pub struct CallerOptions {
    /// Gateway SIP address.
    pub gateway: SocketAddr,
    /// Request-URI.
    pub request_uri: String,
    /// Our number (From).
    pub caller_number: String,
    /// Local IP.
    pub local_ip: IpAddr,
    /// Codec to offer.
    pub codec: Codec,
    /// Offer SRTP (SDES).
    pub srtp: bool,
    /// Trunk behaviour on REFER.
    pub transfer: TransferBehaviour,
    /// The phrases the gateway may say (the caller recognises against them).
    pub expected_prompts: Vec<String>,
    /// espeak-ng voice for what the caller says.
    pub voice: Option<String>,
    /// Silence after the gateway's speech that ends a prompt.
    pub prompt_gap: Duration,
    /// Upper bound on the whole call.
    pub call_timeout: Duration,
}

/// What the caller saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum CallerLine {
    /// SIP progress (100, 180) or the final status.
    Status(u16),
    /// A prompt the gateway said, recognised (`None` = not recognised), with its length.
    Heard {
        /// Recognised text.
        text: Option<String>,
        /// Audio length.
        duration: Duration,
        /// From the end of our input to the start of the prompt.
        response_delay: Option<Duration>,
    },
    /// We said this.
    Said(String),
    /// We pressed these keys.
    Pressed(String),
    /// The gateway changed the media direction (hold / resume).
    Direction(Direction),
    /// The gateway asked for a transfer.
    Refer {
        /// Target URI.
        target: String,
        /// Custom headers.
        headers: Vec<(String, String)>,
    },
    /// The gateway sent a SIP INFO.
    Info(String),
    /// The gateway sent a DTMF key (RFC 4733 telephone-event).
    KeyReceived(char),
    /// The gateway hung up.
    GatewayHungUp,
    /// We hung up.
    CallerHungUp,
}

/// A fault of the scripted call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallerError {
    /// SIP.
    #[error(transparent)]
    Leg(#[from] LegError),
    /// Speech.
    #[error(transparent)]
    Speech(#[from] SpeechError),
    /// Media.
    #[error("media: {0}")]
    Media(String),
    /// The call did not end in time.
    #[error("the call did not end within {0:?}")]
    Timeout(Duration),
}

/// What the caller saw and how the call went.
#[derive(Debug, Clone, Default)]
pub struct CallReport {
    /// Everything in order.
    pub lines: Vec<CallerLine>,
    /// The Call-ID.
    pub call_id: String,
    /// Everything heard from the gateway, 8 kHz (at most [`MAX_RECORDING`]).
    pub audio: Vec<i16>,
}

/// Longest recording a [`CallReport`] keeps: 10 minutes at 8 kHz.
pub const MAX_RECORDING: usize = 8000 * 600;

impl CallReport {
    /// Recognised prompts, in order.
    pub fn prompts(&self) -> Vec<Option<String>> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                CallerLine::Heard { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// The REFER target, if the gateway transferred the call.
    pub fn transfer_target(&self) -> Option<&str> {
        self.lines.iter().find_map(|l| match l {
            CallerLine::Refer { target, .. } => Some(target.as_str()),
            _ => None,
        })
    }
}

fn engine_codec(c: Codec) -> CodecKind {
    match c {
        Codec::Pcmu => CodecKind::Pcmu,
        Codec::Pcma => CodecKind::Pcma,
        Codec::Opus => CodecKind::Opus,
    }
}

/// Places the call and runs the script. `on_line` sees each line as it happens.
pub async fn run_call(
    opts: CallerOptions,
    script: Vec<Step>,
    mut on_line: impl FnMut(&CallerLine),
) -> Result<CallReport, CallerError> {
    let started = Instant::now();
    let deadline = started + opts.call_timeout;
    let mut report = CallReport::default();
    let mut emit = |report: &mut CallReport, line: CallerLine| {
        on_line(&line);
        report.lines.push(line);
    };

    // Recogniser for the prompts, and the synthesiser for our phrases.
    let grammar = Arc::new(Grammar::from_phrases(&in_dictionary(
        &opts.expected_prompts,
    ))?);
    let ear = PocketSphinxStt::new(grammar.clone());
    let mouth = EspeakTts::default();

    let rtp_sock = CallerMedia::bind(opts.local_ip)
        .await
        .map_err(|e| CallerError::Media(e.to_string()))?;
    let rtp_port = rtp_sock
        .local_addr()
        .map_err(|e| CallerError::Media(e.to_string()))?
        .port();
    let local_crypto = if opts.srtp {
        Some(
            CryptoAttribute::generate(1, voxgate_engine::srtp::SrtpSuite::AesCm128HmacSha1_80)
                .map_err(|e| CallerError::Media(e.to_string()))?,
        )
    } else {
        None
    };
    let leg_opts = LegOptions {
        gateway: opts.gateway,
        request_uri: opts.request_uri.clone(),
        caller_number: opts.caller_number.clone(),
        local_ip: opts.local_ip,
        codecs: vec![opts.codec],
        crypto: local_crypto.as_ref().map(|c| c.to_sdp_value()),
        headers: Vec::new(),
        transfer: opts.transfer,
        answer_timeout: Duration::from_secs(10),
    };
    let mut statuses = Vec::new();
    let mut leg = CallLeg::invite(&leg_opts, rtp_port, |s| statuses.push(s)).await?;
    for s in statuses {
        emit(&mut report, CallerLine::Status(s));
    }
    emit(&mut report, CallerLine::Status(leg.status));
    report.call_id = leg.call_id().to_owned();

    let neg = leg.negotiated.clone();
    let mut cfg = SessionConfig::new(rand::random(), engine_codec(neg.codec), neg.payload_type);
    cfg.telephone_event_pt = neg.telephone_event;
    cfg.remote_rtp = neg.remote;
    cfg.rtcp_mux = neg.rtcp_mux;
    cfg.ptime_ms = u16::try_from(neg.ptime).unwrap_or(20);
    if let Some(f) = neg.opus {
        // Encode as the gateway's answer asks (RFC 7587 §6.1).
        cfg.opus.inband_fec = f.use_inband_fec;
        cfg.opus.dtx = f.use_dtx;
        cfg.opus.bitrate = f.max_average_bitrate;
    }
    let srtp = match (&local_crypto, neg.remote_crypto.first()) {
        (Some(local), Some(remote)) => {
            let remote = CryptoAttribute::parse(remote)
                .map_err(|e| CallerError::Media(format!("remote crypto: {e}")))?;
            Some(
                SrtpSession::from_sdes(local, &remote)
                    .map_err(|e| CallerError::Media(e.to_string()))?,
            )
        }
        (Some(_), None) => {
            return Err(CallerError::Media("gateway answered without crypto".into()))
        }
        _ => None,
    };
    let mut media = CallerMedia::start(rtp_sock, cfg, srtp).map_err(CallerError::Media)?;

    // The SIP leg runs in its own task so in-dialog requests are answered at once.
    let (leg_tx, mut leg_rx) = mpsc::unbounded_channel::<LegEvent>();
    let (hang_tx, mut hang_rx) = mpsc::unbounded_channel::<()>();
    let leg_task = tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = leg.next_event(deadline) => match ev {
                    Ok(Some(e)) => {
                        let bye = e == LegEvent::Bye;
                        if leg_tx.send(e).is_err() || bye { return; }
                    }
                    Ok(None) | Err(_) => return,
                },
                _ = hang_rx.recv() => { let _ = leg.hang_up().await; return; }
            }
        }
    });

    let mut steps = script.into_iter();
    let mut capture = PromptCapture::default();
    let mut talking = false;
    let mut last_speech_end: Option<Instant> = None;
    let mut input_done_at: Option<Instant> = None;
    let mut prompt_started_at: Option<Instant> = None;
    let mut ended = false;
    while !ended {
        let quiet_deadline = last_speech_end.map(|t| t + opts.prompt_gap);
        let wake = quiet_deadline.unwrap_or(deadline).min(deadline);
        tokio::select! {
            r = media.reports.recv() => match r {
                Some(MediaReport::Heard(pcm)) => {
                    let room = MAX_RECORDING.saturating_sub(report.audio.len());
                    report.audio.extend_from_slice(&pcm[..pcm.len().min(room)]);
                    capture.heard(&pcm, talking || last_speech_end.is_some());
                }
                Some(MediaReport::Dtmf(k)) => emit(&mut report, CallerLine::KeyReceived(k)),
                Some(MediaReport::SpeechStart) => {
                    if !talking && last_speech_end.is_none() {
                        prompt_started_at = Some(Instant::now());
                        capture.start();
                    }
                    talking = true; last_speech_end = None;
                }
                Some(MediaReport::SpeechEnd) => { talking = false; last_speech_end = Some(Instant::now()); }
                Some(_) => {}
                None => ended = true,
            },
            ev = leg_rx.recv() => match ev {
                Some(LegEvent::Bye) | None => {
                    // A prompt that ran up to the BYE (a goodbye or a failure message)
                    // is still reported.
                    if capture.in_prompt() {
                        let audio = capture.take();
                        let duration = Duration::from_millis(audio.len() as u64 / 8);
                        let text = recognise(&ear, grammar.clone(), audio).await?;
                        emit(&mut report, CallerLine::Heard { text, duration, response_delay: None });
                    }
                    emit(&mut report, CallerLine::GatewayHungUp);
                    ended = true;
                }
                Some(LegEvent::Direction(d)) => emit(&mut report, CallerLine::Direction(d)),
                Some(LegEvent::Refer { target, headers }) => emit(&mut report, CallerLine::Refer { target, headers }),
                Some(LegEvent::Info(body)) => emit(&mut report, CallerLine::Info(body)),
            },
            _ = tokio::time::sleep_until(wake) => {
                if Instant::now() >= deadline {
                    let _ = hang_tx.send(());
                    let _ = media.commands.send(MediaCommand::Close);
                    return Err(CallerError::Timeout(opts.call_timeout));
                }
                // A prompt ended: recognise it, then take the next step.
                let audio = capture.take();
                last_speech_end = None;
                let duration = Duration::from_millis(audio.len() as u64 / 8);
                let text = recognise(&ear, grammar.clone(), audio).await?;
                let response_delay = match (input_done_at.take(), prompt_started_at.take()) {
                    (Some(a), Some(b)) if b > a => Some(b - a),
                    _ => None,
                };
                emit(&mut report, CallerLine::Heard { text, duration, response_delay });
                match steps.next() {
                    Some(Step::Say(phrase)) => {
                        let pcm = synthesize(&mouth, &phrase, opts.voice.clone()).await?;
                        let idle = wait_sent(&mut media, pcm).await;
                        if !idle { ended = true; }
                        input_done_at = Some(Instant::now());
                        emit(&mut report, CallerLine::Said(phrase));
                    }
                    Some(Step::Press(keys)) => {
                        for k in keys.chars() {
                            let _ = media.commands.send(MediaCommand::Dtmf(k, Duration::from_millis(160)));
                            tokio::time::sleep(Duration::from_millis(300)).await; // inter-key pacing
                        }
                        input_done_at = Some(Instant::now());
                        emit(&mut report, CallerLine::Pressed(keys));
                    }
                    Some(Step::HangUp) => {
                        let _ = hang_tx.send(());
                        emit(&mut report, CallerLine::CallerHungUp);
                        ended = true;
                    }
                    None => {}
                }
            }
        }
    }
    let _ = media.commands.send(MediaCommand::Close);
    let _ = tokio::time::timeout(Duration::from_secs(10), leg_task).await;
    Ok(report)
}

/// Keeps only words the recogniser's dictionary knows, so a prompt with a brand name
/// still matches by its other words (the text the caller reports for that prompt).
pub fn in_dictionary(prompts: &[String]) -> Vec<String> {
    prompts
        .iter()
        .map(|p| {
            crate::speech::normalize(p)
                .split(' ')
                .filter(|w| {
                    Grammar::from_phrases(&[w.to_string()])
                        .map(|g| g.skipped().is_empty())
                        .unwrap_or(false)
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|p| !p.is_empty())
        .collect()
}

async fn recognise(
    ear: &PocketSphinxStt,
    grammar: Arc<Grammar>,
    audio: Vec<i16>,
) -> Result<Option<String>, SpeechError> {
    if audio.is_empty() {
        return Ok(None);
    }
    let opts = RecognizeOptions {
        grammar: Some(grammar),
        interim_results: false,
        inactivity_timeout: None,
        end_of_phrase_silence: Duration::from_secs(3),
        ..RecognizeOptions::default()
    };
    let mut rec = ear.start(opts).await?;
    for chunk in audio.chunks(160) {
        rec.send(chunk.to_vec()).await?;
    }
    rec.finish().await?;
    let mut best: Option<String> = None;
    while let Some(ev) = rec.next_event().await {
        if let RecognitionEvent::Final(t) = ev? {
            if !t.text.is_empty() {
                best = Some(match best {
                    Some(b) => format!("{b} {}", t.text),
                    None => t.text,
                });
            }
        }
    }
    Ok(best)
}

async fn synthesize(
    tts: &EspeakTts,
    text: &str,
    voice: Option<String>,
) -> Result<Vec<i16>, SpeechError> {
    let mut req = SynthesisRequest::text(text);
    req.voice = voice;
    let mut stream = tts.start(req)?;
    let mut pcm = Vec::new();
    while let Some(chunk) = stream.next_chunk().await {
        match chunk? {
            AudioChunk::Pcm(p) => pcm.extend_from_slice(&p),
            AudioChunk::Mulaw(b) => pcm.extend(
                b.iter()
                    .map(|&c| voxgate_engine::codec::g711::ulaw_decode(c)),
            ),
        }
    }
    // A short lead-in and tail of silence, as a person leaves around a phrase.
    let mut out = vec![0i16; 1600];
    out.extend_from_slice(&pcm);
    out.extend(std::iter::repeat_n(0i16, 2400));
    Ok(out)
}

/// Queues PCM and waits until it has been sent; `false` if the media task ended.
async fn wait_sent(media: &mut CallerMedia, pcm: Vec<i16>) -> bool {
    let expected = Duration::from_millis(pcm.len() as u64 / 8);
    if media.commands.send(MediaCommand::Play(pcm)).is_err() {
        return false;
    }
    let limit = Instant::now() + expected + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(limit, media.reports.recv()).await {
            Ok(Some(MediaReport::PlaybackIdle)) => return true,
            Ok(Some(_)) => {}
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_starts_with_the_audio_heard_before_its_detected_start() {
        let mut c = PromptCapture::default();
        // 600 ms of quiet, then the onset the detector has not yet called speech.
        for _ in 0..30 {
            c.heard(&[0; 160], false);
        }
        c.heard(&[100; 160], false);
        c.heard(&[700; 160], false);
        assert!(!c.in_prompt());
        c.start();
        c.heard(&[2500; 160], true);
        let audio = c.take();
        assert_eq!(
            audio.len(),
            LEAD_IN_SAMPLES + 160,
            "400 ms lead-in, then the prompt"
        );
        assert_eq!(
            &audio[LEAD_IN_SAMPLES - 320..LEAD_IN_SAMPLES - 160],
            &[100; 160]
        );
        assert_eq!(&audio[LEAD_IN_SAMPLES - 160..LEAD_IN_SAMPLES], &[700; 160]);
        assert_eq!(&audio[LEAD_IN_SAMPLES..], &[2500; 160]);
        assert!(audio[..LEAD_IN_SAMPLES - 320].iter().all(|&s| s == 0));
        // The next prompt's lead-in is only what was heard after this one.
        c.heard(&[5; 160], false);
        c.start();
        assert_eq!(c.take(), vec![5; 160]);
    }
}
