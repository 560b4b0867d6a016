//! `voxgate-load`: per-core throughput of the media engine in echo mode.
//!
//! Starts the engine with one media core pinned to `--engine-cpu` (0), opens `--calls`
//! echo sessions, and from a thread pinned to `--load-cpu` (1) sends each 50 G.711
//! packets/s for `--seconds`, receiving the echoes. The last output line is one JSON
//! object (see `voxgate_bench::LoadReport`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use voxgate_bench::{GeneratorArgs, LoadGenerator};
use voxgate_engine::session::SrtpKeys;
use voxgate_engine::srtp::sdes::CryptoAttribute;
use voxgate_engine::srtp::SrtpSuite;
use voxgate_engine::worker::media::{CodecKind, SessionConfig};
use voxgate_engine::worker::{Command, Engine, EngineConfig, EngineError, Event};

/// Name of the thread whose CPU time is reported.
const THREAD: &str = "voxgate-media-0";

#[derive(Parser, Debug)]
#[command(about = "Media-engine throughput in echo mode (last line: JSON)")]
struct Args {
    /// Concurrent echo sessions.
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// I/O backend: uring or mmsg.
    #[arg(long, default_value = "uring")]
    backend: String,
    /// Codec: pcmu, pcma, or opus (each echo session then decodes Opus to 8 kHz PCM and
    /// encodes it back: the Opus work of one Opus<->G.711 transcoded call).
    #[arg(long, default_value = "pcmu")]
    codec: String,
    /// Opus encoder complexity (0-10) of the sessions with --codec opus.
    #[arg(long, default_value_t = voxgate_engine::codec::opus::DEFAULT_COMPLEXITY)]
    opus_complexity: u8,
    /// SRTP (AES_CM_128_HMAC_SHA1_80, SDES keys fresh per session) in both directions:
    /// the generator protects what it sends and unprotects the echoes.
    #[arg(long)]
    srtp: bool,
    /// CPU of the media core.
    #[arg(long, default_value_t = 0)]
    engine_cpu: usize,
    /// The generator.
    #[command(flatten)]
    gen: GeneratorArgs,
    /// First RTP port of the engine's range.
    #[arg(long, default_value_t = 30000)]
    port_base: u16,
}

/// One second (50 packets) of a 440 Hz tone encoded as 8 kHz Opus at the session's
/// default parameters: what a trunk would send.
fn opus_frames() -> anyhow::Result<Vec<Vec<u8>>> {
    use voxgate_engine::codec::{AudioEncoder, OpusEncoder, OpusParams};
    let mut enc = OpusEncoder::new(OpusParams::new(8000))
        .map_err(|e| anyhow::anyhow!("opus encoder: {e}"))?;
    let mut frames = Vec::with_capacity(50);
    for f in 0..50 {
        let pcm: Vec<i16> = (0..160)
            .map(|i| {
                let t = (f * 160 + i) as f32 / 8000.0;
                ((t * 440.0 * std::f32::consts::TAU).sin() * 8000.0) as i16
            })
            .collect();
        let mut out = vec![0u8; 1275];
        let n = enc
            .encode(&pcm, &mut out)
            .map_err(|e| anyhow::anyhow!("opus encode: {e}"))?;
        out.truncate(n);
        frames.push(out);
    }
    Ok(frames)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber_init();
    let backend = voxgate_bench::parse_backend(&args.backend)?;
    let (codec, payload_type) = match args.codec.as_str() {
        "pcmu" => (CodecKind::Pcmu, 0u8),
        "pcma" => (CodecKind::Pcma, 8u8),
        "opus" => (CodecKind::Opus, 111u8),
        other => bail!("--codec {other} is not supported (pcmu, pcma, opus)"),
    };
    // Opus encoder complexity of the sessions.
    let complexity = args.opus_complexity.min(10);
    let span = u16::try_from(args.calls * 2 + 64).context("too many calls for one port range")?;
    // The host, before the engine exists (its open sessions would send silence).
    let host_before = voxgate_bench::probe_host(args.engine_cpu, &args.gen);
    let engine = Engine::start(EngineConfig {
        cores: vec![args.engine_cpu],
        rtp_port_range: args.port_base..=args.port_base.saturating_add(span),
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        backend,
        queue_capacity: 65536,
        socket_buffer_bytes: 256 * 1024,
    })
    .context("starting the engine")?;
    let mut generator = LoadGenerator::bind().context("binding the generator socket")?;
    if codec == CodecKind::Opus {
        generator.set_payloads(opus_frames()?, 960);
    }
    let remote = generator.local_addr()?;
    let mut ids = Vec::with_capacity(args.calls);
    for i in 0..args.calls {
        // SDES keys as a call would have them: the engine's (local) and the peer's.
        let keys = if args.srtp {
            let ours = CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_80)?;
            let peers = CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_80)?;
            Some((ours, peers))
        } else {
            None
        };
        let handle = engine
            .open_session(SessionConfig {
                local_ssrc: 0x5000_0000 + i as u32,
                codec,
                payload_type,
                telephone_event_pt: Some(101),
                ptime_ms: 20,
                remote_rtp: Some(remote),
                remote_rtcp: None,
                rtcp_mux: true,
                pcm_rate: 8000,
                echo: true,
                no_rtp_timeout: Duration::from_secs(30),
                srtp: keys.as_ref().map(|(ours, peers)| SrtpKeys {
                    local: ours.to_sdp_value(),
                    remote: peers.to_sdp_value(),
                }),
                opus: voxgate_engine::codec::OpusParams {
                    complexity,
                    ..voxgate_engine::codec::OpusParams::new(8000)
                },
            })
            .with_context(|| format!("opening session {i}"))?;
        match &keys {
            Some((ours, peers)) => {
                generator.add_srtp_target(handle.local_rtp, peers.context()?, ours.context()?)
            }
            None => generator.add_target(handle.local_rtp),
        }
        ids.push(handle.id);
    }
    eprintln!(
        "voxgate-load: engine on CPU {} with {} ({} sessions)",
        args.engine_cpu,
        engine.backend().name(),
        args.calls
    );
    let backend_name = engine.backend().name();
    let mut events = 0u64;
    let health_before = engine.core_stats();
    let mut driven = voxgate_bench::drive_thread(
        &mut generator,
        &args.gen,
        args.engine_cpu,
        args.seconds,
        THREAD,
        &mut || {
            while engine.poll_event().is_some() {
                events += 1;
            }
        },
    )
    .context("load generator")?;
    voxgate_bench::print_latency_summary(&mut driven.outcome);
    let health: Vec<_> = engine
        .core_stats()
        .iter()
        .zip(&health_before)
        .map(|(after, before)| after.since(before))
        .collect();
    for h in &health {
        let q = |p| h.service_lateness_quantile_us(p).unwrap_or(0);
        eprintln!(
            "voxgate-load: core {} served session timers late by p50 ≤{} us p99 ≤{} us p99.9 ≤{} us (largest since start {} us; {} services, mean {} us); CPU {:.1} s",
            h.core,
            q(0.5),
            q(0.99),
            q(0.999),
            h.service_lateness_max_us,
            h.services(),
            h.service_lateness_sum_us / h.services().max(1),
            h.cpu_ns as f64 / 1e9
        );
    }
    // Close every session and sum what their jitter buffers saw.
    for id in &ids {
        let mut cmd = Command::Close { id: *id };
        for _ in 0..1000 {
            match engine.command(cmd) {
                Err(EngineError::QueueFull {
                    command: Some(c), ..
                }) => {
                    cmd = *c;
                    while engine.poll_event().is_some() {}
                }
                _ => break,
            }
        }
    }
    let mut closed = 0usize;
    let (mut jb_ms, mut jitter_us, mut lost, mut late, mut concealed, mut discarded) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while closed < ids.len() && std::time::Instant::now() < deadline {
        match engine.poll_event() {
            Some(Event::Closed { stats, .. }) => {
                closed += 1;
                jb_ms += u64::from(stats.jitter_buffer_ms);
                jitter_us += u64::from(stats.jitter_us);
                lost += stats.lost;
                late += stats.late;
                concealed += stats.concealed;
                discarded += stats.discarded;
            }
            Some(_) => {}
            None => {
                engine.wait_events(Some(Duration::from_millis(10)));
            }
        }
    }
    let n = closed.max(1) as u64;
    eprintln!(
        "voxgate-load: {closed} sessions closed; mean jitter-buffer target {} ms, mean interarrival jitter {} us; lost {lost} late {late} concealed {concealed} discarded {discarded}",
        jb_ms / n,
        jitter_us / n
    );
    let q = engine.queue_counters();
    eprintln!(
        "voxgate-load: sent {} received {} matched {} events {} queue: commands_rejected {} events_dropped {}",
        driven.outcome.sent,
        driven.outcome.received,
        driven.outcome.matched,
        events,
        q.commands_rejected,
        q.events_dropped
    );
    let srtp_failed = driven.outcome.srtp_failed;
    for c in engine.core_stats() {
        eprintln!(
            "voxgate-load: core {} SRTP: auth_failed {} replayed {} protect_failed {}; generator: unprotect failed {srtp_failed}",
            c.core, c.srtp_auth_failed, c.srtp_replayed, c.srtp_protect_failed
        );
    }
    let late_p99 = health
        .iter()
        .filter_map(|h| h.service_lateness_quantile_us(0.99))
        .max();
    engine.shutdown();
    let mut report = voxgate_bench::report_after(
        backend_name,
        args.calls,
        driven,
        args.engine_cpu,
        &args.gen,
        host_before,
    );
    report.srtp = args.srtp;
    report.engine_service_late_p99_us = late_p99;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Engine log lines (e.g. the io_uring fallback warning) to stderr; RUST_LOG overrides.
fn tracing_subscriber_init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
