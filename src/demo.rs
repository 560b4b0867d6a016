//! `voxgate demo` and `voxgate call`: the built-in caller against a gateway.
//!
//! The demo starts the gateway in-process on the embedded defaults (falling back to
//! ephemeral loopback ports when 5060 is taken), calls the demo number over loopback
//! SIP with RTP (SRTP with `--srtp`), presses 1 for billing, says "agent", follows
//! the hold and the REFER as a trunk would, and prints the conversation from both ends
//! with per-turn timings. It succeeds when the call went as the demo skill scripts it.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::mpsc;
use voxgate_engine::worker::EngineConfig;

use crate::app::{App, AppError, Providers};
use crate::assistant::speech_text::prepare_for_speech;
use crate::assistant::DialogSkill;
use crate::call::task::CallNotice;
use crate::call::CallOutcome;
use crate::caller::leg::TransferBehaviour;
use crate::caller::run::{in_dictionary, run_call, CallReport, CallerLine, CallerOptions, Step};
use crate::gateway::GatewayConfig;
use crate::settings::IntegrationSettings;
use crate::sip::sdp::answer::Codec;

/// The number the demo calls.
pub const DEMO_NUMBER: &str = "+19585550123";
/// Where the demo skill transfers to.
pub const DEMO_AGENT: &str = "sip:agent@127.0.0.1:5070";

/// Every text the skill can say, prepared for speech (what a caller may hear).
pub fn skill_prompts(skill_json: &str) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("text" | "message", Value::String(s)) => out.push(prepare_for_speech(s)),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<Value>(skill_json) {
        if let Some(nodes) = v.get("dialog_nodes") {
            walk(nodes, &mut out);
        }
    }
    out.retain(|s| !s.is_empty() && !s.starts_with("vgw"));
    out.sort();
    out.dedup();
    out
}

fn codec_from(name: &str) -> Option<Codec> {
    match name.to_ascii_lowercase().as_str() {
        "pcmu" => Some(Codec::Pcmu),
        "pcma" => Some(Codec::Pcma),
        "opus" => Some(Codec::Opus),
        _ => None,
    }
}

fn print_line(t0: Instant, line: &CallerLine) {
    let at = t0.elapsed().as_secs_f64();
    match line {
        CallerLine::Status(s) => println!("[{at:6.2}s] caller   SIP {s}"),
        CallerLine::Heard {
            text,
            duration,
            response_delay,
        } => {
            let delay = response_delay
                .map(|d| format!(", {:.0} ms after our input", d.as_secs_f64() * 1000.0))
                .unwrap_or_default();
            match text {
                Some(t) => println!(
                    "[{at:6.2}s] caller   heard: \"{t}\" ({:.1} s{delay})",
                    duration.as_secs_f64()
                ),
                None => println!(
                    "[{at:6.2}s] caller   heard {:.1} s of speech it could not recognise{delay}",
                    duration.as_secs_f64()
                ),
            }
        }
        CallerLine::Said(p) => println!("[{at:6.2}s] caller   said: \"{p}\""),
        CallerLine::Pressed(k) => println!("[{at:6.2}s] caller   pressed: {k}"),
        CallerLine::Direction(d) => {
            println!("[{at:6.2}s] caller   re-INVITE: media {d:?} (hold/resume)")
        }
        CallerLine::Refer { target, headers } => {
            println!(
                "[{at:6.2}s] caller   REFER to {target} {headers:?}: accepted, NOTIFY 100 then 200"
            )
        }
        CallerLine::Info(b) => println!("[{at:6.2}s] caller   INFO: {b}"),
        CallerLine::KeyReceived(k) => println!("[{at:6.2}s] caller   received key {k}"),
        CallerLine::GatewayHungUp => println!("[{at:6.2}s] caller   gateway sent BYE"),
        CallerLine::CallerHungUp => println!("[{at:6.2}s] caller   hung up"),
    }
}

fn print_notice(t0: Instant, n: &CallNotice) {
    let at = t0.elapsed().as_secs_f64();
    let ms = |d: Option<Duration>| {
        d.map(|d| format!("{:.0} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "-".into())
    };
    match n {
        CallNotice::Turn { timing, .. } => {
            let input = if timing.input.is_empty() {
                "(welcome)".to_owned()
            } else {
                format!("\"{}\"", timing.input)
            };
            println!(
                "[{at:6.2}s] gateway  turn {}: input {input} → \"{}\"  [recognition {}, assistant {}, synthesis {}, reply→first RTP packet {}, gateway's share {}]",
                timing.turn,
                timing.response,
                ms(timing.recognition),
                ms(timing.assistant),
                ms(timing.synthesis),
                ms(timing.reply_to_first_packet),
                ms(timing.gateway_share()),
            );
        }
        CallNotice::Ended { outcome, turns, .. } => {
            println!("[{at:6.2}s] gateway  call ended: {outcome:?} after {turns} turns")
        }
    }
}

/// Runs the demo; `Ok(true)` when the call went as scripted.
pub async fn run_demo(srtp: bool) -> Result<bool, AppError> {
    run_demo_with(srtp, Codec::Pcmu).await
}

/// Runs the demo with the caller offering only `codec` (Opus: the gateway accepts it and
/// transcodes to its 8 kHz speech side); `Ok(true)` when the call went as scripted.
pub async fn run_demo_with(srtp: bool, codec: Codec) -> Result<bool, AppError> {
    Ok(demo_verdict(srtp, codec).await?.iter().all(|(ok, _)| *ok))
}

/// Runs the demo with the caller offering only `codec`; returns the checks of [`judge`]
/// (empty when the call did not complete).
pub async fn demo_verdict(srtp: bool, codec: Codec) -> Result<Vec<(bool, String)>, AppError> {
    let skill_json = crate::assistant::engine::DEMO_SKILL_JSON;
    let skill = DialogSkill::demo().map_err(|e| AppError::Assistant(e.to_string()))?;
    let providers = Providers::embedded(skill)?;
    let (tx, mut notices) = mpsc::unbounded_channel();
    let mut gw = GatewayConfig::demo();
    let engine = EngineConfig {
        cores: vec![0],
        ..EngineConfig::default()
    };
    let settings = IntegrationSettings::default();
    let app = match App::start(
        gw.clone(),
        engine.clone(),
        providers.clone(),
        settings.clone(),
        Some(tx.clone()),
    )
    .await
    {
        Ok(app) => app,
        Err(AppError::Gateway(e)) => {
            println!("note: the default SIP ports are busy ({e}); using ephemeral loopback ports");
            gw = GatewayConfig::ephemeral();
            App::start(gw, engine, providers, settings, Some(tx)).await?
        }
        Err(e) => return Err(e),
    };
    let sip = app.gateway.local.udp;
    println!(
        "voxgate demo: gateway on sip:{DEMO_NUMBER}@{sip} (UDP/TCP), TLS on {}",
        app.gateway.local.tls
    );
    println!(
        "              calling {DEMO_NUMBER}{} ({})\n",
        if srtp { " with SRTP" } else { "" },
        codec.encoding()
    );

    let t0 = Instant::now();
    let opts = CallerOptions {
        gateway: sip,
        request_uri: format!("sip:{DEMO_NUMBER}@{sip}"),
        caller_number: "+15550100999".into(),
        local_ip: IpAddr::from([127, 0, 0, 1]),
        codec,
        srtp,
        transfer: TransferBehaviour::Accept,
        expected_prompts: skill_prompts(skill_json),
        voice: None,
        prompt_gap: Duration::from_millis(1200),
        call_timeout: Duration::from_secs(60),
    };
    // Key 1 (RFC 4733) for billing, then speech for the agent. Saying "billing" right
    // after the welcome is recognised or not depending on the caller's random SSRC (an
    // open engine bug, see the call issue's note); "agent" is recognised either way.
    let script = vec![Step::Press("1".into()), Step::Say("agent".into())];
    let printer = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(n) = notices.recv().await {
            print_notice(t0, &n);
            let end = matches!(n, CallNotice::Ended { .. });
            seen.push(n);
            if end {
                break;
            }
        }
        seen
    });
    let report = run_call(opts, script, |l| print_line(t0, l)).await;
    let seen = tokio::time::timeout(Duration::from_secs(10), printer)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    app.shutdown().await;
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            println!("\ndemo FAILED: the call did not complete: {e}");
            return Ok(Vec::new());
        }
    };
    let verdict = judge(&report, &seen);
    println!();
    for (ok, what) in &verdict {
        println!("  [{}] {what}", if *ok { "ok" } else { "FAILED" });
    }
    let passed = verdict.iter().all(|(ok, _)| *ok);
    println!(
        "\ndemo {}",
        if passed {
            "passed: the call went as the demo skill scripts it"
        } else {
            "FAILED"
        }
    );
    Ok(verdict)
}

/// The demo's checks: each (passed, what).
pub fn judge(report: &CallReport, notices: &[CallNotice]) -> Vec<(bool, String)> {
    let turns: Vec<&str> = notices
        .iter()
        .filter_map(|n| match n {
            CallNotice::Turn { timing, .. } => Some(timing.input.as_str()),
            _ => None,
        })
        .collect();
    let ended = notices.iter().find_map(|n| match n {
        CallNotice::Ended { outcome, .. } => Some(outcome.clone()),
        _ => None,
    });
    // A prompt counts only when recognised as one of the skill's texts (a garbled one
    // comes out as some other path of the grammar, e.g. a digit string).
    let phrases = in_dictionary(&skill_prompts(crate::assistant::engine::DEMO_SKILL_JSON));
    let prompts = report.prompts();
    let is_phrase = |t: &Option<String>| t.as_ref().is_some_and(|t| phrases.contains(t));
    let recognised = prompts.iter().filter(|t| is_phrase(t)).count();
    let welcome_recognised = prompts
        .first()
        .is_some_and(|t| is_phrase(t) && t.as_deref().is_some_and(|t| t.starts_with("hello")));
    vec![
        (
            report.lines.contains(&CallerLine::Status(200)),
            "the call was answered (200 OK)".into(),
        ),
        (
            turns.contains(&"agent"),
            "the gateway recognised \"agent\" and asked the assistant".into(),
        ),
        (
            turns.contains(&"1"),
            "the gateway received the key 1 (RFC 4733) as a DTMF turn".into(),
        ),
        (
            report.lines.iter().any(|l| {
                matches!(
                    l,
                    CallerLine::Direction(crate::sip::sdp::Direction::SendOnly)
                )
            }),
            "the caller was put on hold before the transfer".into(),
        ),
        (
            report.transfer_target() == Some(DEMO_AGENT),
            format!("the call was transferred to {DEMO_AGENT} by REFER"),
        ),
        (
            ended == Some(CallOutcome::Transferred),
            "the gateway ended its leg after the transfer succeeded".into(),
        ),
        (
            recognised >= 2 && welcome_recognised,
            "the caller recognised the gateway's prompts (the welcome and at least one more) as the skill's texts".into(),
        ),
    ]
}

/// `voxgate call <uri> --say ...`: calls any gateway and prints what it hears.
pub async fn run_caller(
    uri: &str,
    say: Vec<String>,
    srtp: bool,
    codec: &str,
) -> Result<bool, String> {
    let codec =
        codec_from(codec).ok_or_else(|| format!("unknown codec {codec:?} (pcmu, pcma or opus)"))?;
    let target = gateway_addr(uri)?;
    let t0 = Instant::now();
    let opts = CallerOptions {
        gateway: target,
        request_uri: uri.to_owned(),
        caller_number: "+15550100999".into(),
        local_ip: if target.ip().is_loopback() {
            target.ip()
        } else {
            IpAddr::from([0, 0, 0, 0])
        },
        codec,
        srtp,
        transfer: TransferBehaviour::Accept,
        expected_prompts: skill_prompts(crate::assistant::engine::DEMO_SKILL_JSON),
        voice: None,
        prompt_gap: Duration::from_millis(1200),
        call_timeout: Duration::from_secs(120),
    };
    let mut script: Vec<Step> = say.into_iter().map(Step::Say).collect();
    script.push(Step::HangUp);
    run_call(opts, script, |l| print_line(t0, l))
        .await
        .map(|_| true)
        .map_err(|e| e.to_string())
}

/// The host:port of a SIP URI (default port 5060).
fn gateway_addr(uri: &str) -> Result<SocketAddr, String> {
    let rest = uri
        .strip_prefix("sip:")
        .ok_or_else(|| format!("{uri:?} is not a sip: URI"))?;
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host.split(';').next().unwrap_or(host);
    let with_port = if host.contains(':') && !host.ends_with(']') {
        host.to_owned()
    } else {
        format!("{host}:5060")
    };
    use std::net::ToSocketAddrs;
    with_port
        .to_socket_addrs()
        .map_err(|e| format!("{with_port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{with_port}: no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_skill_prompts_are_prepared_for_speech() {
        let p = skill_prompts(crate::assistant::engine::DEMO_SKILL_JSON);
        assert!(p.iter().any(|s| s.contains("twelve dollars")), "{p:?}");
        assert!(
            p.iter().all(|s| !s.contains("**")),
            "markdown removed: {p:?}"
        );
    }

    #[test]
    fn gateway_address_from_uri() {
        assert_eq!(
            gateway_addr("sip:+19585550123@127.0.0.1:5080").unwrap(),
            "127.0.0.1:5080".parse().unwrap()
        );
        assert_eq!(
            gateway_addr("sip:127.0.0.1").unwrap(),
            "127.0.0.1:5060".parse().unwrap()
        );
        assert!(gateway_addr("tel:+1555").is_err());
    }
}
