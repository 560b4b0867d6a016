//! Speech latency figures for bench/README.md `## Speech`:
//! time to first synthesized chunk, decoder start, and recognition latency from the end of
//! speech to the final result, embedded and through speech-server on loopback.
//!
//! `cargo run --release --example speech_bench`

use std::sync::Arc;
use std::time::{Duration, Instant};

use voxgate::speech::server::{ServerConfig, ServerState};
use voxgate::speech::*;
use voxgate_engine::codec::g711::{ulaw_decode, ulaw_encode};

const PHRASES: &[&str] = &[
    "talk to an agent",
    "check my balance",
    "pay my bill",
    "report a lost card",
    "opening hours",
    "main menu",
    "reset my password",
    "track my package",
];
const VOICES: &[&str] = &["en-US_AllisonV3Voice", "en-GB_KateV3Voice"];
const PROMPT: &str = "Thank you for calling. How can I help you today?";

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name:<58} n={:<3} median {:>7.1} ms  p90 {:>7.1} ms  max {:>7.1} ms",
        v.len(),
        ms(p(0.5)),
        ms(p(0.9)),
        ms(p(1.0))
    );
}

async fn first_chunk(tts: &dyn TextToSpeech, voice: &str) -> (Duration, Duration, usize) {
    let t = Instant::now();
    let mut req = SynthesisRequest::text(PROMPT);
    req.voice = Some(voice.into());
    let mut s = tts.synthesize(req).await.expect("synthesize");
    let mut first = None;
    let mut samples = 0;
    while let Some(c) = s.next_chunk().await {
        first.get_or_insert_with(|| t.elapsed());
        samples += c.expect("chunk").samples();
    }
    (first.unwrap_or_default(), t.elapsed(), samples)
}

async fn speech_8k_mulaw(text: &str, voice: &str) -> Vec<i16> {
    let mut req = SynthesisRequest::text(text);
    req.voice = Some(voice.into());
    let mut s = EspeakTts::default().start(req).expect("tts");
    let mut pcm = vec![0i16; 2400];
    while let Some(Ok(AudioChunk::Pcm(p))) = s.next_chunk().await {
        pcm.extend(p);
    }
    pcm.iter().map(|&x| ulaw_decode(ulaw_encode(x))).collect()
}

/// Push the utterance (speech with espeak's own trailing silence) in real time, 20 ms per
/// frame; then either `finish()` or keep pushing silence until the endpointer ends the
/// utterance. Latency: from the end of the utterance audio to the final result.
async fn latency(
    stt: &dyn SpeechToText,
    pcm: &[i16],
    explicit_end: bool,
) -> Option<(Duration, Duration)> {
    let t0 = Instant::now();
    let mut s = stt
        .recognize(RecognizeOptions::default())
        .await
        .expect("start");
    let start = t0.elapsed();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    for f in pcm.chunks(160) {
        tick.tick().await;
        s.push(f).expect("push");
    }
    let end_of_speech = Instant::now();
    if explicit_end {
        s.finish().await.expect("finish");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::select! {
            ev = s.next_event() => match ev {
                Some(Ok(RecognitionEvent::Final(_))) => return Some((start, end_of_speech.elapsed())),
                Some(Ok(_)) => {}
                _ => return None,
            },
            _ = tick.tick(), if !explicit_end => {
                s.push(&[0i16; 160]).expect("silence");
            }
        }
        if Instant::now() > deadline {
            return None;
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let phrases: Vec<String> = PHRASES.iter().map(|s| s.to_string()).collect();
    let grammar = Arc::new(Grammar::from_phrases(&phrases).expect("grammar"));
    let stt = PocketSphinxStt::new(grammar.clone());
    let state = ServerState::new(ServerConfig {
        stt: stt.clone(),
        tts: EspeakTts::default(),
        api_key: None,
        token_ttl: Duration::from_secs(3600),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(voxgate::speech::server::serve(listener, state));
    let t = Timeouts::default();
    let wstt = WatsonStt::new(WatsonSttConfig {
        url: url.clone(),
        credentials: Credentials::None,
        timeouts: t,
    })
    .expect("stt");
    let wtts = WatsonTts::new(WatsonTtsConfig {
        url,
        credentials: Credentials::None,
        timeouts: t,
    })
    .expect("tts");
    let etts = EspeakTts::default();

    // Warm up both paths once.
    let _ = first_chunk(&etts, VOICES[0]).await;
    let _ = first_chunk(&wtts, VOICES[0]).await;

    for (name, tts) in [
        ("embedded espeak-ng", &etts as &dyn TextToSpeech),
        ("speech-server (Watson TTS client, HTTP)", &wtts),
    ] {
        let mut first = Vec::new();
        let mut rtf = Vec::new();
        for i in 0..20 {
            let (f, total, samples) = first_chunk(tts, VOICES[i % VOICES.len()]).await;
            first.push(f);
            rtf.push(total.as_secs_f64() / (samples as f64 / 8000.0));
        }
        stats(&format!("TTS first chunk, {name}"), first);
        rtf.sort_by(f64::total_cmp);
        println!(
            "{:<58} median real-time factor {:.4} (synthesis time / audio time)",
            format!("TTS whole prompt, {name}"),
            rtf[rtf.len() / 2]
        );
    }

    let mut audio = Vec::new();
    for v in VOICES {
        for p in PHRASES {
            audio.push(speech_8k_mulaw(p, v).await);
        }
    }
    for (name, stt) in [
        ("embedded PocketSphinx", &stt as &dyn SpeechToText),
        ("speech-server (Watson STT client, WebSocket)", &wstt),
    ] {
        for explicit in [true, false] {
            let mut starts = Vec::new();
            let mut lat = Vec::new();
            let mut failed = 0;
            for a in &audio {
                match latency(stt, a, explicit).await {
                    Some((s, l)) => {
                        starts.push(s);
                        lat.push(l);
                    }
                    None => failed += 1,
                }
            }
            let how = if explicit {
                "end of audio (finish)"
            } else {
                "endpointer, 500 ms silence"
            };
            if explicit {
                stats(&format!("STT stream start, {name}"), starts);
            }
            stats(&format!("STT end of speech -> final, {how}, {name}"), lat);
            if failed > 0 {
                println!("  ({failed} utterances gave no final result)");
            }
        }
    }
}
