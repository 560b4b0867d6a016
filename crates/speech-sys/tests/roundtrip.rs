//! espeak-ng → 16 kHz → PocketSphinx through the raw wrappers (no voxgate code).

use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use voxgate_speech_sys::{
    default_model_dir, Recognizer, RecognizerConfig, SpeakRequest, SynthEvent, Synthesizer,
    ESPEAK_RATE_HZ,
};

fn say(text: &str, voice: &str, cancel: Arc<AtomicBool>) -> (Vec<i16>, usize) {
    let (tx, rx) = mpsc::channel();
    let mut pcm = Vec::new();
    let mut chunks = 0usize;
    Synthesizer::global()
        .expect("espeak")
        .speak(
            SpeakRequest {
                text: text.into(),
                voice: voice.into(),
                rate_wpm: None,
                ssml: false,
                cancel,
            },
            Box::new(move |ev| {
                match ev {
                    SynthEvent::Audio(a) => {
                        let _ = tx.send(Some(a.to_vec()));
                    }
                    SynthEvent::Finished(r) => {
                        assert!(r.is_ok(), "{r:?}");
                        let _ = tx.send(None);
                    }
                }
                true
            }),
        )
        .expect("queue");
    while let Ok(Some(c)) = rx.recv_timeout(Duration::from_secs(10)) {
        pcm.extend_from_slice(&c);
        chunks += 1;
    }
    (pcm, chunks)
}

/// Linear-interpolation resampler, test-only.
fn resample(pcm: &[i16], from: u32, to: u32) -> Vec<i16> {
    let n = (pcm.len() as u64 * to as u64 / from as u64) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * from as f64 / to as f64;
            let j = pos as usize;
            let f = pos - j as f64;
            let a = pcm[j.min(pcm.len() - 1)] as f64;
            let b = pcm[(j + 1).min(pcm.len() - 1)] as f64;
            (a + (b - a) * f) as i16
        })
        .collect()
}

#[test]
fn espeak_to_pocketsphinx() {
    let model = default_model_dir();
    let jsgf =
        "#JSGF V1.0;\ngrammar t;\npublic <s> = talk to an agent | check my balance | yes | no;\n";
    let mut rec = Recognizer::new(&RecognizerConfig {
        hmm: model.join("en-us"),
        dict: model.join("cmudict-en-us.dict"),
        jsgf: jsgf.into(),
        options: Vec::new(),
    })
    .expect("recognizer");
    for (phrase, voice) in [("check my balance", "en-us"), ("talk to an agent", "en+f3")] {
        let (pcm, chunks) = say(phrase, voice, Arc::new(AtomicBool::new(false)));
        assert!(chunks > 1, "expected several chunks, got {chunks}");
        let pcm16 = resample(&pcm, ESPEAK_RATE_HZ, 16_000);
        for c in pcm16.chunks(320) {
            rec.process(c).expect("process");
        }
        let hyp = rec.end_utterance().expect("end").expect("a hypothesis");
        assert_eq!(hyp.text, phrase);
        let p = hyp
            .lattice_posterior
            .expect("a final hypothesis carries the lattice posterior");
        // The lattice's best path is this (correct) sentence, so its posterior is not 0.
        assert!(p > 0.0 && p <= 1.0, "{p}");
        assert!(hyp.frames > 50, "{} frames", hyp.frames);
    }
}

#[test]
fn cancel_stops_synthesis_early() {
    let text = "one two three four five six seven eight nine ten eleven twelve";
    let (full, _) = say(text, "en-us", Arc::new(AtomicBool::new(false)));
    let (none, chunks) = say(text, "en-us", Arc::new(AtomicBool::new(true)));
    assert!(
        full.len() > 22_050,
        "full utterance too short: {}",
        full.len()
    );
    assert_eq!((none.len(), chunks), (0, 0));
}

#[test]
fn unknown_voice_and_bad_grammar_are_errors() {
    let (tx, rx) = mpsc::channel();
    Synthesizer::global()
        .expect("espeak")
        .speak(
            SpeakRequest {
                text: "hi".into(),
                voice: "no-such-voice-xyz".into(),
                rate_wpm: None,
                ssml: false,
                cancel: Arc::new(AtomicBool::new(false)),
            },
            Box::new(move |ev| {
                if let SynthEvent::Finished(r) = ev {
                    let _ = tx.send(r.is_err());
                }
                true
            }),
        )
        .expect("queue");
    assert!(rx.recv_timeout(Duration::from_secs(10)).expect("finished"));
    let model = default_model_dir();
    let r = Recognizer::new(&RecognizerConfig {
        hmm: model.join("en-us"),
        dict: model.join("cmudict-en-us.dict"),
        jsgf: "#JSGF V1.0;\ngrammar t;\npublic <s> = zzqxwv;\n".into(),
        options: Vec::new(),
    });
    assert!(r.is_err());
}
