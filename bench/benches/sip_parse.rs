//! SIP parse of a typical trunk INVITE with SDP: voxgate's parser vs rsip 0.4.0, in one
//! criterion run so the ratio is meaningful on a noisy machine.
//!
//! cargo bench -p voxgate-bench --bench sip_parse -- --warm-up-time 1 --measurement-time 3

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use voxgate::sip::{self, HeaderName, SipMessage, UasPolicy};

#[path = "fixtures/trunk_invite.rs"]
mod trunk_invite;
use trunk_invite::TRUNK_INVITE;

fn bench(c: &mut Criterion) {
    let bytes = Bytes::from_static(TRUNK_INVITE.as_bytes());
    let body_len = TRUNK_INVITE.split("\r\n\r\n").nth(1).map_or(0, str::len);
    assert_eq!(body_len, 284, "Content-Length of the fixture");
    let mut g = c.benchmark_group("sip_parse_invite");
    g.bench_function("voxgate_parse", |b| {
        b.iter(|| black_box(sip::parse(black_box(bytes.clone())).is_ok()))
    });
    g.bench_function("voxgate_parse_from_slice_copy", |b| {
        b.iter(|| {
            black_box(
                sip::parse(Bytes::copy_from_slice(black_box(TRUNK_INVITE.as_bytes()))).is_ok(),
            )
        })
    });
    g.bench_function("voxgate_parse_typed", |b| {
        b.iter(|| {
            let Ok(SipMessage::Request(r)) = sip::parse(black_box(bytes.clone())) else {
                panic!("fixture parses")
            };
            let h = &r.headers;
            let via = h.top_via().ok().and_then(|v| v.branch()).map(str::len);
            let from = h.from().ok().and_then(|f| f.tag()).map(str::len);
            let to = h.to().ok().map(|t| t.uri.user.map(str::len));
            let cseq = h.cseq().ok().map(|c| c.seq);
            let call_id = h.call_id().ok().map(str::len);
            black_box((via, from, to, cseq, call_id))
        })
    });
    g.bench_function("voxgate_parse_check_request", |b| {
        b.iter(|| {
            let Ok(SipMessage::Request(r)) = sip::parse(black_box(bytes.clone())) else {
                panic!("fixture parses")
            };
            black_box(sip::check_request(&r, &UasPolicy::GATEWAY).is_ok());
            black_box(r.called_number());
            black_box(r.headers.get(HeaderName::ContentType).map(str::len))
        })
    });
    g.bench_function("rsip_parse", |b| {
        b.iter(|| black_box(rsip::SipMessage::try_from(black_box(TRUNK_INVITE.as_bytes())).is_ok()))
    });
    g.bench_function("rsip_parse_typed", |b| {
        use rsip::prelude::*;
        b.iter(|| {
            let Ok(rsip::SipMessage::Request(r)) =
                rsip::SipMessage::try_from(black_box(TRUNK_INVITE.as_bytes()))
            else {
                panic!("fixture parses with rsip")
            };
            let via = r
                .via_header()
                .ok()
                .and_then(|v| v.typed().ok())
                .map(|v| v.params.len());
            let from = r
                .from_header()
                .ok()
                .and_then(|f| f.typed().ok())
                .map(|f| f.params.len());
            let to = r
                .to_header()
                .ok()
                .and_then(|t| t.typed().ok())
                .map(|t| t.params.len());
            let cseq = r
                .cseq_header()
                .ok()
                .and_then(|c| c.typed().ok())
                .map(|c| c.seq);
            let call_id = r.call_id_header().ok().map(|c| c.value().len());
            black_box((via, from, to, cseq, call_id))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
