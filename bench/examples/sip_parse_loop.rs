//! Parses the bench's trunk INVITE N times so CPU time per parse can be read from
//! `perf stat -e task-clock` (on-CPU time: not inflated when other processes take the
//! cores, unlike criterion's wall-clock samples on this shared machine).
//!
//! cargo build --release -p voxgate-bench --example sip_parse_loop
//! perf stat -e task-clock target/release/examples/sip_parse_loop MODE 1000000
//! MODE: parse | typed | check | rsip | rsip_typed
use std::hint::black_box;

use bytes::Bytes;
use rsip::prelude::*;
use voxgate::sip::{self, SipMessage, UasPolicy};

#[path = "../benches/fixtures/trunk_invite.rs"]
mod trunk_invite;
use trunk_invite::TRUNK_INVITE;

fn voxgate(mode: &str, bytes: &Bytes) -> bool {
    let Ok(SipMessage::Request(r)) = sip::parse(black_box(bytes.clone())) else {
        return false;
    };
    let h = &r.headers;
    match mode {
        "typed" => {
            let via = h.top_via().ok().and_then(|v| v.branch()).map(str::len);
            let from = h.from().ok().and_then(|f| f.tag()).map(str::len);
            let to = h.to().ok().map(|t| t.uri.user.map(str::len));
            let cseq = h.cseq().ok().map(|c| c.seq);
            let call_id = h.call_id().ok().map(str::len);
            black_box((via, from, to, cseq, call_id));
        }
        "check" => {
            black_box(sip::check_request(&r, &UasPolicy::GATEWAY).is_ok());
            black_box(r.called_number());
        }
        _ => {}
    }
    true
}

fn rsip_parse(typed: bool) -> bool {
    let Ok(rsip::SipMessage::Request(r)) = rsip::SipMessage::try_from(black_box(TRUNK_INVITE))
    else {
        return false;
    };
    if typed {
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
        black_box((via, from, to, cseq, call_id));
    }
    true
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "parse".into());
    let n: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let bytes = Bytes::from_static(TRUNK_INVITE.as_bytes());
    let mut ok = 0u64;
    for _ in 0..n {
        let parsed = match mode.as_str() {
            "rsip" => rsip_parse(false),
            "rsip_typed" => rsip_parse(true),
            m => voxgate(m, &bytes),
        };
        ok += u64::from(parsed);
    }
    println!("{mode}: {ok} of {n} parsed");
}
