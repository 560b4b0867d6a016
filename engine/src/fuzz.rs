//! Entry points for the fuzz targets (`fuzz/fuzz_targets/*.rs` call these in one line)
//! and for the replay test of `engine/tests/data/`. Each one drives a parser or state
//! machine with arbitrary bytes and asserts its invariants; a panic is a bug.

use std::time::{Duration, Instant};

use crate::dtmf::{DtmfReceiver, TelephoneEvent};
use crate::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::rtcp::{RtcpCompound, RtcpPacket, RtcpWriter};
use crate::rtp::{ReceiveStats, RtpHeader, RtpPacket};

/// Parses `data` as RTP; a parsed packet must re-serialise to the same fixed header.
pub fn rtp(data: &[u8]) {
    let Ok(p) = RtpPacket::parse(data) else {
        return;
    };
    let _ = p.csrcs().count();
    let _ = p.extension();
    assert!(p.header_len() + p.payload().len() <= data.len());
    if p.csrcs().count() == 0 && p.extension().is_none() && data[0] & 0x20 == 0 {
        let h = RtpHeader {
            marker: p.marker(),
            payload_type: p.payload_type(),
            sequence_number: p.sequence_number(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
        };
        let mut out = [0u8; 12];
        assert_eq!(h.write(&mut out), Ok(12));
        assert_eq!(&out[..], &data[..12]);
    }
    let mut s = ReceiveStats::new(p.sequence_number(), 1);
    let _ = s.update_seq(p.sequence_number());
    s.update_jitter(p.timestamp().wrapping_add(7), p.timestamp());
    let _ = s.report();
}

/// Parses `data` as a compound RTCP packet and walks everything in it; report blocks
/// written back must parse to the same values.
pub fn rtcp(data: &[u8]) {
    let Ok(c) = RtcpCompound::parse(data) else {
        return;
    };
    let mut blocks = [crate::rtcp::ReportBlock::default(); 31];
    let mut n = 0;
    for p in c.packets() {
        match p {
            RtcpPacket::SenderReport(sr) => {
                for b in sr.report_blocks() {
                    if n < blocks.len() {
                        blocks[n] = b;
                        n += 1;
                    }
                }
            }
            RtcpPacket::ReceiverReport(rr) => {
                for b in rr.report_blocks() {
                    if n < blocks.len() {
                        blocks[n] = b;
                        n += 1;
                    }
                }
            }
            RtcpPacket::SourceDescription(sd) => {
                for ch in sd.chunks() {
                    let _ = ch.items().count();
                    let _ = ch.cname();
                }
            }
            RtcpPacket::Goodbye(b) => {
                let _ = b.ssrcs().count();
            }
            _ => {}
        }
    }
    let mut buf = [0u8; 8 + 31 * 24];
    let mut w = RtcpWriter::new(&mut buf);
    assert!(w.receiver_report(1, &blocks[..n]).is_ok());
    let len = w.len();
    let back = RtcpCompound::parse(&buf[..len]).ok();
    let Some(RtcpPacket::ReceiverReport(rr)) = back.and_then(|c| c.packets().next()) else {
        panic!("written RR does not parse");
    };
    assert!(rr.report_blocks().eq(blocks[..n].iter().copied()));
}

/// Feeds `data` to a [`DtmfReceiver`] as packets of 5 bytes (a timestamp selector and a
/// 4-byte event block): each event (a run of packets with one timestamp) is reported at
/// most once, however many end packets it has.
pub fn telephone_event(data: &[u8]) {
    let _ = TelephoneEvent::parse(data);
    let mut rx = DtmfReceiver::new();
    let mut runs = 0u32;
    let mut reports = 0u32;
    let mut last_ts = None;
    for chunk in data.chunks(5) {
        let Some((&sel, payload)) = chunk.split_first() else {
            continue;
        };
        let ts = u32::from(sel & 7) * 1000;
        if last_ts != Some(ts) && payload.len() >= 4 {
            runs += 1;
            last_ts = Some(ts);
        }
        if let Ok(Some(d)) = rx.handle(ts, payload) {
            assert!(crate::dtmf::digit_event(d.digit).is_some());
            reports += 1;
        }
        assert!(reports <= runs, "{reports} reports for {runs} events");
    }
}

/// Interprets `data` as jitter-buffer operations; playout must come out in increasing
/// sequence order with the payload that was inserted for that sequence number.
pub fn jitter_ops(data: &[u8]) {
    let mut jb = JitterBuffer::new(JitterConfig {
        capacity: 16,
        max_payload: 64,
        ..JitterConfig::new(8000, 20)
    });
    let t0 = Instant::now();
    let mut now = t0;
    let mut seq: u64 = 1000;
    let mut last_played: Option<u64> = None;
    let mut it = data.iter();
    while let Some(&op) = it.next() {
        match op % 5 {
            0 | 1 => {
                let delta = i64::from(*it.next().unwrap_or(&0) as i8);
                let s = seq.saturating_add_signed(delta);
                let len = usize::from(*it.next().unwrap_or(&0) % 80);
                let mut payload = [0u8; 80];
                for (i, b) in payload[..len].iter_mut().enumerate() {
                    *b = (s as u8).wrapping_add(i as u8);
                }
                let _ = jb.insert(now, s, (s * 160) as u32, op & 0x80 != 0, &payload[..len]);
                if op % 5 == 0 {
                    seq = seq.saturating_add(1);
                }
            }
            2 => {
                if let Playout::Packet {
                    seq: s,
                    payload,
                    timestamp,
                    ..
                } = jb.pop(now)
                {
                    assert!(last_played.is_none_or(|l| s > l), "out of order");
                    assert_eq!(timestamp, (s * 160) as u32);
                    for (i, &b) in payload.iter().enumerate() {
                        assert_eq!(b, (s as u8).wrapping_add(i as u8), "payload mixed up");
                    }
                    last_played = Some(s);
                }
            }
            3 => now += Duration::from_millis(u64::from(*it.next().unwrap_or(&20))),
            _ => {
                if op == 0xff {
                    jb.reset();
                    last_played = None;
                }
            }
        }
        let st = jb.stats();
        assert!(st.depth as usize <= 1 << 20);
    }
}

/// Drives a [`crate::session::MediaSession`] with arbitrary datagrams (length-prefixed,
/// the first byte choosing RTP/RTCP port, source address and a time step) and checks that
/// it keeps time: `poll_timeout` always moves forward after the work due is done.
pub fn session(data: &[u8]) {
    use crate::codec::CodecKind;
    use crate::session::{MediaSession, SessionConfig};
    use std::net::SocketAddr;

    let t0 = Instant::now();
    let mut cfg = SessionConfig::new(0x5eed, CodecKind::Pcmu, 0);
    cfg.telephone_event_pt = Some(101);
    cfg.rtcp_mux = data.first().is_some_and(|b| b & 1 == 1);
    cfg.pcm_rate = if data.first().is_some_and(|b| b & 2 == 2) {
        16000
    } else {
        8000
    };
    let Ok(mut s) = MediaSession::new(cfg, t0) else {
        return;
    };
    let mut now = t0;
    let mut out = [0u8; 1500];
    let mut pkt = [0u8; 1500];
    let mut rest = data.get(1..).unwrap_or_default();
    while let [ctl, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(u64::from(ctl >> 3) * 4);
        let from = SocketAddr::from(([127, 0, 0, 1], 5000 + u16::from(ctl & 3)));
        pkt[..len].copy_from_slice(body);
        if ctl & 4 == 0 {
            // The worker's hint before a batch: any bytes, no effect but on caches.
            s.prefetch_receive(&pkt[..len.min(16)]);
            s.handle_rtp(now, from, &mut pkt[..len]);
        } else {
            s.handle_rtcp(now, from, &mut pkt[..len]);
        }
        if ctl & 0x80 != 0 {
            let _ = s.play(&[1000; 160]);
        }
        s.handle_timeout(now);
        let mut sent = 0;
        while s.poll_transmit(now, &mut out).is_some() {
            sent += 1;
            assert!(sent < 1000, "poll_transmit does not stop");
        }
        while s.poll_event().is_some() {}
        assert!(
            s.poll_timeout() > now,
            "poll_timeout did not advance: {:?} {:?}",
            s.poll_timeout() - t0,
            now - t0
        );
    }
    let _ = s.stats();
}

/// Opus decoding of arbitrary bytes (one packet, FEC and PLC paths, a packet sequence).
pub fn opus_decode(data: &[u8]) {
    crate::codec::opus::fuzz_decode(data);
}
