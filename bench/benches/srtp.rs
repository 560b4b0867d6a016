//! SRTP protect/unprotect: voxgate's SrtpContext against libsrtp2 (Debian 2.5.0, NSS
//! crypto) in the same run, for a 172-byte RTP packet (12-byte header + 160 bytes of
//! G.711) and a 76-byte RTCP compound (SR with one report block + SDES CNAME).
//!
//! cargo bench -p voxgate-bench --bench srtp -- --warm-up-time 1 --measurement-time 3

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use std::hint::black_box;
use voxgate_bench::libsrtp::{LibSrtp, MAX_TRAILER};
use voxgate_engine::srtp::{SrtpContext, SrtpSuite};

const BUF: usize = 172 + MAX_TRAILER + 16;

fn rtp_packet() -> [u8; 172] {
    let mut p = [0u8; 172];
    p[0] = 0x80;
    p[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    for (i, b) in p[12..].iter_mut().enumerate() {
        *b = i as u8;
    }
    p
}

fn rtcp_compound() -> Vec<u8> {
    let mut p = vec![0x81, 0xc8, 0x00, 0x0c, 0x12, 0x34, 0x56, 0x78];
    p.extend((0..44).map(|i| i as u8)); // sender info + one report block
    p.extend_from_slice(&[0x81, 0xca, 0x00, 0x05, 0x12, 0x34, 0x56, 0x78, 1, 10]);
    p.extend_from_slice(b"voxgate@01");
    p.extend_from_slice(&[0, 0, 0, 0]);
    p
}

trait Srtp {
    fn protect(&mut self, buf: &mut [u8], len: usize, rtcp: bool) -> usize;
    fn unprotect(&mut self, buf: &mut [u8], rtcp: bool) -> usize;
}

impl Srtp for SrtpContext {
    fn protect(&mut self, buf: &mut [u8], len: usize, rtcp: bool) -> usize {
        if rtcp {
            self.protect_rtcp(buf, len)
        } else {
            self.protect_rtp(buf, len)
        }
        .expect("protect")
    }
    fn unprotect(&mut self, buf: &mut [u8], rtcp: bool) -> usize {
        if rtcp {
            self.unprotect_rtcp(buf)
        } else {
            self.unprotect_rtp(buf)
        }
        .expect("unprotect")
    }
}

impl Srtp for LibSrtp {
    fn protect(&mut self, buf: &mut [u8], len: usize, rtcp: bool) -> usize {
        if rtcp {
            self.protect_rtcp(buf, len)
        } else {
            self.protect_rtp(buf, len)
        }
        .expect("protect")
    }
    fn unprotect(&mut self, buf: &mut [u8], rtcp: bool) -> usize {
        if rtcp {
            self.unprotect_rtcp(buf)
        } else {
            self.unprotect_rtp(buf)
        }
        .expect("unprotect")
    }
}

fn bench_pair(
    c: &mut Criterion,
    label: &str,
    rtcp: bool,
    plain: &[u8],
    tx: &mut dyn Srtp,
    rx: &mut dyn Srtp,
    tx2: &mut dyn Srtp,
) {
    let mut seq: u16 = 0;
    let mut next = |buf: &mut [u8; BUF]| {
        buf[..plain.len()].copy_from_slice(plain);
        if !rtcp {
            seq = seq.wrapping_add(1);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
        }
    };
    let mut buf = [0u8; BUF];
    c.bench_function(&format!("{label}/protect"), |b| {
        b.iter(|| {
            next(&mut buf);
            black_box(tx.protect(&mut buf, plain.len(), rtcp))
        })
    });
    // Unprotect needs a fresh packet each time (replay protection); a second sender
    // makes them outside the timed routine.
    c.bench_function(&format!("{label}/unprotect"), |b| {
        b.iter_batched_ref(
            || {
                let mut p = [0u8; BUF];
                next(&mut p);
                let n = tx2.protect(&mut p, plain.len(), rtcp);
                (p, n)
            },
            |(p, n)| black_box(rx.unprotect(&mut p[..*n], rtcp)),
            BatchSize::SmallInput,
        )
    });
}

fn srtp(c: &mut Criterion) {
    let rtp = rtp_packet();
    let rtcp = rtcp_compound();
    for suite in [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
        SrtpSuite::AeadAes128Gcm,
    ] {
        let key = vec![0x42u8; suite.key_len()];
        let salt = vec![0x24u8; suite.salt_len()];
        let ours = || SrtpContext::new(suite, &key, &salt, None).expect("context");
        let lib = |out| LibSrtp::new(suite, &key, &salt, None, out).expect("libsrtp");
        for (kind, plain, is_rtcp) in [("rtp172", &rtp[..], false), ("rtcp76", &rtcp[..], true)] {
            if is_rtcp && suite == SrtpSuite::AesCm128HmacSha1_32 {
                continue; // same SRTCP transform as _80
            }
            bench_pair(
                c,
                &format!("{suite}/{kind}/voxgate"),
                is_rtcp,
                plain,
                &mut ours(),
                &mut ours(),
                &mut ours(),
            );
            bench_pair(
                c,
                &format!("{suite}/{kind}/libsrtp2"),
                is_rtcp,
                plain,
                &mut lib(true),
                &mut lib(false),
                &mut lib(true),
            );
        }
    }
}

criterion_group!(benches, srtp);
criterion_main!(benches);
