//! The media session: one call leg's RTP/RTCP stream, sans-IO.
//!
//! The worker feeds it datagrams ([`MediaSession::handle_rtp`], [`MediaSession::handle_rtcp`])
//! and time ([`MediaSession::handle_timeout`] at [`MediaSession::poll_timeout`]), and drains
//! datagrams ([`MediaSession::poll_transmit`]) and events ([`MediaSession::poll_event`]).
//! The session never reads a clock or touches a socket; every buffer is allocated in
//! [`MediaSession::new`] (decoded audio passes through a buffer on the stack).
//!
//! Receive path: address validation (symmetric RTP latching) → sequence validation and
//! A.8 jitter ([`ReceiveStats`]) → telephone-events to the [`DtmfReceiver`], audio into the
//! [`JitterBuffer`] → one playout step per packet time: decode or conceal → resample to
//! `pcm_rate` → speech detector → [`SessionEvent::Audio`] (or, in echo mode, the play
//! queue). Send path: every `ptime` one RTP packet, carrying queued PCM (resampled,
//! encoded), a telephone-event, or codec silence, so the stream is continuous; the marker
//! bit starts each talkspurt. RTCP SR/RR + SDES every ~5 s.
//!
//! ```no_run
//! # use std::time::Instant;
//! # use voxgate_engine::session::*;
//! # use voxgate_engine::codec::CodecKind;
//! # fn recv() -> Option<(std::net::SocketAddr, Vec<u8>)> { None }
//! # fn send(_: &[u8], _: std::net::SocketAddr) {}
//! let cfg = SessionConfig::new(0x1234_5678, CodecKind::Pcmu, 0);
//! let mut session = MediaSession::new(cfg, Instant::now()).unwrap();
//! let mut buf = [0u8; 1500];
//! loop {
//!     let now = Instant::now();
//!     if let Some((from, mut pkt)) = recv() {
//!         session.handle_rtp(now, from, &mut pkt);
//!     }
//!     session.handle_timeout(now);
//!     while let Some(t) = session.poll_transmit(now, &mut buf) {
//!         send(&buf[..t.len], t.dest);
//!     }
//!     while let Some(ev) = session.poll_event() {
//!         let _ = ev; // to the control thread
//!     }
//!     // sleep until session.poll_timeout() or a datagram arrives
//! }
//! ```

mod rtcp_report;
mod types;

pub use types::{
    PacketKind, PcmFrame, SessionConfig, SessionError, SessionEvent, SessionStats, SrtpKeys,
    Transmit, PCM_FRAME_SAMPLES,
};

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::codec::{AudioDecoder, AudioEncoder, Decoder, Encoder, Resampler};
use crate::dtmf::{DtmfReceiver, DtmfSender};
use crate::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::rtp::{is_rtcp, ReceiveStats, RtpHeader, RtpPacket, SeqOutcome, RTP_HEADER_LEN};
use crate::vad::{SpeechDetector, SpeechDetectorConfig, SpeechEvent};
use rtcp_report::RtcpState;

/// Bytes [`MediaSession::poll_transmit`] leaves free after a packet (an SRTP auth tag).
pub const TAIL_ROOM: usize = 48;
/// Length of the play queue, in ms of PCM.
pub const PLAY_QUEUE_MS: u32 = 1000;
/// Events held before the oldest is dropped (and counted).
pub const EVENT_QUEUE_LEN: usize = 16;
/// A latched remote address is replaced by a new source only after this long silent.
pub const RELATCH_AFTER: Duration = Duration::from_secs(2);
/// A telephone-event never ended is reported after this long without event packets.
pub const DTMF_FLUSH_AFTER: Duration = Duration::from_millis(500);
/// Largest decoder output per packet: 120 ms at 16 kHz (G.711 decodes at 8 kHz, Opus at
/// `pcm_rate`, at most 16 kHz).
const DEC_MAX_SAMPLES: usize = 16000 * 120 / 1000;
/// Longest gap the send clock catches up on before it skips ahead.
const MAX_CATCH_UP_PACKETS: u32 = 5;

/// One call leg's media stream; see the module docs.
#[derive(Debug)]
pub struct MediaSession {
    cfg: SessionConfig,
    /// Boxed: its keys and cipher states are ~3 KB, which inline would spread the hot
    /// fields of every session (plain RTP too) over twice the cache lines.
    srtp: Option<Box<crate::srtp::SrtpSession>>,
    epoch: Instant,
    encoder: Encoder,
    decoder: Decoder,
    /// pcm_rate → encoder rate, when they differ.
    down: Option<Resampler>,
    /// decoder rate → pcm_rate, when they differ.
    up: Option<Resampler>,
    jitter: JitterBuffer,
    dtmf_rx: DtmfReceiver,
    /// Arrival of the last telephone-event packet, while its event may be unreported.
    last_event_at: Option<Instant>,
    dtmf_tx: DtmfSender,
    vad: SpeechDetector,
    // Remote.
    remote: Option<SocketAddr>,
    latched: bool,
    last_rtp_at: Option<Instant>,
    remote_ssrc: Option<u32>,
    rx: Option<ReceiveStats>,
    timeout_fired: bool,
    // Playout.
    next_playout: Option<Instant>,
    // Send.
    play: VecDeque<i16>,
    play_cap: usize,
    /// The previous RTP packet carried queued audio.
    was_playing: bool,
    /// The next audio packet starts a talkspurt (after a telephone-event).
    talkspurt_start: bool,
    /// The send clock is on the playout clock's ticks (see `align_send_to_playout`).
    send_aligned: bool,
    seq: u16,
    ts: u32,
    next_send: Instant,
    // Scratch (allocated once).
    pcm_scratch: Vec<i16>,
    enc_scratch: Vec<i16>,
    /// Samples the decoder may write per packet (120 ms at its rate). Decoded audio goes
    /// to a buffer on the stack, not a per-session one: the stack stays in cache across
    /// sessions, a per-session buffer is a cache miss per line on a loaded core.
    dec_max: usize,
    up_scratch: Vec<i16>,
    events: VecDeque<SessionEvent>,
    rtcp: RtcpState,
    stats: SessionStats,
}

impl MediaSession {
    /// Creates a session from the negotiated parameters; `now` starts its clock.
    pub fn new(cfg: SessionConfig, now: Instant) -> Result<Self, SessionError> {
        if !matches!(cfg.pcm_rate, 8000 | 16000) {
            return Err(SessionError::InvalidConfig(
                "pcm_rate must be 8000 or 16000",
            ));
        }
        if !(10..=120).contains(&cfg.ptime_ms) || cfg.ptime_ms % 10 != 0 {
            return Err(SessionError::InvalidConfig(
                "ptime_ms must be a multiple of 10 in 10..=120",
            ));
        }
        if cfg.payload_type > 127
            || cfg
                .telephone_event_pt
                .is_some_and(|p| p > 127 || p == cfg.payload_type)
        {
            return Err(SessionError::InvalidConfig(
                "payload types must be distinct and in 0..=127",
            ));
        }
        let srtp = match &cfg.srtp {
            Some(keys) => {
                let local = crate::srtp::sdes::CryptoAttribute::parse(&keys.local)
                    .map_err(|_| SessionError::InvalidConfig("our SRTP crypto attribute"))?;
                let remote = crate::srtp::sdes::CryptoAttribute::parse(&keys.remote)
                    .map_err(|_| SessionError::InvalidConfig("the peer's SRTP crypto attribute"))?;
                Some(Box::new(
                    crate::srtp::SrtpSession::from_sdes(&local, &remote)
                        .map_err(|_| SessionError::InvalidConfig("SRTP keys do not match"))?,
                ))
            }
            None => None,
        };
        let opus = crate::codec::OpusParams {
            pcm_rate: cfg.pcm_rate,
            ..cfg.opus
        };
        let encoder = Encoder::with_opus(cfg.codec, opus)?;
        let decoder = Decoder::with_opus(cfg.codec, cfg.pcm_rate)?;
        let ptime = u32::from(cfg.ptime_ms);
        let pcm_n = (cfg.pcm_rate * ptime / 1000) as usize;
        let enc_rate = encoder.pcm_rate();
        let dec_rate = decoder.pcm_rate();
        let enc_n = (enc_rate * ptime / 1000) as usize;
        // The decoder may get packets up to 120 ms whatever our ptime.
        let dec_max = (dec_rate * 120 / 1000) as usize;
        if dec_max > DEC_MAX_SAMPLES {
            return Err(SessionError::InvalidConfig("decoder rate above 16 kHz"));
        }
        let down = if enc_rate != cfg.pcm_rate {
            Some(Resampler::new(cfg.pcm_rate, enc_rate, pcm_n)?)
        } else {
            None
        };
        let up = if dec_rate != cfg.pcm_rate {
            Some(Resampler::new(dec_rate, cfg.pcm_rate, dec_max)?)
        } else {
            None
        };
        let up_n = up.as_ref().map_or(0, |r| r.max_output(dec_max));
        let clock = cfg.codec.rtp_clock_rate();
        let mut jcfg = JitterConfig::new(clock, cfg.ptime_ms);
        jcfg.max_payload = match cfg.codec {
            crate::codec::CodecKind::Pcmu | crate::codec::CodecKind::Pcma => (8 * 60).max(enc_n),
            _ => 1275,
        };
        let play_cap = (cfg.pcm_rate * PLAY_QUEUE_MS / 1000) as usize;
        let ssrc = cfg.local_ssrc;
        let remote = cfg.remote_rtp;
        let samples_per_packet = clock * ptime / 1000;
        Ok(Self {
            srtp,
            epoch: now,
            encoder,
            decoder,
            down,
            up,
            jitter: JitterBuffer::new(jcfg),
            dtmf_rx: DtmfReceiver::new(),
            last_event_at: None,
            dtmf_tx: DtmfSender::new(samples_per_packet),
            vad: SpeechDetector::new(SpeechDetectorConfig::default()),
            remote,
            latched: false,
            last_rtp_at: None,
            remote_ssrc: None,
            rx: None,
            timeout_fired: false,
            next_playout: None,
            play: VecDeque::from(crate::prefault::with_capacity(play_cap)),
            play_cap,
            was_playing: false,
            talkspurt_start: true,
            send_aligned: false,
            // Deterministic but SSRC-dependent starting points (RFC 3550 wants them
            // unpredictable; SRTP protects the stream where that matters).
            seq: ((ssrc >> 16) as u16) ^ 0x5a5a,
            ts: ssrc.rotate_left(13) ^ 0x1357_9bdf,
            next_send: now,
            pcm_scratch: vec![0; pcm_n.max(PCM_FRAME_SAMPLES)],
            enc_scratch: vec![0; enc_n.max(1) + 2],
            dec_max,
            up_scratch: vec![0; up_n],
            events: VecDeque::with_capacity(EVENT_QUEUE_LEN),
            rtcp: RtcpState::new(now, ssrc),
            stats: SessionStats::default(),
            cfg,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    /// The current remote RTP address.
    pub fn remote_rtp(&self) -> Option<SocketAddr> {
        self.remote
    }

    /// The peer moved (a re-INVITE with a new connection address or port, e.g. after
    /// an SBC failover): RTP and RTCP go to `remote_rtp` from now on, and its packets are
    /// accepted at once instead of after the old source has been silent for
    /// [`RELATCH_AFTER`]. `remote_rtcp` as in [`SessionConfig::remote_rtcp`]. With
    /// `inbound`, the peer's new SRTP key (a re-offer with a new `a=crypto`) replaces the
    /// old one for what we receive; it is built by the caller, off the packet path, and
    /// reads a peer that carries its rollover counter across the new key as well as one
    /// that starts afresh ([`crate::srtp::SrtpContext::continue_from`]).
    pub fn retarget(
        &mut self,
        remote_rtp: SocketAddr,
        remote_rtcp: Option<SocketAddr>,
        inbound: Option<crate::srtp::SrtpContext>,
    ) {
        self.cfg.remote_rtcp = remote_rtcp;
        self.rtcp.forget_source();
        self.latched = true;
        if self.remote != Some(remote_rtp) {
            self.remote = Some(remote_rtp);
            self.push_event(SessionEvent::RemoteAddressLearned(remote_rtp));
        }
        if let (Some(s), Some(mut ctx)) = (self.srtp.as_mut(), inbound) {
            ctx.continue_from(&s.inbound);
            s.inbound = ctx;
        }
    }

    fn push_event(&mut self, ev: SessionEvent) {
        if self.events.len() >= EVENT_QUEUE_LEN {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(ev);
    }

    fn samples_per_packet(&self) -> u32 {
        self.cfg.codec.rtp_clock_rate() * u32::from(self.cfg.ptime_ms) / 1000
    }

    fn ptime(&self) -> Duration {
        Duration::from_millis(u64::from(self.cfg.ptime_ms))
    }

    /// PCM samples (at `pcm_rate`) in one packet time: what one send takes from the play
    /// queue.
    fn pcm_frame(&self) -> usize {
        (self.cfg.pcm_rate * u32::from(self.cfg.ptime_ms) / 1000) as usize
    }

    /// Handles a datagram from the RTP port. With rtcp-mux, RTCP arriving here is
    /// recognised (RFC 5761) and handled as RTCP. Bad input is counted, never an error.
    pub fn handle_rtp(&mut self, now: Instant, from: SocketAddr, packet: &mut [u8]) {
        if self.cfg.rtcp_mux && is_rtcp(packet) {
            self.handle_rtcp(now, from, packet);
            return;
        }
        let packet = match self.srtp.as_mut() {
            Some(s) => match s.inbound.unprotect_rtp(packet) {
                Ok(n) => &mut packet[..n],
                Err(e) => {
                    count_srtp_drop(&mut self.stats, &e);
                    return;
                }
            },
            None => packet,
        };
        let Ok(pkt) = RtpPacket::parse(packet) else {
            self.stats.invalid_in += 1;
            return;
        };
        let pt = pkt.payload_type();
        let is_event = Some(pt) == self.cfg.telephone_event_pt;
        if pt != self.cfg.payload_type && !is_event {
            self.stats.invalid_in += 1;
            return;
        }
        // Symmetric RTP: latch onto the first valid source; afterwards only a source
        // silent for RELATCH_AFTER can be replaced.
        if !self.accept_source(now, from) {
            self.stats.foreign_in += 1;
            return;
        }
        let ssrc = pkt.ssrc();
        let seq = pkt.sequence_number();
        if self.remote_ssrc != Some(ssrc) {
            self.remote_ssrc = Some(ssrc);
            self.rx = Some(ReceiveStats::new(seq, 1));
            self.jitter.reset();
            self.dtmf_rx = DtmfReceiver::new();
        }
        let Some(rx) = self.rx.as_mut() else { return };
        let ext = match rx.update_seq(seq) {
            SeqOutcome::Valid { extended } => extended,
            SeqOutcome::Restarted { extended } => {
                // New sequence space: the jitter buffer's numbering no longer applies.
                self.jitter.reset();
                extended
            }
            SeqOutcome::Probation | SeqOutcome::Invalid => {
                self.stats.invalid_in += 1;
                return;
            }
        };
        let clock = u64::from(self.cfg.codec.rtp_clock_rate());
        let arrival = (now.saturating_duration_since(self.epoch).as_micros() as u64 * clock
            / 1_000_000) as u32;
        rx.update_jitter(arrival, pkt.timestamp());
        self.stats.packets_in += 1;
        self.stats.bytes_in += packet.len() as u64;
        self.last_rtp_at = Some(now);
        self.timeout_fired = false;
        let payload = pkt.payload();
        if is_event {
            self.last_event_at = Some(now);
            match self.dtmf_rx.handle(pkt.timestamp(), payload) {
                Ok(Some(d)) => self.push_digit(d),
                Ok(None) => {}
                Err(_) => self.stats.invalid_in += 1,
            }
            // Keep the sequence space whole: the event occupies its slot as silence.
            let _ = self.jitter.insert(now, ext, pkt.timestamp(), false, &[]);
        } else {
            let _ = self
                .jitter
                .insert(now, ext, pkt.timestamp(), pkt.marker(), payload);
        }
        if self.next_playout.is_none() {
            // The playout clock runs an eighth of a packet time (2.5 ms at 20 ms)
            // behind arrivals: a packet on schedule is then there before its tick, so
            // whether the buffer is deep enough to start no longer hinges on which of a
            // packet and a tick due at the same instant the worker serves first (a coin
            // flip that left some sessions one packet time deeper for the whole call).
            // The offset is well over the worker's timer coalescing (0.25 ms) and
            // loopback scheduling noise, and costs 2.5 ms of delay; only real jitter
            // beyond it decides the start depth.
            let first = now + self.ptime() / 8;
            self.next_playout = Some(first);
            self.lock_echo_send(first);
        }
    }

    /// Echo mode: puts the send clock on the playout clock (playout at `playout_at`), so
    /// that a frame is played out and sent back in the same service, in that order
    /// ([`MediaSession::poll_transmit`] plays out what is due first, whichever the driver
    /// calls first). With independent phases a session whose send tick fell just before
    /// its playout tick had its send served sometimes before the playout and sometimes
    /// with it (timers coalesced in one wake-up): a send served first found the play
    /// queue empty and sent silence, and since the FIFO never drains below its depth the
    /// echo delay stayed a packet time longer for the rest of the call. On one tick the
    /// order is fixed, the echo leaves as soon as it is decoded, and the session needs one
    /// service per packet time instead of two. RTP timestamps keep their one-packet
    /// steps: the first interval after the lock is shorter or longer, once.
    fn lock_echo_send(&mut self, playout_at: Instant) {
        if self.cfg.echo {
            self.next_send = playout_at;
            self.send_aligned = true;
        }
    }

    /// Any other session: while nothing plays, moves the send clock onto the playout
    /// clock's ticks (by at most half a packet time, once per idle period), so that a
    /// worker serves both in one visit per packet time instead of two. The timestamp
    /// moves with the clock, so it stays true to the sampling instant (the receiver sees
    /// a steady stream, not jitter), as when a talkspurt starts early.
    fn align_send_to_playout(&mut self) {
        if self.send_aligned || self.cfg.echo {
            return;
        }
        let Some(playout) = self.next_playout else {
            return;
        };
        let period = self.ptime().as_nanos() as i128;
        if period == 0 {
            return;
        }
        let diff = if self.next_send >= playout {
            (self.next_send - playout).as_nanos() as i128
        } else {
            -((playout - self.next_send).as_nanos() as i128)
        };
        // The offset from the nearest playout tick, in (-period/2, period/2].
        let mut offset = diff.rem_euclid(period);
        if offset > period / 2 {
            offset -= period;
        }
        let shift = Duration::from_nanos(offset.unsigned_abs() as u64);
        self.move_send_clock(shift, offset > 0);
        self.send_aligned = true;
    }

    /// Moves the send clock `by` earlier (or later) and the RTP timestamp with it, so
    /// the timestamps stay true to the sampling instants.
    fn move_send_clock(&mut self, by: Duration, earlier: bool) {
        let units =
            (by.as_nanos() * u128::from(self.cfg.codec.rtp_clock_rate()) / 1_000_000_000) as u32;
        if earlier {
            self.next_send -= by;
            self.ts = self.ts.wrapping_sub(units);
        } else {
            self.next_send += by;
            self.ts = self.ts.wrapping_add(units);
        }
    }

    fn push_digit(&mut self, d: crate::dtmf::ReceivedDigit) {
        self.stats.dtmf_in += 1;
        let clock = u64::from(self.cfg.codec.rtp_clock_rate()).max(1);
        let duration = Duration::from_micros(u64::from(d.duration) * 1_000_000 / clock);
        self.push_event(SessionEvent::Dtmf {
            digit: d.digit,
            duration,
        });
    }

    fn accept_source(&mut self, now: Instant, from: SocketAddr) -> bool {
        if self.latched && self.remote == Some(from) {
            return true;
        }
        let silent = self
            .last_rtp_at
            .is_none_or(|t| now.saturating_duration_since(t) >= RELATCH_AFTER);
        if self.latched && !silent {
            return false;
        }
        self.latched = true;
        if self.remote != Some(from) {
            self.remote = Some(from);
            self.push_event(SessionEvent::RemoteAddressLearned(from));
        }
        true
    }

    /// Handles a datagram from the RTCP port (or demultiplexed RTCP with rtcp-mux).
    /// RTCP is accepted only from the IP address of the remote RTP endpoint (once
    /// known), so a third party cannot redirect or poison reports.
    pub fn handle_rtcp(&mut self, now: Instant, from: SocketAddr, packet: &mut [u8]) {
        if self.remote.is_some_and(|r| r.ip() != from.ip()) {
            self.stats.foreign_in += 1;
            return;
        }
        let packet = match self.srtp.as_mut() {
            Some(s) => match s.inbound.unprotect_rtcp(packet) {
                Ok(n) => &mut packet[..n],
                Err(e) => {
                    count_srtp_drop(&mut self.stats, &e);
                    return;
                }
            },
            None => packet,
        };
        if self
            .rtcp
            .handle(now, from, packet, self.cfg.local_ssrc, &mut self.stats)
            .is_err()
        {
            self.stats.invalid_in += 1;
        }
    }

    /// Queues outgoing audio at `pcm_rate`; returns how many samples were accepted (the
    /// queue holds [`PLAY_QUEUE_MS`]).
    pub fn play(&mut self, pcm: &[i16]) -> usize {
        let n = pcm.len().min(self.play_cap - self.play.len());
        self.play.extend(&pcm[..n]);
        n
    }

    /// Samples waiting in the play queue.
    pub fn queued_samples(&self) -> usize {
        self.play.len()
    }

    /// Drops queued audio (barge-in); the next packet carries silence.
    pub fn stop_playback(&mut self) {
        let had = !self.play.is_empty() || self.was_playing;
        self.play.clear();
        if had {
            self.was_playing = false;
            self.push_event(SessionEvent::PlaybackIdle);
        }
    }

    /// Starts sending a DTMF digit as RFC 4733 telephone-events; audio pauses meanwhile.
    pub fn send_dtmf(&mut self, digit: char, duration: Duration) -> Result<(), SessionError> {
        if self.cfg.telephone_event_pt.is_none() {
            return Err(SessionError::NoTelephoneEvent);
        }
        let units =
            duration.as_micros() as u64 * u64::from(self.cfg.codec.rtp_clock_rate()) / 1_000_000;
        self.dtmf_tx
            .start(digit, units.min(u64::from(u32::MAX)) as u32, self.ts)?;
        Ok(())
    }

    /// The next datagram to send, written into `buf` (which must leave [`TAIL_ROOM`]
    /// bytes after it); call until it returns `None`.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if self.cfg.echo && self.next_playout.is_some_and(|t| t <= now) {
            // An echo's send shares its playout's tick: play out first, whichever the
            // driver called first.
            self.handle_timeout(now);
        }
        loop {
            let t = self.poll_transmit_plain(now, buf)?;
            match self.protect(buf, t) {
                Some(t) => return Some(t),
                // Not sendable (key lifetime exhausted): counted; try the next packet.
                None => continue,
            }
        }
    }

    /// SRTP-protects a packet written by the session, in place (no-op without SRTP).
    fn protect(&mut self, buf: &mut [u8], t: Transmit) -> Option<Transmit> {
        let Some(s) = self.srtp.as_mut() else {
            return Some(t);
        };
        let r = match t.kind {
            PacketKind::Rtp => s.outbound.protect_rtp(buf, t.len),
            PacketKind::Rtcp => s.outbound.protect_rtcp(buf, t.len),
        };
        match r {
            Ok(len) => Some(Transmit { len, ..t }),
            Err(_) => {
                self.stats.srtp_protect_failed += 1;
                None
            }
        }
    }

    fn poll_transmit_plain(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(t) = self.poll_rtcp(now, buf) {
            return Some(t);
        }
        if self.next_send > now && self.talkspurt_can_start_now() {
            // Audio queued on an idle stream goes out now rather than at the next packet
            // slot (up to a packet time later). The timestamp moves back with the clock,
            // so it stays true to the sampling instant (the receiver sees no jitter), and
            // the marker bit tells the receiver a talkspurt begins.
            self.move_send_clock(self.next_send - now, true);
            // Off the playout ticks until the talkspurt ends.
            self.send_aligned = false;
        }
        if self.next_send > now {
            return None;
        }
        // Behind by more than a few packets (the worker stalled): skip ahead, keeping
        // the timestamps true to the elapsed time.
        let ptime = self.ptime();
        let behind = now.saturating_duration_since(self.next_send);
        let behind_packets = (behind.as_micros() / ptime.as_micros().max(1)) as u32;
        if behind_packets > MAX_CATCH_UP_PACKETS {
            let skip = behind_packets - 1;
            self.next_send += ptime * skip;
            self.ts = self.ts.wrapping_add(self.samples_per_packet() * skip);
        }
        let Some(dest) = self.remote else {
            // Nowhere to send yet: keep the clock running (at most MAX_CATCH_UP_PACKETS
            // + 1 steps after the skip above).
            while self.next_send <= now {
                self.next_send += ptime;
                self.ts = self.ts.wrapping_add(self.samples_per_packet());
            }
            return None;
        };
        let res = self.build_rtp(buf);
        self.next_send += ptime;
        self.ts = self.ts.wrapping_add(self.samples_per_packet());
        // Only between two packets without audio: moving the clock after the last packet
        // of a talkspurt would put a gap (or an overlap) in the timestamps right there,
        // and audio that streams in just after each send would not be seamless.
        if self.play.is_empty() && !self.was_playing && !self.dtmf_tx.is_active() {
            self.align_send_to_playout();
        }
        let len = res?;
        self.seq = self.seq.wrapping_add(1);
        self.stats.packets_out += 1;
        self.stats.bytes_out += len as u64;
        self.rtcp.on_sent(len - RTP_HEADER_LEN);
        Some(Transmit {
            len,
            dest,
            kind: PacketKind::Rtp,
        })
    }

    /// Whether the next packet may leave before its slot: the first packet of queued
    /// audio after silence, in a stream that is not an echo and not sending DTMF.
    fn talkspurt_can_start_now(&self) -> bool {
        !self.was_playing
            && !self.play.is_empty()
            && !self.cfg.echo
            && !self.dtmf_tx.is_active()
            && self.remote.is_some()
    }

    fn build_rtp(&mut self, buf: &mut [u8]) -> Option<usize> {
        let limit = buf.len().checked_sub(TAIL_ROOM)?;
        if limit <= RTP_HEADER_LEN {
            return None;
        }
        let (hdr_buf, payload_buf) = buf[..limit].split_at_mut(RTP_HEADER_LEN);
        if let (true, Some(pt)) = (self.dtmf_tx.is_active(), self.cfg.telephone_event_pt) {
            let p = self.dtmf_tx.next_packet(payload_buf).ok()??;
            let h = RtpHeader {
                marker: p.marker,
                payload_type: pt,
                sequence_number: self.seq,
                timestamp: p.timestamp,
                ssrc: self.cfg.local_ssrc,
            };
            h.write(hdr_buf).ok()?;
            // The next audio starts a new talkspurt.
            self.talkspurt_start = true;
            return Some(RTP_HEADER_LEN + p.len);
        }
        let pcm_n = self.pcm_frame();
        let queued = self.play.len().min(pcm_n);
        let playing = queued > 0;
        let n = match (&mut self.encoder, &self.down) {
            (Encoder::G711(e), None) => {
                // G.711 codes each sample on its own: encode the queue's (at most two)
                // slices straight into the payload, then silence; no PCM copy.
                let (front, back) = self.play.as_slices();
                let from_front = front.len().min(queued);
                let res = payload_buf.get_mut(..pcm_n).map(|out| {
                    let (head, rest) = out.split_at_mut(from_front);
                    let (mid, tail) = rest.split_at_mut(queued - from_front);
                    let ok = e.encode(&front[..from_front], head).is_ok()
                        && e.encode(&back[..queued - from_front], mid).is_ok();
                    tail.fill(e.silence_code());
                    ok
                });
                self.play.drain(..queued);
                if res != Some(true) {
                    return None;
                }
                pcm_n
            }
            _ => {
                let pcm = &mut self.pcm_scratch[..pcm_n];
                let (front, back) = self.play.as_slices();
                let from_front = front.len().min(queued);
                pcm[..from_front].copy_from_slice(&front[..from_front]);
                pcm[from_front..queued].copy_from_slice(&back[..queued - from_front]);
                self.play.drain(..queued);
                pcm[queued..].fill(0);
                let enc_n = self.enc_scratch.len() - 2;
                let input: &[i16] = match self.down.as_mut() {
                    Some(r) => {
                        let n = r.process(pcm, &mut self.enc_scratch).ok()?;
                        // Integer ratios at these frame sizes give exactly enc_n; be safe
                        // anyway.
                        self.enc_scratch[n.min(enc_n)..enc_n].fill(0);
                        &self.enc_scratch[..enc_n]
                    }
                    None => pcm,
                };
                self.encoder.encode(input, payload_buf).ok()?
            }
        };
        if self.cfg.codec == crate::codec::CodecKind::Opus
            && n <= crate::codec::opus::DTX_MAX_PAYLOAD
        {
            // Opus DTX: nothing worth sending; the timestamp still advances (the caller
            // does that per packet time) and the next packet starts a talkspurt.
            self.talkspurt_start = true;
            self.stats.dtx_suppressed += 1;
            return None;
        }
        // The marker starts a talkspurt: audio after silence (or after a DTMF event).
        let marker = playing && (self.talkspurt_start || !self.was_playing);
        let marker = marker || (self.stats.packets_out == 0);
        let h = RtpHeader {
            marker,
            payload_type: self.cfg.payload_type,
            sequence_number: self.seq,
            timestamp: self.ts,
            ssrc: self.cfg.local_ssrc,
        };
        h.write(hdr_buf).ok()?;
        if playing {
            self.talkspurt_start = false;
        }
        if playing && !self.was_playing && !self.cfg.echo {
            self.push_event(SessionEvent::PlaybackStarted);
        }
        // Playback ends when a packet finds the queue empty after one that carried audio.
        // An echo session's queue is refilled by the caller, so it reports nothing.
        if self.was_playing && !playing && !self.cfg.echo {
            self.push_event(SessionEvent::PlaybackIdle);
        }
        self.was_playing = playing;
        Some(RTP_HEADER_LEN + n)
    }

    fn poll_rtcp(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if now < self.rtcp.next_report() {
            return None;
        }
        let Some(dest) = self.rtcp_dest() else {
            // Nowhere to send: skip this report.
            self.rtcp.skip(now);
            return None;
        };
        let limit = buf.len().checked_sub(TAIL_ROOM)?;
        let rx = self.rx.as_mut().zip(self.remote_ssrc);
        let len = self.rtcp.poll(
            now,
            &mut buf[..limit],
            self.cfg.local_ssrc,
            self.ts,
            self.cfg.codec.rtp_clock_rate(),
            self.next_send,
            rx,
        )?;
        self.stats.rtcp_out += 1;
        Some(Transmit {
            len,
            dest,
            kind: PacketKind::Rtcp,
        })
    }

    /// An RTCP BYE (with a final report and SDES) to send when the session closes.
    #[must_use]
    pub fn goodbye(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let dest = self.rtcp_dest()?;
        let limit = buf.len().checked_sub(TAIL_ROOM)?;
        let rx = self.rx.as_mut().zip(self.remote_ssrc);
        let len = self.rtcp.build(
            now,
            &mut buf[..limit],
            self.cfg.local_ssrc,
            self.ts,
            self.cfg.codec.rtp_clock_rate(),
            self.next_send,
            rx,
            true,
        )?;
        self.stats.rtcp_out += 1;
        let t = Transmit {
            len,
            dest,
            kind: PacketKind::Rtcp,
        };
        self.protect(buf, t)
    }

    fn rtcp_dest(&self) -> Option<SocketAddr> {
        if let Some(a) = self.rtcp.learned_source() {
            return Some(a);
        }
        if let Some(a) = self.cfg.remote_rtcp {
            return Some(a);
        }
        let rtp = self.remote?;
        if self.cfg.rtcp_mux {
            return Some(rtp);
        }
        let mut a = rtp;
        a.set_port(rtp.port().checked_add(1)?);
        Some(a)
    }

    /// The next event for the control side.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// Starts fetching what [`MediaSession::handle_rtp`] of a datagram beginning with
    /// `head` will touch (the fields it reads and writes, the SRTP context, the jitter
    /// buffer's slot and payload storage for the packet's sequence number): a worker
    /// calls this for every datagram of a received batch before handling the first, so
    /// that the sessions' cache misses overlap instead of stalling one after another.
    /// Reads a few of this session's fields; `head` may be anything.
    pub(crate) fn prefetch_receive(&self, head: &[u8]) {
        use crate::prefetch::value;
        value(&self.cfg);
        value(&self.epoch);
        value(&self.remote);
        value(&self.latched);
        value(&self.last_rtp_at);
        value(&self.remote_ssrc);
        value(&self.rx);
        value(&self.timeout_fired);
        value(&self.next_playout);
        value(&self.stats);
        if let Some(srtp) = &self.srtp {
            srtp.inbound.prefetch_unprotect_rtp();
        }
        // RTP (version 2) with the sequence number in the clear (SRTP leaves it so); a
        // multiplexed RTCP packet has its length there, and goes nowhere near the buffer.
        if let [first, _, hi, lo, ..] = *head {
            if first >> 6 == 2 && !(self.cfg.rtcp_mux && is_rtcp(head)) {
                self.jitter.prefetch_insert(u16::from_be_bytes([hi, lo]));
            }
        }
    }

    /// What serving this session at `now` reads first, for a worker to prefetch across
    /// all of a turn's due sessions before serving any (each session's state is cold by
    /// its turn): the jitter buffer's next payload when a playout is due, and the head of
    /// the play queue (one packet of PCM) when a send is due. Empty slices otherwise.
    pub fn due_reads(&self, now: Instant) -> (&[u8], &[i16]) {
        let jitter = if self.next_playout.is_some_and(|t| t <= now) {
            self.jitter.next_storage()
        } else {
            &[]
        };
        let play = if self.next_send <= now {
            let (head, _) = self.play.as_slices();
            &head[..head.len().min(self.pcm_frame())]
        } else {
            &[]
        };
        (jitter, play)
    }

    /// When [`MediaSession::handle_timeout`] (or [`MediaSession::poll_transmit`]) next has
    /// work to do.
    pub fn poll_timeout(&self) -> Instant {
        let mut t = self.next_send.min(self.rtcp.next_report());
        if let Some(p) = self.next_playout {
            t = t.min(p);
        }
        if !self.timeout_fired {
            t = t.min(self.rtp_deadline());
        }
        if let Some(at) = self.last_event_at {
            t = t.min(at + DTMF_FLUSH_AFTER);
        }
        t
    }

    fn rtp_deadline(&self) -> Instant {
        self.last_rtp_at.unwrap_or(self.epoch) + self.cfg.no_rtp_timeout
    }

    /// Advances time: plays out received audio that is due and checks the RTP timeout.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut steps = 0;
        while let Some(at) = self.next_playout {
            if at > now {
                break;
            }
            steps += 1;
            if steps > MAX_CATCH_UP_PACKETS {
                // Skip to the first of the session's own ticks after now. Restarting the
                // clock at now + ptime instead put every session a stall had left behind
                // on one phase, for the rest of their calls: one core turn then served
                // them all at once every packet time (long turns, late timers for all).
                let ptime = self.ptime();
                let behind = now.saturating_duration_since(at).as_nanos();
                let skip = (behind / ptime.as_nanos().max(1)) as u32 + 1;
                let next = at + ptime * skip;
                self.next_playout = Some(next);
                self.send_aligned = false;
                if self.cfg.echo {
                    // The frames this catch-up played out will never be sent on time
                    // (the send clock restarts with playout): drop them, or the echo
                    // delay grows by them for the rest of the call.
                    self.stats.echo_dropped_samples += self.play.len() as u64;
                    self.play.clear();
                }
                self.lock_echo_send(next);
                break;
            }
            let dur = self.playout_step(now, at);
            self.next_playout = Some(at + dur);
        }
        // A digit whose end packets were all lost is reported once events stop.
        if let Some(at) = self.last_event_at {
            if now >= at + DTMF_FLUSH_AFTER {
                self.last_event_at = None;
                if let Some(d) = self.dtmf_rx.flush() {
                    self.push_digit(d);
                }
            }
        }
        if !self.timeout_fired && now >= self.rtp_deadline() {
            self.timeout_fired = true;
            self.push_event(SessionEvent::RtpTimeout);
        }
    }

    /// One jitter-buffer pop; returns how long the produced audio lasts.
    fn playout_step(&mut self, now: Instant, tick: Instant) -> Duration {
        // Zeroing the buffer is most of its cost: G.711 (8 kHz) needs half the largest.
        if self.dec_max <= DEC_MAX_SAMPLES / 2 {
            let mut dec = [0i16; DEC_MAX_SAMPLES / 2];
            self.playout_into(now, tick, &mut dec)
        } else {
            let mut dec = [0i16; DEC_MAX_SAMPLES];
            self.playout_into(now, tick, &mut dec)
        }
    }

    /// [`Self::playout_step`], decoding into `dec_buf` (at least `dec_max` samples).
    fn playout_into(&mut self, now: Instant, tick: Instant, dec_buf: &mut [i16]) -> Duration {
        let dec_rate = self.decoder.pcm_rate();
        let nominal = (dec_rate * u32::from(self.cfg.ptime_ms) / 1000) as usize;
        let dec = &mut dec_buf[..self.dec_max];
        let n = match self.jitter.pop(now) {
            Playout::Empty => return self.ptime(),
            Playout::Packet { payload: [], .. } => {
                // A telephone-event occupied this slot: silence.
                dec[..nominal].fill(0);
                nominal
            }
            Playout::Packet { payload, .. } => match self.decoder.decode(payload, dec) {
                Ok(n) => n,
                Err(_) => {
                    self.stats.invalid_in += 1;
                    dec[..nominal].fill(0);
                    nominal
                }
            },
            Playout::Conceal => {
                // Opus: the packet after the loss may carry its in-band FEC copy.
                let next = self.jitter.peek_next();
                match self.decoder.recover(next, dec) {
                    Ok((n, fec)) => {
                        if fec {
                            self.stats.fec_recovered += 1;
                        }
                        n
                    }
                    Err(_) => 0,
                }
            }
            Playout::Silence => {
                // The last loss of a run can still come back from the next packet's FEC.
                let next = self
                    .jitter
                    .peek_next()
                    .filter(|p| crate::codec::opus::has_fec(p));
                match (next, &mut self.decoder) {
                    (Some(next), Decoder::Opus(d)) => match d.recover(Some(next), 0, dec) {
                        Ok((n, true)) => {
                            self.stats.fec_recovered += 1;
                            n
                        }
                        Ok((n, false)) => n,
                        Err(_) => 0,
                    },
                    _ => {
                        dec[..nominal].fill(0);
                        nominal
                    }
                }
            }
        };
        let js = self.jitter.stats();
        self.stats.lost = js.lost;
        self.stats.late = js.late;
        self.stats.duplicate = js.duplicate;
        self.stats.concealed = js.concealed;
        self.stats.discarded = js.discarded;
        self.stats.jitter_buffer_ms = js.target_delay_ms;
        if n == 0 {
            return self.ptime();
        }
        let dur = Duration::from_micros(n as u64 * 1_000_000 / u64::from(dec_rate));
        let pcm: &[i16] = match self.up.as_mut() {
            Some(r) => match r.process(&dec[..n], &mut self.up_scratch) {
                Ok(m) => &self.up_scratch[..m],
                Err(_) => return dur,
            },
            None => &dec[..n],
        };
        if let Some(ev) = self.vad.process(pcm, self.cfg.pcm_rate) {
            let e = match ev {
                SpeechEvent::Start => SessionEvent::SpeechStart,
                SpeechEvent::End => SessionEvent::SpeechEnd,
            };
            self.events.push_back(e);
            if self.events.len() > EVENT_QUEUE_LEN {
                self.events.pop_front();
                self.stats.events_dropped += 1;
            }
        }
        if self.cfg.echo {
            // Audio still queued when the send clock is already past this tick will never
            // catch up (the send clock skipped ahead after a stall): drop it, or the echo
            // delay grows by those frames for good (the FIFO never drains below its
            // depth). On the tick itself the send follows in this service, and while a
            // send is overdue the queue is about to drain (sends catch up too). The
            // frames of a catch-up cut short are dropped where playout is re-locked.
            if !self.play.is_empty() && self.next_send > tick {
                self.stats.echo_dropped_samples += self.play.len() as u64;
                self.play.clear();
            }
            let room = self.play_cap - self.play.len();
            self.play.extend(&pcm[..pcm.len().min(room)]);
        } else {
            for chunk in pcm.chunks(PCM_FRAME_SAMPLES) {
                let mut f = PcmFrame {
                    samples: [0; PCM_FRAME_SAMPLES],
                    len: chunk.len() as u16,
                    rate: self.cfg.pcm_rate,
                };
                f.samples[..chunk.len()].copy_from_slice(chunk);
                if self.events.len() >= EVENT_QUEUE_LEN {
                    self.events.pop_front();
                    self.stats.events_dropped += 1;
                }
                self.events.push_back(SessionEvent::Audio(f));
            }
        }
        dur
    }

    /// The SRTP drop counters alone (cheap: no jitter-buffer figures), for per-core
    /// totals: `(auth_failed, replayed, protect_failed)`, as in [`SessionStats`].
    pub fn srtp_drops(&self) -> (u64, u64, u64) {
        (
            self.stats.srtp_auth_failed,
            self.stats.srtp_replayed,
            self.stats.srtp_protect_failed,
        )
    }

    /// Whether the session protects and unprotects (SRTP keys were given).
    pub fn is_srtp(&self) -> bool {
        self.srtp.is_some()
    }

    /// Counters and current figures.
    pub fn stats(&self) -> SessionStats {
        let mut s = self.stats;
        if let Some(rx) = &self.rx {
            let clock = u64::from(self.cfg.codec.rtp_clock_rate()).max(1);
            s.jitter_us = (u64::from(rx.jitter()) * 1_000_000 / clock) as u32;
        }
        let js = self.jitter.stats();
        s.lost = js.lost;
        s.late = js.late;
        s.duplicate = js.duplicate;
        s.concealed = js.concealed;
        s.discarded = js.discarded;
        s.jitter_buffer_ms = js.target_delay_ms;
        s
    }
}

#[cfg(test)]
mod tests;

fn count_srtp_drop(stats: &mut SessionStats, e: &crate::srtp::SrtpError) {
    match e {
        crate::srtp::SrtpError::Replay { .. } => stats.srtp_replayed += 1,
        _ => stats.srtp_auth_failed += 1,
    }
}
