//! Known-answer tests: RFC 7714 §16-17 AES-GCM SRTP/SRTCP
//! (../shared/conformance/srtp-vectors.md §5), each with a tampered twin.

use super::rfc3711::{check_vector, hex};
use super::{SrtpContext, SrtpError, SrtpSuite};

const SALT: &str = "517569642070726f2071756f";
const KEY_128: &str = "000102030405060708090a0b0c0d0e0f";
const KEY_256: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const RTP: &str = "8040f17b8041f8d35501a0b2 47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573";
const RTCP: &str = "81c8000d4d617273 4e5450314e545032525450200000042a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";

/// A context whose session keys are the RFC's (RFC 7714 vectors bypass the KDF).
fn ctx(suite: SrtpSuite, key: &str) -> SrtpContext {
    let k = hex(key);
    let mut c = SrtpContext::new(suite, &k, &[0; 12], None).unwrap();
    c.set_session_keys(false, &k, &hex(SALT), &[]);
    c.set_session_keys(true, &k, &hex(SALT), &[]);
    c
}

// §16.1.1
#[test]
fn srtp_aes_128_gcm() {
    check_vector(
        &|| ctx(SrtpSuite::AeadAes128Gcm, KEY_128),
        &hex(RTP),
        &hex("8040f17b8041f8d35501a0b2 f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833 899d7f27beb16a9152cf765ee4390cce"),
        false,
        None,
    );
}

// §16.2.1
#[test]
fn srtp_aes_256_gcm() {
    check_vector(
        &|| ctx(SrtpSuite::AeadAes256Gcm, KEY_256),
        &hex(RTP),
        &hex("8040f17b8041f8d35501a0b2 32b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b 7aa3db36dfffd6b0f9bb7878d7a76c13"),
        false,
        None,
    );
}

// §17.1 (E=1)
#[test]
fn srtcp_aes_128_gcm() {
    check_vector(
        &|| ctx(SrtpSuite::AeadAes128Gcm, KEY_128),
        &hex(RTCP),
        &hex("81c8000d4d617273 63e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275b c84aa45896cf4d2fc5abf87245d9eade 800005d4"),
        true,
        Some(0x5d4),
    );
}

// §17.2 (E=1)
#[test]
fn srtcp_aes_256_gcm() {
    check_vector(
        &|| ctx(SrtpSuite::AeadAes256Gcm, KEY_256),
        &hex(RTCP),
        &hex("81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4"),
        true,
        Some(0x5d4),
    );
}

// §17.3 (E=0, authentication only) and §17.4 (computed only, see the vectors file).
#[test]
fn srtcp_gcm_authentication_only() {
    for (suite, key, tag) in [
        (
            SrtpSuite::AeadAes128Gcm,
            KEY_128,
            "841dd9683dd78ec92ae58790125f62b3",
        ),
        (
            SrtpSuite::AeadAes256Gcm,
            KEY_256,
            "91db4afbfeee5a978fab4393ed2615fe",
        ),
    ] {
        let packet = hex(&format!("{RTCP}{tag}000005d4"));
        // protect always encrypts (E=1), so only the receive direction applies here.
        check_vector(&|| ctx(suite, key), &hex(RTCP), &packet, true, None);
        // Tampered twin: setting E on an authentication-only packet must fail.
        let mut bad = packet.clone();
        let e = bad.len() - 4;
        bad[e] |= 0x80;
        assert_eq!(
            ctx(suite, key).unprotect_rtcp(&mut bad),
            Err(SrtpError::AuthenticationFailed)
        );
    }
}
