//! RTP parse/build and receive statistics per packet.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use voxgate_engine::rtcp::{ReportBlock, RtcpCompound, RtcpWriter, SenderInfo};
use voxgate_engine::rtp::{ReceiveStats, RtpHeader, RtpPacket};

fn rtp(c: &mut Criterion) {
    let mut pkt = [0u8; 172];
    let h = RtpHeader {
        marker: false,
        payload_type: 0,
        sequence_number: 1,
        timestamp: 160,
        ssrc: 0x1234,
    };
    h.write_packet(&mut pkt, &[0xff; 160]).unwrap();
    c.bench_function("rtp_parse_172B", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&pkt)).unwrap();
            black_box((p.sequence_number(), p.timestamp(), p.payload().len()))
        })
    });
    let payload = [0xffu8; 160];
    let mut out = [0u8; 1500];
    let mut seq = 0u16;
    c.bench_function("rtp_build_172B", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let h = RtpHeader {
                sequence_number: seq,
                ..h
            };
            black_box(h.write_packet(&mut out, black_box(&payload)).unwrap())
        })
    });
    let mut stats = ReceiveStats::new(0, 1);
    let mut s = 0u16;
    c.bench_function("rtp_receive_stats_update", |b| {
        b.iter(|| {
            s = s.wrapping_add(1);
            black_box(stats.update_seq(s));
            stats.update_jitter(u32::from(s) * 160 + 3, u32::from(s) * 160);
        })
    });
    let mut buf = [0u8; 256];
    let mut w = RtcpWriter::new(&mut buf);
    w.sender_report(1, &SenderInfo::default(), &[ReportBlock::default()])
        .unwrap();
    w.sdes_cname(1, b"vg-00000001").unwrap();
    let n = w.len();
    c.bench_function("rtcp_parse_sr_sdes", |b| {
        b.iter(|| {
            let c = RtcpCompound::parse(black_box(&buf[..n])).unwrap();
            black_box(c.packets().count())
        })
    });
}

criterion_group!(benches, rtp);
criterion_main!(benches);
