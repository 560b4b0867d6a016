//! `voxgate-load-tokio-uring`: the `voxgate-load` echo workload with the same sans-IO
//! `MediaSession`s driven by tokio-uring 0.5 instead of the engine's workers (bench-only
//! comparison for the backend decision in docs/DECISIONS.md).
//!
//! One pinned thread runs a tokio-uring runtime; each session has its own socket, a
//! task looping on `recv_from` (one single-shot recvmsg per datagram: tokio-uring has
//! no multishot receive or buffer rings) and a task sleeping until the session's next
//! deadline. Sends are `send_to` per packet. Last output line: the same JSON report.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use voxgate_bench::{GeneratorArgs, LoadGenerator};
use voxgate_engine::worker::media::{CodecKind, MediaSession, SessionConfig};

/// Name of the thread whose CPU time is reported.
const THREAD: &str = "vg-tokio-uring";

#[derive(Parser, Debug)]
#[command(about = "The voxgate-load echo workload over tokio-uring (last line: JSON)")]
struct Args {
    /// Concurrent echo sessions.
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// CPU of the tokio-uring thread.
    #[arg(long, default_value_t = 0)]
    engine_cpu: usize,
    /// The generator.
    #[command(flatten)]
    gen: GeneratorArgs,
}

fn session_config(i: usize, remote: SocketAddr) -> SessionConfig {
    SessionConfig {
        local_ssrc: 0x5000_0000 + i as u32,
        codec: CodecKind::Pcmu,
        payload_type: 0,
        telephone_event_pt: Some(101),
        ptime_ms: 20,
        remote_rtp: Some(remote),
        remote_rtcp: None,
        rtcp_mux: true,
        pcm_rate: 8000,
        echo: true,
        no_rtp_timeout: Duration::from_secs(30),
        srtp: None,
        opus: voxgate_engine::codec::OpusParams::new(8000),
    }
}

async fn flush(
    sock: &tokio_uring::net::UdpSocket,
    session: &RefCell<MediaSession>,
    spare: &RefCell<Option<Vec<u8>>>,
) {
    for _ in 0..64 {
        let mut buf = spare.borrow_mut().take().unwrap_or_else(|| vec![0u8; 1500]);
        buf.resize(1500, 0);
        let t = session.borrow_mut().poll_transmit(Instant::now(), &mut buf);
        let Some(t) = t else {
            *spare.borrow_mut() = Some(buf);
            break;
        };
        buf.truncate(t.len);
        let (_res, buf) = sock.send_to(buf, t.dest).await;
        *spare.borrow_mut() = Some(buf);
    }
    while session.borrow_mut().poll_event().is_some() {}
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut generator = LoadGenerator::bind().context("binding the generator socket")?;
    let remote = generator.local_addr()?;
    let sockets = generator
        .add_loopback_sockets(args.calls)
        .context("binding the session sockets")?;
    let calls = args.calls;
    let run_for = Duration::from_secs_f64(args.seconds) + Duration::from_millis(1500);
    let engine_cpu = args.engine_cpu;
    // The host, before the runtime and its sessions exist.
    let host_before = voxgate_bench::probe_host(engine_cpu, &args.gen);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let runtime = std::thread::Builder::new()
        .name(THREAD.into())
        .spawn(move || {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: engine_cpu }) {
                eprintln!("could not pin the tokio-uring thread to CPU {engine_cpu}");
            }
            tokio_uring::start(async move {
                for (i, std_sock) in sockets.into_iter().enumerate() {
                    let sock = Rc::new(tokio_uring::net::UdpSocket::from_std(std_sock));
                    let session = match MediaSession::new(session_config(i, remote), Instant::now())
                    {
                        Ok(s) => Rc::new(RefCell::new(s)),
                        Err(e) => {
                            eprintln!("session {i}: {e}");
                            return;
                        }
                    };
                    let spare_rx = Rc::new(RefCell::new(None));
                    let spare_tm = Rc::new(RefCell::new(None));
                    {
                        let (sock, session) = (Rc::clone(&sock), Rc::clone(&session));
                        tokio_uring::spawn(async move {
                            let mut buf = vec![0u8; 2048];
                            loop {
                                buf.resize(2048, 0);
                                let (res, b) = sock.recv_from(buf).await;
                                buf = b;
                                if let Ok((n, from)) = res {
                                    session.borrow_mut().handle_rtp(
                                        Instant::now(),
                                        from,
                                        &mut buf[..n],
                                    );
                                    flush(&sock, &session, &spare_rx).await;
                                }
                            }
                        });
                    }
                    tokio_uring::spawn(async move {
                        loop {
                            let at = session.borrow().poll_timeout();
                            tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                            session.borrow_mut().handle_timeout(Instant::now());
                            flush(&sock, &session, &spare_tm).await;
                        }
                    });
                }
                let _ = ready_tx.send(());
                tokio::time::sleep(run_for).await;
            });
        })?;
    if ready_rx.recv().is_err() {
        bail!("tokio-uring runtime failed to start");
    }
    let driven = voxgate_bench::drive_thread(
        &mut generator,
        &args.gen,
        engine_cpu,
        args.seconds,
        THREAD,
        &mut || {},
    )
    .context("load generator")?;
    let o = &driven.outcome;
    eprintln!(
        "voxgate-load-tokio-uring: sent {} received {} matched {}",
        o.sent, o.received, o.matched
    );
    let _ = runtime.join();
    let report = voxgate_bench::report_after(
        "tokio-uring",
        calls,
        driven,
        engine_cpu,
        &args.gen,
        host_before,
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
