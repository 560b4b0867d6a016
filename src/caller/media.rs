//! The caller's media: the engine's sans-IO [`MediaSession`] driven by one tokio task on
//! a UDP socket. (The gateway's own media runs on the pinned media cores; the caller is
//! a test tool and one call's worth of packets.)

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use voxgate_engine::session::{MediaSession, SessionConfig, SessionEvent};
use voxgate_engine::srtp::SrtpSession;

/// A command to the caller's media task.
#[derive(Debug)]
pub enum MediaCommand {
    /// Queue PCM (8 kHz) for sending.
    Play(Vec<i16>),
    /// Send an RFC 4733 key.
    Dtmf(char, Duration),
    /// Stop sending queued audio.
    Stop,
    /// End the task.
    Close,
}

/// What the media task reports.
#[derive(Debug, Clone)]
pub enum MediaReport {
    /// Decoded audio heard from the gateway.
    Heard(Vec<i16>),
    /// The gateway started talking (energy detector).
    SpeechStart,
    /// The gateway stopped talking.
    SpeechEnd,
    /// Everything queued has been sent.
    PlaybackIdle,
    /// The gateway sent a DTMF key (RFC 4733).
    Dtmf(char),
    /// Packets (in, out) at the end.
    Stats(voxgate_engine::session::SessionStats),
}

/// Handle to a running caller media task.
#[derive(Debug)]
pub struct CallerMedia {
    /// Commands in.
    pub commands: mpsc::UnboundedSender<MediaCommand>,
    /// Reports out.
    pub reports: mpsc::UnboundedReceiver<MediaReport>,
    /// Local RTP address.
    pub local: SocketAddr,
}

impl CallerMedia {
    /// Binds the RTP socket; call [`CallerMedia::start`] once the answer is known.
    pub async fn bind(ip: std::net::IpAddr) -> std::io::Result<UdpSocket> {
        UdpSocket::bind(SocketAddr::new(ip, 0)).await
    }

    /// Starts the media task on `sock` with the negotiated session configuration.
    pub fn start(
        sock: UdpSocket,
        cfg: SessionConfig,
        srtp: Option<SrtpSession>,
    ) -> Result<CallerMedia, String> {
        let local = sock.local_addr().map_err(|e| e.to_string())?;
        let now = Instant::now().into_std();
        let session = MediaSession::new(cfg, now).map_err(|e| e.to_string())?;
        let (ctx, crx) = mpsc::unbounded_channel();
        let (rtx, rrx) = mpsc::unbounded_channel();
        tokio::spawn(run(sock, session, srtp, crx, rtx));
        Ok(CallerMedia {
            commands: ctx,
            reports: rrx,
            local,
        })
    }
}

async fn run(
    sock: UdpSocket,
    mut session: MediaSession,
    mut srtp: Option<SrtpSession>,
    mut commands: mpsc::UnboundedReceiver<MediaCommand>,
    reports: mpsc::UnboundedSender<MediaReport>,
) {
    let mut rbuf = vec![0u8; 2048];
    let mut tbuf = vec![0u8; 2048];
    let mut pending: Vec<i16> = Vec::new();
    loop {
        let now = Instant::now().into_std();
        // Feed queued PCM as the session has room (its playout queue is bounded).
        if !pending.is_empty() {
            let n = session.play(&pending);
            pending.drain(..n);
        }
        while let Some(t) = session.poll_transmit(now, &mut tbuf) {
            let mut len = t.len;
            if let Some(s) = srtp.as_mut() {
                let res = match t.kind {
                    voxgate_engine::session::PacketKind::Rtp => {
                        s.outbound.protect_rtp(&mut tbuf, len)
                    }
                    voxgate_engine::session::PacketKind::Rtcp => {
                        s.outbound.protect_rtcp(&mut tbuf, len)
                    }
                };
                match res {
                    Ok(n) => len = n,
                    Err(_) => continue,
                }
            }
            let _ = sock.send_to(&tbuf[..len], t.dest).await;
        }
        while let Some(ev) = session.poll_event() {
            let report = match ev {
                SessionEvent::Audio(f) => MediaReport::Heard(f.pcm().to_vec()),
                SessionEvent::SpeechStart => MediaReport::SpeechStart,
                SessionEvent::SpeechEnd => MediaReport::SpeechEnd,
                SessionEvent::PlaybackIdle if pending.is_empty() => MediaReport::PlaybackIdle,
                SessionEvent::Dtmf { digit, .. } => MediaReport::Dtmf(digit),
                _ => continue,
            };
            if reports.send(report).is_err() {
                return;
            }
        }
        let wake = Instant::from_std(session.poll_timeout());
        tokio::select! {
            r = sock.recv_from(&mut rbuf) => {
                let Ok((n, from)) = r else { continue };
                let now = Instant::now().into_std();
                let packet = &mut rbuf[..n];
                // RFC 5761: RTCP packet types 200–204 share the port with RTP (rtcp-mux).
                let is_rtcp = n >= 2 && (200..=204).contains(&packet[1]);
                let len = match srtp.as_mut() {
                    Some(s) => {
                        let r = if is_rtcp { s.inbound.unprotect_rtcp(packet) } else { s.inbound.unprotect_rtp(packet) };
                        match r { Ok(len) => len, Err(_) => continue }
                    }
                    None => n,
                };
                if is_rtcp {
                    session.handle_rtcp(now, from, &mut rbuf[..len]);
                } else {
                    session.handle_rtp(now, from, &mut rbuf[..len]);
                }
            }
            c = commands.recv() => match c {
                Some(MediaCommand::Play(pcm)) => pending.extend_from_slice(&pcm),
                Some(MediaCommand::Dtmf(d, dur)) => { let _ = session.send_dtmf(d, dur); }
                Some(MediaCommand::Stop) => { pending.clear(); session.stop_playback(); }
                Some(MediaCommand::Close) | None => {
                    let _ = reports.send(MediaReport::Stats(session.stats()));
                    return;
                }
            },
            _ = tokio::time::sleep_until(wake) => {
                session.handle_timeout(Instant::now().into_std());
            }
        }
    }
}
