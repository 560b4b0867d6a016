//! Known-answer tests: RFC 3711 B.2/B.3 and the libsrtp reference packets
//! (../shared/conformance/srtp-vectors.md §1-§3), each with a tampered twin.

use super::kdf::{self, ctr_xor};
use super::{SrtpContext, SrtpError, SrtpSuite};
use aes::cipher::KeyInit;

pub(crate) fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).expect("test vector hex")
}

const MASTER_KEY: &str = "e1f97a0d3e018be0d64fa32c06de4139";
const MASTER_SALT: &str = "0ec675ad498afeebb6960b3aabe6";

/// Runs protect on `plain` and returns the protected bytes.
fn protect(ctx: &mut SrtpContext, plain: &[u8], rtcp: bool) -> Result<Vec<u8>, SrtpError> {
    let mut buf = vec![0u8; plain.len() + 64];
    buf[..plain.len()].copy_from_slice(plain);
    let n = if rtcp {
        ctx.protect_rtcp(&mut buf, plain.len())?
    } else {
        ctx.protect_rtp(&mut buf, plain.len())?
    };
    buf.truncate(n);
    Ok(buf)
}

/// Runs unprotect on a copy of `packet` and returns the plaintext.
fn unprotect(ctx: &mut SrtpContext, packet: &[u8], rtcp: bool) -> Result<Vec<u8>, SrtpError> {
    let mut buf = packet.to_vec();
    let n = if rtcp {
        ctx.unprotect_rtcp(&mut buf)?
    } else {
        ctx.unprotect_rtp(&mut buf)?
    };
    buf.truncate(n);
    Ok(buf)
}

/// Checks a vector both ways and that flipping any one of several bits fails.
pub(crate) fn check_vector(
    make: &dyn Fn() -> SrtpContext,
    plain: &[u8],
    protected: &[u8],
    rtcp: bool,
    first_index: Option<u32>,
) {
    let fresh = || {
        let mut c = make();
        if let Some(i) = first_index {
            c.set_next_srtcp_index(i);
        }
        c
    };
    if first_index.is_some() || !rtcp {
        assert_eq!(
            hex::encode(protect(&mut fresh(), plain, rtcp).unwrap()),
            hex::encode(protected)
        );
    }
    assert_eq!(unprotect(&mut fresh(), protected, rtcp).unwrap(), plain);
    // Tampered twins: a flipped bit in the header, the ciphertext, and the last byte.
    for pos in [1, plain.len() - 1, protected.len() - 1] {
        let mut bad = protected.to_vec();
        bad[pos] ^= 0x01;
        assert_eq!(
            unprotect(&mut fresh(), &bad, rtcp),
            Err(SrtpError::AuthenticationFailed),
            "flipped bit at byte {pos} must fail"
        );
    }
}

// §1: RFC 3711 B.2 AES-CM keystream.
#[test]
fn b2_aes_cm_keystream() {
    let aes = aes::Aes128Enc::new_from_slice(&hex("2B7E151628AED2A6ABF7158809CF4F3C")).unwrap();
    let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
    let mut ks = vec![0u8; 1_044_512];
    ctr_xor(&aes, &iv, &mut ks);
    let block = |i: usize| hex::encode_upper(&ks[i * 16..i * 16 + 16]);
    assert_eq!(block(0), "E03EAD0935C95E80E166B16DD92B4EB4");
    assert_eq!(block(1), "D23513162B02D0F72A43A2FE4A5F97AB");
    assert_eq!(block(2), "41E95B3BB0A2E8DD477901E4FCA894C0");
    assert_eq!(block(0xfeff), "EC8CDF7398607CB0F2D21675EA9EA1E4");
    assert_eq!(block(0xff00), "362B7C3C6773516318A077D7FC5073AE");
    assert_eq!(block(0xff01), "6A2CC3787889374FBEB4C81B17BA6C44");
    assert_eq!(ks.len() / 16, 65282);

    // Same keystream through SrtpContext: SSRC 0, seq 0, ROC 0, session keys given.
    let mut ctx =
        SrtpContext::new(SrtpSuite::AesCm128HmacSha1_80, &[0; 16], &[0; 14], None).unwrap();
    ctx.set_session_keys(
        false,
        &hex("2B7E151628AED2A6ABF7158809CF4F3C"),
        &hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"),
        &[0; 20],
    );
    let mut pkt = vec![0u8; 12 + 48 + 10];
    pkt[0] = 0x80;
    let n = ctx.protect_rtp(&mut pkt, 60).unwrap();
    assert_eq!(n, 70);
    assert_eq!(pkt[12..60], ks[..48]);

    // Tampered twin: a flipped counter bit gives a different keystream.
    let mut iv2 = iv;
    iv2[15] ^= 1;
    let mut ks2 = [0u8; 16];
    ctr_xor(&aes, &iv2, &mut ks2);
    assert_ne!(hex::encode_upper(ks2), "E03EAD0935C95E80E166B16DD92B4EB4");
}

// §2: RFC 3711 B.3 key derivation.
#[test]
fn b3_key_derivation() {
    let prf = aes::Aes128Enc::new_from_slice(&hex(MASTER_KEY)).unwrap();
    let salt = hex(MASTER_SALT);
    let mut key = [0u8; 16];
    kdf::derive(&prf, &salt, kdf::LABEL_RTP_KEY, 0, &mut key);
    assert_eq!(hex::encode(key), "c61e7a93744f39ee10734afe3ff7a087");
    let mut s = [0u8; 14];
    kdf::derive(&prf, &salt, kdf::LABEL_RTP_SALT, 0, &mut s);
    assert_eq!(hex::encode(s), "30cbbc08863d8c85d49db34a9ae1");
    let mut auth = [0u8; 94];
    kdf::derive(&prf, &salt, kdf::LABEL_RTP_AUTH, 0, &mut auth);
    assert_eq!(
        hex::encode(auth),
        "cebe321f6ff7716b6fd4ab49af256a156d38baa48f0a0acf3c34e2359e6cdbce\
         e049646c43d9327ad175578ef72270986371c10c9a369ac2f94a8c5fbcdddc25\
         6d6e919a48b610ef17c2041e474035766b68642c59bbfc2f34db60dbdfb2"
    );
    // Tampered twin: a different label (or r) gives a different key.
    kdf::derive(&prf, &salt, kdf::LABEL_RTCP_KEY, 0, &mut key);
    assert_ne!(hex::encode(key), "c61e7a93744f39ee10734afe3ff7a087");
    kdf::derive(&prf, &salt, kdf::LABEL_RTP_KEY, 1, &mut key);
    assert_ne!(hex::encode(key), "c61e7a93744f39ee10734afe3ff7a087");
}

// §3a: libsrtp srtp_validate, AES_CM_128_HMAC_SHA1_80, RTP.
#[test]
fn libsrtp_validate_rtp() {
    let make = || {
        SrtpContext::new(
            SrtpSuite::AesCm128HmacSha1_80,
            &hex(MASTER_KEY),
            &hex(MASTER_SALT),
            None,
        )
        .unwrap()
    };
    check_vector(
        &make,
        &hex("800f1234decafbadcafebabe abababababababababababababababab"),
        &hex("800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb"),
        false,
        None,
    );
}

// §3a: libsrtp srtp_validate, SRTCP index 1, E=1.
#[test]
fn libsrtp_validate_rtcp() {
    let make = || {
        SrtpContext::new(
            SrtpSuite::AesCm128HmacSha1_80,
            &hex(MASTER_KEY),
            &hex(MASTER_SALT),
            None,
        )
        .unwrap()
    };
    check_vector(
        &make,
        &hex("81c8000bcafebabe abababababababababababababababab"),
        &hex("81c8000bcafebabe 7128035be487b9bdbef89041f977a5a8 80000001 993e08cd54d6c1230798"),
        true,
        Some(1),
    );
}

// §3b: libsrtp srtp_validate_aes_256, AES_256_CM_HMAC_SHA1_80, RTP.
#[test]
fn libsrtp_validate_aes_256_rtp() {
    let make = || {
        SrtpContext::new(
            SrtpSuite::AesCm256HmacSha1_80,
            &hex("f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6"),
            &hex("3b04803de51ee7c96423ab5b78d2"),
            None,
        )
        .unwrap()
    };
    check_vector(
        &make,
        &hex("800f1234decafbadcafebabe abababababababababababababababab"),
        &hex("800f1234decafbadcafebabe f1d9de17ff251ff1aa007774b0b4b40d a08d9d9a5b3a55d8873b"),
        false,
        None,
    );
}
