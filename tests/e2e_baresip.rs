//! baresip (Debian) calls the gateway with SRTP (SDES, `mediaenc=srtp-mand`), sends a
//! WAV of synthesized speech and records what it hears (the `sndfile` filter dumps the
//! decoded far end); the recording is recognised to check the prompts. Once offering
//! only PCMU, once only Opus (baresip's `opus` module: the gateway answers Opus and
//! transcodes to and from its 8 kHz speech side).

mod e2e;

use std::time::Duration;

use e2e::*;
use voxgate::call::task::TurnTiming;
use voxgate::call::CallOutcome;

/// The one codec baresip offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Offer {
    Pcmu,
    Opus,
}

impl Offer {
    /// baresip's audio rate for the codec.
    fn rate(self) -> u32 {
        match self {
            Offer::Pcmu => 8000,
            Offer::Opus => 48000,
        }
    }
}

/// Writes baresip's config and account for a call with SRTP offering only `offer`,
/// sending `say`.
fn baresip_config(dir: &std::path::Path, say: &std::path::Path, sip_port: u16, offer: Offer) {
    // baresip 1.0 does not resample: its audio runs at the codec's rate, and the WAV
    // it sends must be at that rate too (see `offer.rate()`).
    let (module, codec) = match offer {
        Offer::Pcmu => ("module g711.so\n", "PCMU"),
        // Mono, as the gateway answers (stereo=0).
        Offer::Opus => (
            "module opus.so\nopus_stereo no\nopus_sprop_stereo no\n",
            "opus/48000/1",
        ),
    };
    let cfg = format!(
        "poll_method epoll\n\
         sip_listen 127.0.0.1:{sip_port}\n\
         audio_player aufile,{dir}/unused.wav\n\
         audio_source aufile,{say}\n\
         audio_srate {rate}\n\
         audio_channels 1\n\
         rtp_ports 30000-39999\n\
         snd_path {dir}\n\
         module_path /usr/lib/baresip/modules\n\
         {module}\
         module aufile.so\n\
         module sndfile.so\n\
         module srtp.so\n\
         module menu.so\n\
         module account.so\n",
        dir = dir.display(),
        say = say.display(),
        rate = offer.rate(),
    );
    std::fs::write(dir.join("config"), cfg).expect("config");
    std::fs::write(
        dir.join("accounts"),
        format!("<sip:caller@127.0.0.1>;regint=0;mediaenc=srtp-mand;audio_codecs={codec}\n"),
    )
    .expect("accounts");
}

/// How a baresip call went.
struct BaresipCall {
    /// baresip's output.
    log: String,
    turns: Vec<TurnTiming>,
    outcome: Option<CallOutcome>,
    /// What baresip heard (its decoded far end), at 8 kHz.
    heard: Vec<i16>,
}

/// baresip calls the demo number offering only `offer`, says "billing" once the welcome
/// has finished and hangs up at the end of its WAV.
async fn baresip_call(offer: Offer) -> BaresipCall {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = scratch(match offer {
        Offer::Pcmu => "baresip",
        Offer::Opus => "baresip-opus",
    });
    // "billing" after 9 s of silence: the welcome has finished by then.
    let espeak = speech_wav(&dir, "billing", "billing");
    let say = dir.join("say.wav");
    let st = std::process::Command::new("sox")
        .arg(&espeak)
        .arg(&say)
        .args(["rate", &offer.rate().to_string()])
        .args(["pad", "9", "5"])
        .status()
        .expect("sox");
    assert!(st.success());
    let sip_port = {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        u.local_addr().expect("addr").port()
    };
    baresip_config(&dir, &say, sip_port, offer);
    let mut gw = start(skill(|s| s), settings(true)).await;
    let target = gw.app.gateway.local.udp;
    let mut child = tokio::process::Command::new("baresip")
        .current_dir(&dir)
        .args(["-f", dir.to_str().expect("path")])
        .args(["-e", &format!("/dial sip:{NUMBER}@{target}")])
        .args(["-t", "25"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("baresip is installed");
    let (turns, outcome) = notices_until_end(&mut gw.notices, Duration::from_secs(40)).await;
    // baresip hung up (its WAV ended) and closed its dump before the BYE; it would
    // idle until `-t`, so stop it.
    let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
    let _ = child.start_kill();
    let out = child.wait_with_output().await.expect("output");
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    gw.app.shutdown().await;
    // What baresip heard (decoded, after SRTP): the sndfile dump of the far end.
    let dump = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip recorded what it heard:\n{log}"));
    let wav = voxgate::call::wav::decode(&std::fs::read(&dump).expect("read")).expect("wav");
    BaresipCall {
        log,
        turns,
        outcome,
        heard: voxgate::call::wav::to_8k(&wav),
    }
}

/// The checks both calls share: SRTP, the WAV's "billing" recognised by the gateway,
/// baresip's hang-up, and the recording; returns the prompts recognised in it.
async fn check_call(call: &BaresipCall) -> String {
    let log = &call.log;
    assert!(
        log.contains("SRTP is Enabled"),
        "baresip negotiated SRTP:\n{log}"
    );
    let inputs: Vec<&str> = call.turns.iter().map(|t| t.input.as_str()).collect();
    assert!(
        inputs.contains(&"billing"),
        "the WAV's speech was recognised: {inputs:?}\n{log}"
    );
    assert_eq!(
        call.outcome,
        Some(CallOutcome::Completed),
        "baresip hung up at the end of its WAV"
    );
    assert!(
        call.heard.len() > 8000 * 8,
        "at least 8 s recorded: {} samples",
        call.heard.len()
    );
    let heard = recognise_prompts(&call.heard).await.join(" | ");
    assert!(
        heard.contains("thanks for calling"),
        "the welcome in the recording: {heard}"
    );
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_with_srtp_and_hears_the_prompts() {
    let call = baresip_call(Offer::Pcmu).await;
    let heard = check_call(&call).await;
    assert!(
        heard.contains("twelve dollars"),
        "the billing answer in the recording: {heard}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_offers_only_opus_and_hears_the_prompts() {
    let call = baresip_call(Offer::Opus).await;
    let log = &call.log;
    // The gateway answered Opus: baresip sends and decodes it.
    assert!(
        log.contains("Set audio encoder: opus 48000Hz")
            && log.contains("Set audio decoder: opus 48000Hz"),
        "baresip used Opus both ways:\n{log}"
    );
    let heard = check_call(&call).await;
    assert!(
        heard.contains("twelve dollars"),
        "the billing answer in the recording: {heard}"
    );
}
