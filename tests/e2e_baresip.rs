//! baresip (Debian) calls the gateway with SRTP (SDES, `mediaenc=srtp-mand`), sends a
//! WAV of synthesized speech and records what it hears (the `sndfile` filter dumps the
//! decoded far end); the recording is recognised to check the prompts.

mod e2e;

use std::time::Duration;

use e2e::*;
use voxgate::call::CallOutcome;

/// Writes baresip's config and account for a call with SRTP, sending `say`.
fn baresip_config(dir: &std::path::Path, say: &std::path::Path, sip_port: u16) {
    let cfg = format!(
        "poll_method epoll\n\
         sip_listen 127.0.0.1:{sip_port}\n\
         audio_player aufile,{dir}/unused.wav\n\
         audio_source aufile,{say}\n\
         audio_srate 8000\n\
         audio_channels 1\n\
         rtp_ports 30000-39999\n\
         snd_path {dir}\n\
         module_path /usr/lib/baresip/modules\n\
         module g711.so\n\
         module aufile.so\n\
         module sndfile.so\n\
         module srtp.so\n\
         module menu.so\n\
         module account.so\n",
        dir = dir.display(),
        say = say.display(),
    );
    std::fs::write(dir.join("config"), cfg).expect("config");
    std::fs::write(
        dir.join("accounts"),
        "<sip:caller@127.0.0.1>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU\n",
    )
    .expect("accounts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baresip_calls_with_srtp_and_hears_the_prompts() {
    let dir = scratch("baresip");
    // "billing" after 9 s of silence: the welcome has finished by then.
    let espeak = speech_wav(&dir, "billing", "billing");
    let say = dir.join("say.wav");
    let st = std::process::Command::new("sox")
        .arg(&espeak)
        .arg(&say)
        .args(["pad", "9", "5"])
        .status()
        .expect("sox");
    assert!(st.success());
    let sip_port = {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        u.local_addr().expect("addr").port()
    };
    baresip_config(&dir, &say, sip_port);
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
    assert!(
        log.contains("SRTP is Enabled"),
        "baresip negotiated SRTP:\n{log}"
    );
    let inputs: Vec<&str> = turns.iter().map(|t| t.input.as_str()).collect();
    assert!(
        inputs.contains(&"billing"),
        "the WAV's speech was recognised: {inputs:?}"
    );
    assert_eq!(
        outcome,
        Some(CallOutcome::Completed),
        "baresip hung up at the end of its WAV"
    );
    // What baresip heard (decoded, after SRTP): the sndfile dump of the far end.
    let dump = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip recorded what it heard:\n{log}"));
    let wav = voxgate::call::wav::decode(&std::fs::read(&dump).expect("read")).expect("wav");
    let pcm = voxgate::call::wav::to_8k(&wav);
    assert!(
        pcm.len() > 8000 * 8,
        "at least 8 s recorded: {} samples",
        pcm.len()
    );
    let heard = recognise_prompts(&pcm).await.join(" | ");
    assert!(
        heard.contains("thanks for calling"),
        "the welcome in the recording: {heard}"
    );
    assert!(
        heard.contains("twelve dollars"),
        "the billing answer in the recording: {heard}"
    );
    gw.app.shutdown().await;
}
