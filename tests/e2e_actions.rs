//! End-to-end calls for the voice actions that change the call while it runs: looped
//! hold music, DTMF and SIP INFO sent by the gateway, and speech configuration changed
//! mid-call. The whole product in-process (SIP over UDP, RTP, embedded speech, the demo
//! skill with one node edited), called by the built-in caller.

mod e2e;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::*;
use futures_util::future::BoxFuture;
use serde_json::{json, Value};
use voxgate::app::Providers;
use voxgate::call::CallOutcome;
use voxgate::caller::leg::TransferBehaviour;
use voxgate::caller::run::{CallerLine, Step};
use voxgate::speech::{
    RecognitionStream, RecognizeOptions, SpeechError, SpeechModel, SpeechToText, SynthesisRequest,
    SynthesisStream, TextToSpeech, Voice,
};

const NOTICE_WAIT: Duration = Duration::from_secs(15);

/// The demo skill with the `billing` node's output and context edited.
fn skill_with_billing(edit: impl Fn(&mut serde_json::Map<String, Value>)) -> String {
    edit_node(voxgate::assistant::engine::DEMO_SKILL_JSON, "billing", edit)
}

/// `skill` (JSON) with the dialog node `name` edited.
fn edit_node(
    skill: &str,
    name: &str,
    edit: impl Fn(&mut serde_json::Map<String, Value>),
) -> String {
    let mut skill: Value = serde_json::from_str(skill).expect("skill JSON");
    let node = skill["dialog_nodes"]
        .as_array_mut()
        .expect("nodes")
        .iter_mut()
        .find(|n| n["dialog_node"] == name)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("node {name}"));
    edit(node);
    skill.to_string()
}

/// Writes a WAV (8 kHz mono 16-bit) of `on_ms` of a `hz` tone, then `off_ms` of silence.
fn tone_wav(path: &std::path::Path, hz: f64, on_ms: usize, off_ms: usize) {
    let mut samples: Vec<i16> = (0..on_ms * 8)
        .map(|i| (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / 8000.0).sin()) as i16)
        .collect();
    samples.extend(std::iter::repeat_n(0i16, off_ms * 8));
    let wav = voxgate::call::wav::Wav {
        rate: 8000,
        samples,
    };
    std::fs::write(path, voxgate::call::wav::encode(&wav)).expect("wav written");
}

/// Runs of consecutive 20 ms frames (at least `min_frames` long) that are a pure `hz`
/// tone: Goertzel power at `hz` over the frame's whole energy above 0.8. Speech never is.
fn tone_bursts(pcm: &[i16], hz: f64, min_frames: usize) -> usize {
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * hz / 8000.0).cos();
    let mut bursts = 0;
    let mut run = 0;
    for frame in pcm.chunks_exact(160) {
        let (mut s1, mut s2, mut energy) = (0.0f64, 0.0f64, 0.0f64);
        for &x in frame {
            let x = f64::from(x);
            let s0 = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
            energy += x * x;
        }
        let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
        // A pure tone's Goertzel power is energy × N / 2.
        let pure = energy > 1e6 && power / (energy * 80.0) > 0.8;
        if pure {
            run += 1;
        } else {
            if run >= min_frames {
                bursts += 1;
            }
            run = 0;
        }
    }
    bursts + usize::from(run >= min_frames)
}

#[test]
fn tone_detector_counts_bursts_and_ignores_speech() {
    let dir = scratch("tone-detector");
    let wav = dir.join("t.wav");
    tone_wav(&wav, 600.0, 400, 200);
    let one = voxgate::call::wav::decode(&std::fs::read(&wav).unwrap()).unwrap();
    let three: Vec<i16> = one
        .samples
        .iter()
        .chain(&one.samples)
        .chain(&one.samples)
        .copied()
        .collect();
    assert_eq!(tone_bursts(&three, 600.0, 10), 3);
    assert_eq!(tone_bursts(&three, 1000.0, 10), 0, "other frequency");
    let speech = voxgate::call::wav::decode(
        &std::fs::read(speech_wav(&dir, "s", "your balance is twelve dollars")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        tone_bursts(&speech.samples, 600.0, 10),
        0,
        "speech is no tone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_music_loops_until_the_no_input_turn_is_answered() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = scratch("hold-music");
    let music = dir.join("hold.wav");
    // 0.6 s per loop; the caller stays silent for the 2.5 s post-response timeout.
    tone_wav(&music, 600.0, 400, 200);
    let url = format!("file://{}", music.display());
    let json = skill_with_billing(|node| {
        node["context"]["vgwPostResponseTimeoutCount"] = json!(2500);
        node["output"]["generic"]
            .as_array_mut()
            .expect("generic")
            .push(json!({
                "response_type": "audio",
                "source": url,
                "channel_options": {"voice_telephony": {"loop": true}}
            }));
    });
    // The caller answers the no-input prompt after recognising it: give it time.
    let json = edit_node(&json, "no_input_first", |node| {
        node["context"]["vgwPostResponseTimeoutCount"] = json!(8000);
    });
    let skill = voxgate::assistant::DialogSkill::from_json(&json).expect("skill");
    let mut gw = start(skill, settings(true)).await;
    let report = call(
        caller(&gw.app, TransferBehaviour::Accept, false),
        vec![Step::Press("1".into()), Step::Press("9".into())],
    )
    .await;
    let (turns, outcome) = notices_until_end(&mut gw.notices, NOTICE_WAIT).await;
    assert_eq!(outcome, Some(CallOutcome::Completed), "{:?}", report.lines);
    let bursts = tone_bursts(&report.audio, 600.0, 10);
    // Played once it would be 1; looped over 2.5 s about 4. Had it not stopped at the
    // no-input turn's reply, the caller (waiting for a pause to press 9) would hear it
    // until its call timeout.
    assert!(
        (3..=6).contains(&bursts),
        "hold music bursts heard: {bursts}; {:?}",
        report.lines
    );
    // The music covered the post-response wait; the no-input turn's answer was said,
    // then the caller's 9 ended the call.
    let responses: Vec<(&str, &str)> = turns
        .iter()
        .map(|t| (t.input.as_str(), t.response.as_str()))
        .collect();
    let still_there = responses
        .iter()
        .position(|(_, r)| r.contains("still there"))
        .unwrap_or_else(|| panic!("no-input prompt said: {responses:?}"));
    assert!(
        responses[still_there + 1..]
            .iter()
            .any(|(i, r)| *i == "9" && r.starts_with("Goodbye")),
        "the caller's 9 after the music: {responses:?}"
    );
    gw.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_sends_dtmf_over_rfc4733_and_a_sip_info() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let json = skill_with_billing(|node| {
        let generic = node["output"]["generic"].as_array_mut().expect("generic");
        generic.push(json!({
            "response_type": "dtmf",
            "command_info": {"type": "send", "parameters": {
                "digits": [{"code": "4"}, {"code": "2", "duration": 120}, {"code": 11}],
                "send_interval": 150
            }}
        }));
        node["output"]["vgwAction"] = json!({
            "command": "vgwActSendSIPInfo",
            "parameters": {
                "sipHeaders": {"Content-Type": "application/dtmf-relay"},
                "messageBody": "Signal=5\r\nDuration=160"
            }
        });
    });
    let skill = voxgate::assistant::DialogSkill::from_json(&json).expect("skill");
    let mut gw = start(skill, settings(true)).await;
    let report = call(
        caller(&gw.app, TransferBehaviour::Accept, false),
        vec![Step::Press("1".into()), Step::Press("9".into())],
    )
    .await;
    let (_turns, outcome) = notices_until_end(&mut gw.notices, NOTICE_WAIT).await;
    assert_eq!(outcome, Some(CallOutcome::Completed), "{:?}", report.lines);
    let keys: String = report
        .lines
        .iter()
        .filter_map(|l| match l {
            CallerLine::KeyReceived(k) => Some(*k),
            _ => None,
        })
        .collect();
    assert_eq!(keys, "42#", "keys the caller received: {:?}", report.lines);
    assert!(
        report
            .lines
            .iter()
            .any(|l| matches!(l, CallerLine::Info(b) if b.contains("Signal=5"))),
        "SIP INFO with the DTMF relay body: {:?}",
        report.lines
    );
    gw.app.shutdown().await;
}

/// Passes every request to the real provider and keeps what it was asked.
#[derive(Debug)]
struct Observed<T: ?Sized> {
    inner: Arc<T>,
    recognitions: Mutex<Vec<RecognizeOptions>>,
    syntheses: Mutex<Vec<SynthesisRequest>>,
}

impl<T: ?Sized> Observed<T> {
    fn new(inner: Arc<T>) -> Arc<Self> {
        Arc::new(Observed {
            inner,
            recognitions: Mutex::new(Vec::new()),
            syntheses: Mutex::new(Vec::new()),
        })
    }
}

impl SpeechToText for Observed<dyn SpeechToText> {
    fn recognize(
        &self,
        opts: RecognizeOptions,
    ) -> BoxFuture<'_, Result<RecognitionStream, SpeechError>> {
        self.recognitions.lock().unwrap().push(opts.clone());
        self.inner.recognize(opts)
    }
    fn models(&self) -> BoxFuture<'_, Result<Vec<SpeechModel>, SpeechError>> {
        self.inner.models()
    }
}

impl TextToSpeech for Observed<dyn TextToSpeech> {
    fn synthesize(
        &self,
        req: SynthesisRequest,
    ) -> BoxFuture<'_, Result<SynthesisStream, SpeechError>> {
        self.syntheses.lock().unwrap().push(req.clone());
        self.inner.synthesize(req)
    }
    fn voices(&self) -> BoxFuture<'_, Result<Vec<Voice>, SpeechError>> {
        self.inner.voices()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_reconfigures_speech_mid_call() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let json = skill_with_billing(|node| {
        let generic = node["output"]["generic"].as_array_mut().expect("generic");
        // Before the billing answer: a new voice for the rest of the call, and a custom
        // language model for the caller's next utterance only.
        generic.insert(
            0,
            json!({
                "response_type": "text_to_speech",
                "command_info": {"type": "configure", "parameters": {
                    "synthesize": {"voice": "en-GB_KateV3Voice"}
                }}
            }),
        );
        generic.insert(
            0,
            json!({
                "response_type": "speech_to_text",
                "command_info": {"type": "configure", "parameters": {
                    "update_strategy": "merge_once",
                    "narrowband_recognize": {"language_customization_id": "billing-terms", "profanity_filter": false}
                }}
            }),
        );
    });
    let skill = voxgate::assistant::DialogSkill::from_json(&json).expect("skill");
    let mut providers = Providers::embedded(skill).expect("providers");
    let stt = Observed::new(providers.stt.clone());
    let tts = Observed::new(providers.tts.clone());
    providers.stt = stt.clone();
    providers.tts = tts.clone();
    let mut gw = start_with(providers, settings(true)).await;
    let report = call(
        caller(&gw.app, TransferBehaviour::Accept, false),
        vec![Step::Press("1".into()), Step::Say("goodbye".into())],
    )
    .await;
    let (turns, outcome) = notices_until_end(&mut gw.notices, NOTICE_WAIT).await;
    assert_eq!(outcome, Some(CallOutcome::Completed), "{:?}", report.lines);
    let inputs: Vec<&str> = turns.iter().map(|t| t.input.as_str()).collect();
    assert!(
        inputs.contains(&"goodbye"),
        "recognised with the reconfigured stream: {inputs:?}"
    );

    let voices: Vec<Option<String>> = tts
        .syntheses
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.voice.clone())
        .collect();
    // Welcome in the integration's voice; billing answer and goodbye in the new one.
    assert_eq!(voices.first(), Some(&None), "{voices:?}");
    assert!(voices.len() >= 3, "{voices:?}");
    assert!(
        voices[1..]
            .iter()
            .all(|v| v.as_deref() == Some("en-GB_KateV3Voice")),
        "{voices:?}"
    );

    let recs = stt.recognitions.lock().unwrap().clone();
    let custom: Vec<Option<&str>> = recs.iter().map(|o| o.customization_id.as_deref()).collect();
    // Start of call, restarted with the one-turn model when configured, then back to the
    // call's configuration once the caller's turn ("goodbye") went to the assistant.
    assert!(recs.len() >= 3, "{custom:?}");
    assert_eq!(custom[0], None);
    let with = custom
        .iter()
        .position(|c| *c == Some("billing-terms"))
        .expect("a stream with the custom model");
    assert!(
        custom[with + 1..].contains(&None),
        "the one-turn model ended with the turn: {custom:?}"
    );
    assert_eq!(
        recs[with].extra_message.get("profanity_filter"),
        Some(&json!(false)),
        "other parameters passed through"
    );
    gw.app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tts_down_plays_the_error_audio_and_the_call_goes_on() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = scratch("err-audio");
    let err = dir.join("err.wav");
    tone_wav(&err, 600.0, 400, 200);
    let url = format!("file://{}", err.display());
    let json = edit_node(
        voxgate::assistant::engine::DEMO_SKILL_JSON,
        "welcome",
        |node| node["context"]["vgwErrAudioURL"] = json!(url),
    );
    let skill = voxgate::assistant::DialogSkill::from_json(&json).expect("skill");
    let mut providers = Providers::embedded(skill).expect("providers");
    providers.tts = Arc::new(
        voxgate::speech::WatsonTts::new(voxgate::speech::WatsonTtsConfig {
            url: format!("http://{}", down_service().await),
            credentials: voxgate::speech::Credentials::None,
            timeouts: voxgate::speech::Timeouts {
                connect: Duration::from_secs(2),
                first_byte: Duration::from_secs(3),
                idle: Duration::from_secs(3),
            },
        })
        .expect("tts"),
    );
    let mut gw = start_with(providers, settings(true)).await;
    let report = call(
        caller(&gw.app, TransferBehaviour::Accept, false),
        vec![Step::Press("9".into())],
    )
    .await;
    let (turns, outcome) = notices_until_end(&mut gw.notices, NOTICE_WAIT).await;
    // The welcome and the goodbye could not be synthesized: each was replaced by the
    // error audio, and the call went on to the caller's 9 instead of failing.
    assert_eq!(outcome, Some(CallOutcome::Completed), "{:?}", report.lines);
    assert!(
        turns.iter().any(|t| t.input == "9"),
        "the caller's key was a turn: {turns:?}"
    );
    assert_eq!(
        tone_bursts(&report.audio, 600.0, 10),
        2,
        "{:?}",
        report.lines
    );
    gw.app.shutdown().await;
}
