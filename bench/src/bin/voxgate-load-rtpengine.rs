//! `voxgate-load-rtpengine`: the `voxgate-load` workload through rtpengine, for a
//! comparison on the same machine in the same run (see bench/rtpengine-compare.sh).
//!
//! rtpengine relays; voxgate's engine echoes. One echo session is 50 packets/s each way,
//! one relayed call 100 (both legs), so `--calls N` (streams, even) sets up N/2 calls
//! through rtpengine's ng interface, both legs on the generator's socket, and sends 50
//! packets/s on each stream: the packet rate of N echo sessions. With `--srtp` the
//! caller's leg is SDES-SRTP (AES_CM_128_HMAC_SHA1_80) and the callee's plain RTP, so
//! rtpengine, like an SRTP echo session, protects or unprotects every packet once.
//! The CPU measured is `--relay-cpu` (where the script pins rtpengine) and the rtpengine
//! process (`--pid`). The last output line is the same JSON as `voxgate-load`'s, with
//! "backend": "rtpengine".

use std::net::SocketAddr;

use anyhow::{bail, Context};
use clap::Parser;
use voxgate_bench::ng::NgClient;
use voxgate_bench::{GeneratorArgs, LoadGenerator};
use voxgate_engine::srtp::sdes::CryptoAttribute;
use voxgate_engine::srtp::SrtpSuite;

#[derive(Parser, Debug)]
#[command(about = "voxgate-load's workload relayed by rtpengine (last line: JSON)")]
struct Args {
    /// Streams of 50 packets/s (an even number; calls through rtpengine = half).
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// rtpengine's ng control address (its --listen-ng).
    #[arg(long, default_value = "127.0.0.1:22222")]
    ng: SocketAddr,
    /// PID of rtpengine, whose CPU time is reported.
    #[arg(long)]
    pid: u32,
    /// SDES-SRTP on the caller's leg of every call.
    #[arg(long)]
    srtp: bool,
    /// CPU rtpengine is pinned to (its busy % is reported).
    #[arg(long, default_value_t = 0)]
    relay_cpu: usize,
    /// The generator.
    #[command(flatten)]
    gen: GeneratorArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.calls % 2 != 0 {
        bail!("--calls counts streams, two per relayed call: give an even number");
    }
    // The host, before rtpengine has this run's calls.
    let host_before = voxgate_bench::probe_host(args.relay_cpu, &args.gen);
    let mut generator = LoadGenerator::bind().context("binding the generator socket")?;
    let leg = generator.local_addr()?;
    let mut ng = NgClient::connect(args.ng).context("ng control socket")?;
    let relay_ip = args.ng.ip();
    let run_id = std::process::id();
    let mut call_ids = Vec::with_capacity(args.calls / 2);
    for c in 0..args.calls / 2 {
        let call_id = format!("vg-load-{run_id}-{c}");
        let caller_key = if args.srtp {
            Some(CryptoAttribute::generate(
                1,
                SrtpSuite::AesCm128HmacSha1_80,
            )?)
        } else {
            None
        };
        let offered = caller_key.as_ref().map(CryptoAttribute::to_sdp_value);
        let call = ng
            .relay_call(&call_id, leg, offered.as_deref())
            .with_context(|| format!("setting up call {c} through rtpengine at {}", args.ng))?;
        call_ids.push(call_id);
        let relay_key = match &call.relay_crypto {
            Some(v) => Some(
                CryptoAttribute::parse(v)
                    .map_err(|e| anyhow::anyhow!("rtpengine's a=crypto {v:?}: {e:?}"))?,
            ),
            None => None,
        };
        // Caller -> callee: protected with the caller's key, arrives plain.
        generator.add_relayed_target(
            SocketAddr::new(relay_ip, call.caller_side),
            call.callee_side,
            caller_key
                .as_ref()
                .map(CryptoAttribute::context)
                .transpose()?,
            None,
        );
        // Callee -> caller: sent plain, arrives protected with rtpengine's key.
        generator.add_relayed_target(
            SocketAddr::new(relay_ip, call.callee_side),
            call.caller_side,
            None,
            relay_key
                .as_ref()
                .map(CryptoAttribute::context)
                .transpose()?,
        );
    }
    eprintln!(
        "voxgate-load: {} calls ({} streams) through rtpengine (pid {}) on CPU {}",
        call_ids.len(),
        args.calls,
        args.pid,
        args.relay_cpu
    );
    let pid = args.pid;
    let driven = voxgate_bench::drive(
        &mut generator,
        &args.gen,
        args.relay_cpu,
        args.seconds,
        &|| voxgate_bench::process_cpu_ticks(pid),
        &mut || {},
    )?;
    let mut driven = driven;
    voxgate_bench::print_latency_summary(&mut driven.outcome);
    let mut deleted = 0;
    for id in &call_ids {
        match ng.delete(id) {
            Ok(()) => deleted += 1,
            Err(e) => eprintln!("voxgate-load: deleting {id}: {e}"),
        }
    }
    let o = &driven.outcome;
    eprintln!(
        "voxgate-load: sent {} received {} matched {}; {deleted} of {} calls deleted; generator: unprotect failed {}",
        o.sent,
        o.received,
        o.matched,
        call_ids.len(),
        o.srtp_failed
    );
    let mut report = voxgate_bench::report_after(
        "rtpengine",
        args.calls,
        driven,
        args.relay_cpu,
        &args.gen,
        host_before,
    );
    report.srtp = args.srtp;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
