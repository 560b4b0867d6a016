//! Entry points for the fuzz targets (`fuzz/fuzz_targets/srtp_*.rs`).
//!
//! The first input byte picks the context: bit 0 an MKI, bit 7 a non-zero key
//! derivation rate, bit 6 a context just re-keyed from a stream at ROC 7 (its first
//! packets are tried at two rollover counters), and bits 1–7 modulo 5 the suite (bits 6
//! and 7 take part, every combination is still reachable); the rest is the packet. The context's keys are fixed and differ from every published vector, so
//! no input can authenticate: an `Ok` would be a forgery and panics.

use super::context::{SrtpContext, SrtpOptions};
use super::suite::SrtpSuite;

const KEY: [u8; 32] = [0x5a; 32];
const SALT: [u8; 14] = [0xa5; 14];
const MKI: [u8; 4] = [0, 0, 0, 1];

fn context(selector: u8) -> Option<SrtpContext> {
    let suite =
        SrtpSuite::STRONGEST_FIRST[usize::from(selector >> 1) % SrtpSuite::STRONGEST_FIRST.len()];
    let mki = (selector & 1 == 1).then_some(&MKI[..]);
    let options = SrtpOptions {
        mki,
        key_derivation_rate: if selector & 0x80 != 0 { 1 << 4 } else { 0 },
        key_lifetime: None,
    };
    let mut ctx = SrtpContext::with_options(
        suite,
        &KEY[..suite.key_len()],
        &SALT[..suite.salt_len()],
        &options,
    )
    .ok()?;
    if selector & 0x40 != 0 {
        let mut old = ctx.clone();
        old.set_roc(7, 0xfff0);
        ctx.continue_from(&old);
    }
    Some(ctx)
}

/// Unprotects `data[1..]` as SRTP; panics if it authenticates.
pub fn unprotect_rtp(data: &[u8]) {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let Some(mut ctx) = context(selector) else {
        return;
    };
    let mut buf = [0u8; 2048];
    let n = packet.len().min(buf.len());
    buf[..n].copy_from_slice(&packet[..n]);
    let result = ctx.unprotect_rtp(&mut buf[..n]);
    assert!(
        result.is_err(),
        "forged SRTP packet authenticated: {result:?}"
    );
}

/// Unprotects `data[1..]` as SRTCP; panics if it authenticates.
pub fn unprotect_rtcp(data: &[u8]) {
    let Some((&selector, packet)) = data.split_first() else {
        return;
    };
    let Some(mut ctx) = context(selector) else {
        return;
    };
    let mut buf = [0u8; 2048];
    let n = packet.len().min(buf.len());
    buf[..n].copy_from_slice(&packet[..n]);
    let result = ctx.unprotect_rtcp(&mut buf[..n]);
    assert!(
        result.is_err(),
        "forged SRTCP packet authenticated: {result:?}"
    );
}
