//! Shared harness of the end-to-end tests: the whole product in-process (SIP gateway,
//! media engine, embedded speech, the demo skill), a collector of its call notices, and
//! the built-in caller.
#![allow(dead_code)]

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use voxgate::app::{App, Providers};
use voxgate::assistant::DialogSkill;
use voxgate::call::task::{CallNotice, TurnTiming};
use voxgate::call::CallOutcome;
use voxgate::caller::leg::TransferBehaviour;
use voxgate::caller::run::{CallReport, CallerOptions, Step};
use voxgate::gateway::GatewayConfig;
use voxgate::settings::IntegrationSettings;
use voxgate::sip::sdp::answer::Codec;
use voxgate_engine::worker::EngineConfig;

/// Tests of one binary that recognise speech on both ends take turns: four calls at
/// once, each with two recognisers, on a 2-core machine already busy garble the audio
/// (the tests are about the call, not about recognition under CPU starvation).
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The demo number.
pub const NUMBER: &str = "+19585550123";

/// A running gateway and the notices of its calls.
pub struct Running {
    pub app: App,
    pub notices: mpsc::UnboundedReceiver<CallNotice>,
}

/// The demo skill, optionally edited (`edit` maps the JSON text).
pub fn skill(edit: impl Fn(String) -> String) -> DialogSkill {
    let json = edit(voxgate::assistant::engine::DEMO_SKILL_JSON.to_owned());
    DialogSkill::from_json(&json).expect("skill loads")
}

/// Starts the gateway with the embedded providers.
pub async fn start(skill: DialogSkill, settings: IntegrationSettings) -> Running {
    start_with(Providers::embedded(skill).expect("providers"), settings).await
}

/// Starts the gateway with the given providers.
pub async fn start_with(providers: Providers, settings: IntegrationSettings) -> Running {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = App::start(
        GatewayConfig::ephemeral(),
        EngineConfig {
            cores: vec![0],
            ..EngineConfig::default()
        },
        providers,
        settings,
        Some(tx),
    )
    .await
    .expect("gateway starts");
    Running { app, notices: rx }
}

/// Caller options for the demo number on this gateway.
pub fn caller(app: &App, transfer: TransferBehaviour, srtp: bool) -> CallerOptions {
    let sip = app.gateway.local.udp;
    CallerOptions {
        gateway: sip,
        request_uri: format!("sip:{NUMBER}@{sip}"),
        caller_number: "+15550100999".into(),
        local_ip: IpAddr::from([127, 0, 0, 1]),
        codec: Codec::Pcmu,
        srtp,
        transfer,
        expected_prompts: voxgate::demo::skill_prompts(voxgate::assistant::engine::DEMO_SKILL_JSON),
        voice: None,
        prompt_gap: Duration::from_millis(1200),
        call_timeout: Duration::from_secs(60),
    }
}

/// Runs one scripted call and returns what the caller saw.
pub async fn call(opts: CallerOptions, script: Vec<Step>) -> CallReport {
    voxgate::caller::run::run_call(opts, script, |_| {})
        .await
        .expect("the call completes")
}

/// The notices of one call (up to and including its end), waiting at most `within`.
pub async fn notices_until_end(
    rx: &mut mpsc::UnboundedReceiver<CallNotice>,
    within: Duration,
) -> (Vec<TurnTiming>, Option<CallOutcome>) {
    let deadline = tokio::time::Instant::now() + within;
    let mut turns = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(CallNotice::Turn { timing, .. })) => turns.push(timing),
            Ok(Some(CallNotice::Ended { outcome, .. })) => return (turns, Some(outcome)),
            _ => return (turns, None),
        }
    }
}

/// Polls `pred` every 20 ms until it holds or `within` passes; returns its last value.
pub async fn eventually(within: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if pred() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback service that is down: it takes each connection and drops it at once, so
/// a client fails fast (a port freed for "connection refused" could be taken by the
/// gateway's own listeners before the call).
pub async fn down_service() -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((conn, _)) = l.accept().await {
            drop(conn);
        }
    });
    addr
}

/// Settings with the given transfer-failure disconnect.
pub fn settings(disconnect_on_transfer_failure: bool) -> IntegrationSettings {
    IntegrationSettings {
        disconnect_on_transfer_failure,
        ..IntegrationSettings::default()
    }
}

/// Synthesizes `text` with espeak-ng and converts it with sox to 8 kHz mono; returns
/// the path of a 16-bit WAV (`name.wav`) in `dir`.
pub fn speech_wav(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let raw = dir.join(format!("{name}.espeak.wav"));
    let out = dir.join(format!("{name}.wav"));
    let st = std::process::Command::new("espeak-ng")
        .args(["-w", raw.to_str().expect("path"), text])
        .status()
        .expect("espeak-ng runs");
    assert!(st.success(), "espeak-ng failed");
    let st = std::process::Command::new("sox")
        .arg(&raw)
        .args(["-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .arg(&out)
        .status()
        .expect("sox runs");
    assert!(st.success(), "sox failed");
    out
}

/// Converts a WAV to raw 8 kHz µ-law bytes with sox.
pub fn mulaw_of(wav: &std::path::Path) -> Vec<u8> {
    let out = wav.with_extension("ul");
    let st = std::process::Command::new("sox")
        .arg(wav)
        .args(["-r", "8000", "-c", "1", "-t", "ul"])
        .arg(&out)
        .status()
        .expect("sox runs");
    assert!(st.success(), "sox failed");
    std::fs::read(&out).expect("µ-law file")
}

/// Writes a pcap (Ethernet/IPv4/UDP/RTP, PCMU, 20 ms packets) of `lead_silence_ms` of
/// silence followed by `ulaw` and a 600 ms silent tail: what SIPp's `play_pcap_audio`
/// replays with the capture's own pacing.
pub fn write_rtp_pcap(path: &std::path::Path, ulaw: &[u8], lead_silence_ms: usize) {
    let mut audio = vec![0xFFu8; lead_silence_ms * 8];
    audio.extend_from_slice(ulaw);
    audio.extend(std::iter::repeat_n(0xFFu8, 4800));
    let mut f: Vec<u8> = Vec::new();
    // Global header: magic, v2.4, tz 0, sigfigs 0, snaplen, LINKTYPE_ETHERNET.
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&0i32.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    let ssrc: u32 = 0x5eed_1234;
    for (i, chunk) in audio.chunks(160).enumerate() {
        let mut payload = chunk.to_vec();
        payload.resize(160, 0xFF);
        let mut rtp = Vec::with_capacity(172);
        rtp.push(0x80);
        rtp.push(if i == 0 { 0x80 } else { 0x00 }); // marker on the first packet, PT 0
        rtp.extend_from_slice(&(i as u16).to_be_bytes());
        rtp.extend_from_slice(&((i as u32) * 160).to_be_bytes());
        rtp.extend_from_slice(&ssrc.to_be_bytes());
        rtp.extend_from_slice(&payload);
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut pkt = Vec::with_capacity(14 + ip_len);
        pkt.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00]);
        let mut ip = vec![
            0x45,
            0,
            (ip_len >> 8) as u8,
            ip_len as u8,
            0,
            0,
            0x40,
            0,
            64,
            17,
            0,
            0,
            127,
            0,
            0,
            1,
            127,
            0,
            0,
            1,
        ];
        let mut sum: u32 = ip
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let ck = !(sum as u16);
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
        pkt.extend_from_slice(&ip);
        pkt.extend_from_slice(&6000u16.to_be_bytes());
        pkt.extend_from_slice(&6002u16.to_be_bytes());
        pkt.extend_from_slice(&(udp_len as u16).to_be_bytes());
        pkt.extend_from_slice(&0u16.to_be_bytes()); // no UDP checksum (IPv4)
        pkt.extend_from_slice(&rtp);
        let us = (i as u64) * 20_000;
        f.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
        f.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
        f.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        f.extend_from_slice(&(pkt.len() as u32).to_le_bytes());
        f.extend_from_slice(&pkt);
    }
    std::fs::write(path, f).expect("pcap written");
}

/// A scratch directory for one test.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("voxgate-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// What a SIPp run gave.
pub struct SippRun {
    pub success: bool,
    pub output: String,
}

/// Runs SIPp (UDP) with the scenario `tests/e2e/<scenario>` against `target`, in `dir`
/// (where `speech.pcap` lives), bounded by `limit`.
pub async fn sipp(
    dir: &std::path::Path,
    scenario: &str,
    target: std::net::SocketAddr,
    extra: &[&str],
    limit: Duration,
) -> SippRun {
    let scen = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(scenario);
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.current_dir(dir)
        .arg(target.to_string())
        .args(["-sf", scen.to_str().expect("path"), "-s", NUMBER])
        .args(["-i", "127.0.0.1", "-p", "0", "-mp", "0", "-t", "u1"])
        .args([
            "-nostdin",
            "-timeout",
            &format!("{}s", limit.as_secs().max(1)),
            "-timeout_error",
            "-recv_timeout",
            "20000",
            "-trace_err",
        ])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("sipp is installed (Debian sip-tester)");
    let out = tokio::time::timeout(limit + Duration::from_secs(10), child.wait_with_output()).await;
    let (success, mut output) = match out {
        Ok(Ok(o)) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (false, "sipp did not finish in time (killed)".to_owned()),
    };
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with("_errors.log") {
                let t = std::fs::read_to_string(e.path()).unwrap_or_default();
                output.push_str(&format!("\n--- {n} ---\n{}", &t[..t.len().min(4000)]));
            }
        }
    }
    SippRun { success, output }
}

/// A TCP relay in front of a service, so a test can take the service away mid-call:
/// `stop()` closes the listener and every relayed connection at once (a keep-alive
/// connection in a client's pool dies with it, as when the service goes down).
pub struct Relay {
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays a fresh loopback port to `upstream`.
    pub async fn start(upstream: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            for _ in 0..100_000 {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                let _ = down.set_nodelay(true);
                conns.spawn(async move {
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = up.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                });
            }
            // Dropping the JoinSet aborts every relayed connection.
        });
        Relay { addr, task }
    }

    /// Takes the service away: refuses new connections, resets the open ones.
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Serves the Watson Assistant v2 API for `skill` on loopback; returns its address.
pub async fn assistant_server(skill: DialogSkill) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = voxgate::assistant::AssistantServer::new(skill);
    tokio::spawn(server.serve(listener));
    addr
}

/// Serves the Watson STT/TTS APIs (embedded engines, recogniser on the skill's grammar).
pub async fn speech_server(skill: &DialogSkill) -> std::net::SocketAddr {
    use voxgate::speech::server::{serve, ServerConfig, ServerState};
    let grammar = std::sync::Arc::new(
        voxgate::speech::Grammar::from_phrases(&skill.vocabulary().phrases).expect("grammar"),
    );
    let state = ServerState::new(ServerConfig {
        stt: voxgate::speech::PocketSphinxStt::new(grammar),
        tts: voxgate::speech::EspeakTts::default(),
        api_key: None,
        token_ttl: Duration::from_secs(3600),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(listener, state));
    addr
}

/// Waits for the first turn notice (the welcome started playing).
pub async fn first_turn(
    rx: &mut mpsc::UnboundedReceiver<CallNotice>,
    within: Duration,
) -> Option<TurnTiming> {
    match tokio::time::timeout(within, rx.recv()).await {
        Ok(Some(CallNotice::Turn { timing, .. })) => Some(timing),
        _ => None,
    }
}

/// The demo skill's prompts as a recogniser grammar (words outside the dictionary
/// dropped, so a prompt with a brand name still matches by its other words).
pub fn prompt_grammar() -> std::sync::Arc<voxgate::speech::Grammar> {
    use voxgate::speech::Grammar;
    let known = |w: &str| {
        Grammar::from_phrases(&[w.to_owned()])
            .map(|g| g.skipped().is_empty())
            .unwrap_or(false)
    };
    let phrases: Vec<String> =
        voxgate::demo::skill_prompts(voxgate::assistant::engine::DEMO_SKILL_JSON)
            .iter()
            .map(|p| {
                voxgate::speech::normalize(p)
                    .split(' ')
                    .filter(|w| known(w))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|p| !p.is_empty())
            .collect();
    std::sync::Arc::new(Grammar::from_phrases(&phrases).expect("grammar"))
}

/// Recognises 8 kHz PCM against the prompts; returns every final transcript.
pub async fn recognise_prompts(pcm: &[i16]) -> Vec<String> {
    use voxgate::speech::{PocketSphinxStt, RecognitionEvent, RecognizeOptions, SpeechToText};
    let grammar = prompt_grammar();
    let stt = PocketSphinxStt::new(grammar.clone());
    let opts = RecognizeOptions {
        grammar: Some(grammar),
        interim_results: false,
        inactivity_timeout: None,
        ..RecognizeOptions::default()
    };
    let mut rec = stt.recognize(opts).await.expect("recogniser");
    let mut out = Vec::new();
    for chunk in pcm.chunks(160) {
        if rec.send(chunk.to_vec()).await.is_err() {
            break;
        }
    }
    let _ = rec.finish().await;
    for _ in 0..10_000 {
        match tokio::time::timeout(Duration::from_secs(20), rec.next_event()).await {
            Ok(Some(Ok(RecognitionEvent::Final(t)))) if !t.text.is_empty() => out.push(t.text),
            Ok(Some(Ok(_))) => {}
            _ => break,
        }
    }
    out
}
