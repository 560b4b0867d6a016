//! The session's RTCP side: report scheduling, SR/RR + SDES building, RTT from report
//! blocks (RFC 3550 6.4.1: RTT = A − LSR − DLSR).
//!
//! The NTP timestamps in our SRs come from the session's monotonic clock (`now` since the
//! session started, on an arbitrary NTP base), not the wall clock: this engine sends audio
//! only and needs no inter-media sync, and RTT needs only a consistent clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::types::SessionStats;
use crate::rtcp::{ReportBlock, RtcpCompound, RtcpError, RtcpPacket, RtcpWriter, SenderInfo};
use crate::rtp::ReceiveStats;

/// Nominal interval between reports (RFC 3550's minimum of 5 s).
pub const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// Arbitrary NTP seconds our clock starts at (2026-01-01 in NTP era 0 ≈ 3976300800).
const NTP_BASE_SECS: u64 = 3_976_300_800;

#[derive(Debug)]
pub(super) struct RtcpState {
    epoch: Instant,
    next_report: Instant,
    interval: Duration,
    packets_sent: u32,
    octets_sent: u32,
    learned: Option<SocketAddr>,
    last_sr: Option<(u32, Instant)>,
    cname: [u8; 11],
}

fn hex(n: u32, out: &mut [u8]) {
    const D: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().enumerate().take(8) {
        *o = D[((n >> (28 - 4 * i)) & 0xf) as usize];
    }
}

impl RtcpState {
    pub(super) fn new(now: Instant, ssrc: u32) -> Self {
        // Spread reports of many sessions over 4.5..5.5 s, deterministically per SSRC.
        let interval = REPORT_INTERVAL - Duration::from_millis(500)
            + Duration::from_millis(u64::from(ssrc % 1000));
        let mut cname = *b"vg-00000000";
        hex(ssrc, &mut cname[3..]);
        Self {
            epoch: now,
            next_report: now + interval / 2,
            interval,
            packets_sent: 0,
            octets_sent: 0,
            learned: None,
            last_sr: None,
            cname,
        }
    }

    pub(super) fn next_report(&self) -> Instant {
        self.next_report
    }

    pub(super) fn skip(&mut self, now: Instant) {
        self.next_report = now + self.interval;
    }

    pub(super) fn learned_source(&self) -> Option<SocketAddr> {
        self.learned
    }

    /// The peer moved: reports go to its new address until RTCP arrives from there.
    pub(super) fn forget_source(&mut self) {
        self.learned = None;
    }

    pub(super) fn on_sent(&mut self, payload_len: usize) {
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload_len as u32);
    }

    fn ntp(&self, now: Instant) -> (u32, u32) {
        let d = now.saturating_duration_since(self.epoch);
        let secs = (NTP_BASE_SECS + d.as_secs()) as u32;
        let frac = ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000) as u32;
        (secs, frac)
    }

    fn ntp_middle(&self, now: Instant) -> u32 {
        let (s, f) = self.ntp(now);
        (s << 16) | (f >> 16)
    }

    pub(super) fn handle(
        &mut self,
        now: Instant,
        from: SocketAddr,
        packet: &[u8],
        local_ssrc: u32,
        stats: &mut SessionStats,
    ) -> Result<(), RtcpError> {
        let c = RtcpCompound::parse(packet)?;
        stats.rtcp_in += 1;
        self.learned = Some(from);
        for p in c.packets() {
            let blocks = match p {
                RtcpPacket::SenderReport(sr) => {
                    self.last_sr = Some((sr.info.ntp_middle(), now));
                    Some(sr.report_blocks())
                }
                RtcpPacket::ReceiverReport(_) => None,
                _ => continue,
            };
            let rr_blocks = match p {
                RtcpPacket::ReceiverReport(rr) => Some(rr.report_blocks()),
                _ => None,
            };
            for b in blocks
                .into_iter()
                .flatten()
                .chain(rr_blocks.into_iter().flatten())
            {
                if b.ssrc != local_ssrc {
                    continue;
                }
                stats.remote_lost = b.cumulative_lost;
                if b.last_sr != 0 {
                    let a = self.ntp_middle(now);
                    let rtt = a
                        .wrapping_sub(b.last_sr)
                        .wrapping_sub(b.delay_since_last_sr);
                    // Ignore nonsense (negative, or over a minute).
                    if rtt < 60 << 16 {
                        stats.rtt = Some(Duration::from_micros((u64::from(rtt) * 1_000_000) >> 16));
                    }
                }
            }
        }
        Ok(())
    }

    /// Builds the next compound report into `buf` when one is due.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn poll(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        local_ssrc: u32,
        next_ts: u32,
        clock: u32,
        next_send: Instant,
        rx: Option<(&mut ReceiveStats, u32)>,
    ) -> Option<usize> {
        if now < self.next_report {
            return None;
        }
        self.next_report = now + self.interval;
        self.build(now, buf, local_ssrc, next_ts, clock, next_send, rx, false)
    }

    /// Builds a report compound (SR or RR, SDES), ending with a BYE when `bye`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        local_ssrc: u32,
        next_ts: u32,
        clock: u32,
        next_send: Instant,
        rx: Option<(&mut ReceiveStats, u32)>,
        bye: bool,
    ) -> Option<usize> {
        let mut blocks = [ReportBlock::default(); 1];
        let mut nblocks = 0;
        if let Some((rx, remote_ssrc)) = rx {
            let c = rx.report();
            let (lsr, dlsr) = match self.last_sr {
                Some((lsr, at)) => {
                    let d = now.saturating_duration_since(at);
                    (lsr, ((d.as_micros() as u64) << 16) / 1_000_000)
                }
                None => (0, 0),
            };
            blocks[0] = ReportBlock {
                ssrc: remote_ssrc,
                fraction_lost: c.fraction_lost,
                cumulative_lost: c.cumulative_lost,
                extended_highest_seq: c.extended_highest_seq,
                jitter: c.jitter,
                last_sr: lsr,
                delay_since_last_sr: dlsr.min(u64::from(u32::MAX)) as u32,
            };
            nblocks = 1;
        }
        let mut w = RtcpWriter::new(buf);
        if self.packets_sent > 0 {
            let (ntp_seconds, ntp_fraction) = self.ntp(now);
            let ahead = next_send.saturating_duration_since(now);
            let back = (ahead.as_micros() as u64 * u64::from(clock) / 1_000_000) as u32;
            let info = SenderInfo {
                ntp_seconds,
                ntp_fraction,
                rtp_timestamp: next_ts.wrapping_sub(back),
                packet_count: self.packets_sent,
                octet_count: self.octets_sent,
            };
            w.sender_report(local_ssrc, &info, &blocks[..nblocks])
                .ok()?;
        } else {
            w.receiver_report(local_ssrc, &blocks[..nblocks]).ok()?;
        }
        w.sdes_cname(local_ssrc, &self.cname).ok()?;
        if bye {
            w.bye(&[local_ssrc], None).ok()?;
        }
        Some(w.len())
    }
}
