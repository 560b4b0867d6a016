//! `voxgate-load-floor`: the `voxgate-load` workload against the media core's I/O floor
//! (`voxgate_engine::worker::floor::echo_floor`): one socket per session on a pinned
//! thread, each datagram echoed back at once through the core's own backend, with no
//! session behind it. The same generator and the same report as `voxgate-load`, so the
//! two in one run split a packet pair's cost into the floor any socket-per-session
//! design pays on this host and what voxgate's sessions add. Last output line: JSON.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Parser;
use voxgate_bench::{GeneratorArgs, LoadGenerator};
use voxgate_engine::worker::floor::echo_floor;

/// Name of the thread whose CPU time is reported.
const THREAD: &str = "vg-floor";

#[derive(Parser, Debug)]
#[command(about = "The voxgate-load workload against the media core's I/O floor (last line: JSON)")]
struct Args {
    /// Concurrent echo sockets (sessions).
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// The media core's backend: uring, mmsg or auto.
    #[arg(long, default_value = "uring")]
    backend: String,
    /// CPU of the echo thread.
    #[arg(long, default_value_t = 0)]
    engine_cpu: usize,
    /// The generator.
    #[command(flatten)]
    gen: GeneratorArgs,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = voxgate_bench::parse_backend(&args.backend)?;
    let mut generator = LoadGenerator::bind().context("binding the generator socket")?;
    let sockets = generator
        .add_loopback_sockets(args.calls)
        .context("binding the session sockets")?;
    let engine_cpu = args.engine_cpu;
    // The host, before the echo thread and its sockets are in use.
    let host_before = voxgate_bench::probe_host(engine_cpu, &args.gen);
    let stop = Arc::new(AtomicBool::new(false));
    let echo = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name(THREAD.into())
            .spawn(move || {
                if !core_affinity::set_for_current(core_affinity::CoreId { id: engine_cpu }) {
                    eprintln!("could not pin the floor thread to CPU {engine_cpu}");
                }
                echo_floor(&sockets, backend, &stop)
            })?
    };
    let driven = voxgate_bench::drive_thread(
        &mut generator,
        &args.gen,
        engine_cpu,
        args.seconds,
        THREAD,
        &mut || {},
    );
    stop.store(true, Ordering::Release);
    let counters = match echo.join() {
        Ok(r) => r.context("the floor's echo thread")?,
        Err(_) => bail!("the floor's echo thread panicked"),
    };
    let driven = driven.context("load generator")?;
    let o = &driven.outcome;
    eprintln!(
        "voxgate-load-floor: sent {} received {} matched {}; floor received {} echoed {} send errors {}",
        o.sent, o.received, o.matched, counters.received, counters.echoed, counters.send_errors
    );
    let name = format!("floor-{}", args.backend);
    let report = voxgate_bench::report_after(
        &name,
        args.calls,
        driven,
        engine_cpu,
        &args.gen,
        host_before,
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
