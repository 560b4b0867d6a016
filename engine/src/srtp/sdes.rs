//! SDES key exchange: the SDP `a=crypto` attribute (RFC 4568).
//!
//! Each side's `a=crypto` line carries the master key that side *sends* with. So the
//! [`SrtpSession`] of a call protects with our line's key and unprotects with the
//! peer's. Keys come from the OS RNG, one fresh key per call and direction, and never
//! appear in `Debug` output: only [`CryptoAttribute::to_sdp_value`] writes them.
//!
//! Accepted: the five suites of [`SrtpSuite`], exactly one `inline:` key with optional
//! lifetime (`|2^31` or decimal) and MKI (`|1:4`), and the session parameters `KDR=`
//! and `WSH=`. Any other session parameter (`UNENCRYPTED_SRTP`, `FEC_ORDER`, ...) makes
//! the line unacceptable: the offer is skipped rather than half-honoured.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use rand::rngs::OsRng;
use rand::TryRngCore;
use std::fmt;

use super::context::{SrtpContext, SrtpOptions};
use super::error::SrtpError;
use super::session::SrtpSession;
use super::suite::SrtpSuite;

/// Longest key||salt (AES-256: 32 + 14).
const MAX_KEY_SALT: usize = 46;

/// Base64 decoder that accepts keys with or without `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an `a=crypto` line is unacceptable or a session cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdesError {
    /// The line does not follow the RFC 4568 grammar; names the field.
    #[error("malformed a=crypto: bad {0}")]
    Syntax(&'static str),
    /// The crypto suite is not one we implement.
    #[error("unsupported crypto suite {0:?}")]
    UnsupportedSuite(String),
    /// A session parameter we do not implement (the line is unacceptable).
    #[error("unsupported session parameter {0:?}")]
    UnsupportedSessionParameter(String),
    /// More than one `inline:` key (MKI-switched keys are not supported).
    #[error("more than one key in a=crypto")]
    MultipleKeys,
    /// The decoded key||salt has the wrong length for the suite.
    #[error("key||salt must be {expected} bytes, got {got}")]
    KeyLength {
        /// Bytes the suite needs.
        expected: usize,
        /// Bytes decoded.
        got: usize,
    },
    /// The key lifetime is zero or larger than 2^48.
    #[error("invalid key lifetime")]
    Lifetime,
    /// The MKI value does not fit its length, or the length is not 1..=128.
    #[error("invalid MKI")]
    Mki,
    /// No offered line was acceptable.
    #[error("no acceptable a=crypto offer")]
    NoAcceptableOffer,
    /// Local and remote lines name different suites.
    #[error("local suite {local} differs from remote suite {remote}")]
    SuiteMismatch {
        /// Our suite.
        local: SrtpSuite,
        /// The peer's suite.
        remote: SrtpSuite,
    },
    /// The OS random number generator failed.
    #[error("OS random number generator failed")]
    Rng,
    /// The SRTP context refused the parameters.
    #[error(transparent)]
    Srtp(#[from] SrtpError),
}

/// The MKI of an `a=crypto` key: `value:length` (length in bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdesMki {
    /// MKI value.
    pub value: u64,
    /// Length in bytes on the wire (1..=128).
    pub len: u8,
}

impl SdesMki {
    /// The MKI as carried in packets: `value` big-endian in `len` bytes.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut out = vec![0u8; usize::from(self.len)];
        let be = self.value.to_be_bytes();
        let n = out.len().min(8);
        let start = out.len() - n;
        out[start..].copy_from_slice(&be[8 - n..]);
        out
    }
}

/// One parsed or generated `a=crypto` attribute.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag that pairs offer and answer lines.
    pub tag: u32,
    /// The crypto suite.
    pub suite: SrtpSuite,
    key_salt: [u8; MAX_KEY_SALT],
    /// Master key lifetime in packets, if given.
    pub lifetime: Option<u64>,
    /// MKI, if given.
    pub mki: Option<SdesMki>,
    /// Key derivation rate exponent (`KDR=n` means 2^n), if given.
    pub kdr: Option<u8>,
    /// Replay window size hint (`WSH=`), if given.
    pub wsh: Option<u32>,
}

impl fmt::Debug for CryptoAttribute {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("key", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .field("kdr", &self.kdr)
            .field("wsh", &self.wsh)
            .finish()
    }
}

impl CryptoAttribute {
    /// A fresh attribute with a new master key and salt from the OS RNG.
    pub fn generate(tag: u32, suite: SrtpSuite) -> Result<CryptoAttribute, SdesError> {
        let mut key_salt = [0u8; MAX_KEY_SALT];
        let n = suite.key_len() + suite.salt_len();
        OsRng
            .try_fill_bytes(&mut key_salt[..n])
            .map_err(|_| SdesError::Rng)?;
        Ok(CryptoAttribute {
            tag,
            suite,
            key_salt,
            lifetime: None,
            mki: None,
            kdr: None,
            wsh: None,
        })
    }

    /// Parses an attribute value (`1 AES_CM_128_HMAC_SHA1_80 inline:...`); a leading
    /// `a=crypto:` or `crypto:` is accepted too.
    pub fn parse(line: &str) -> Result<CryptoAttribute, SdesError> {
        let line = line.trim();
        let line = line.strip_prefix("a=").unwrap_or(line);
        let line = line.strip_prefix("crypto:").unwrap_or(line);
        let mut fields = line.split_ascii_whitespace();
        let tag = fields.next().ok_or(SdesError::Syntax("tag"))?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SdesError::Syntax("tag"));
        }
        let tag: u32 = tag.parse().map_err(|_| SdesError::Syntax("tag"))?;
        let suite_name = fields.next().ok_or(SdesError::Syntax("crypto-suite"))?;
        let suite = SrtpSuite::from_sdes_name(suite_name)
            .ok_or_else(|| SdesError::UnsupportedSuite(suite_name.to_owned()))?;
        let key_params = fields.next().ok_or(SdesError::Syntax("key-params"))?;
        if key_params.contains(';') {
            return Err(SdesError::MultipleKeys);
        }
        let key_info = key_params
            .strip_prefix("inline:")
            .ok_or(SdesError::Syntax("key-method"))?;
        let mut parts = key_info.split('|');
        let b64 = parts.next().ok_or(SdesError::Syntax("key-salt"))?;
        let mut decoded = [0u8; MAX_KEY_SALT + 3];
        let got = LENIENT
            .decode_slice(b64, &mut decoded)
            .map_err(|_| SdesError::Syntax("key-salt base64"))?;
        let expected = suite.key_len() + suite.salt_len();
        if got != expected {
            return Err(SdesError::KeyLength { expected, got });
        }
        let mut key_salt = [0u8; MAX_KEY_SALT];
        key_salt[..got].copy_from_slice(&decoded[..got]);
        let (mut lifetime, mut mki) = (None, None);
        for part in parts {
            if let Some((value, len)) = part.split_once(':') {
                if mki.is_some() {
                    return Err(SdesError::Syntax("MKI"));
                }
                mki = Some(parse_mki(value, len)?);
            } else {
                if lifetime.is_some() || mki.is_some() {
                    return Err(SdesError::Syntax("lifetime"));
                }
                lifetime = Some(parse_lifetime(part)?);
            }
        }
        let (mut kdr, mut wsh) = (None, None);
        for param in fields {
            if let Some(v) = param.strip_prefix("KDR=") {
                let n: u8 = digits(v).ok_or(SdesError::Syntax("KDR"))?;
                if n > 24 || kdr.is_some() {
                    return Err(SdesError::Syntax("KDR"));
                }
                kdr = Some(n);
            } else if let Some(v) = param.strip_prefix("WSH=") {
                let n: u32 = digits(v).ok_or(SdesError::Syntax("WSH"))?;
                if n < 64 || wsh.is_some() {
                    return Err(SdesError::Syntax("WSH"));
                }
                wsh = Some(n);
            } else {
                let name = param.split('=').next().unwrap_or(param);
                return Err(SdesError::UnsupportedSessionParameter(name.to_owned()));
            }
        }
        Ok(CryptoAttribute {
            tag,
            suite,
            key_salt,
            lifetime,
            mki,
            kdr,
            wsh,
        })
    }

    /// The attribute value for SDP (`a=crypto:` + this). Contains the key: write it
    /// only into SDP, never into logs.
    pub fn to_sdp_value(&self) -> String {
        let n = self.suite.key_len() + self.suite.salt_len();
        let mut s = format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.sdes_name(),
            STANDARD.encode(&self.key_salt[..n])
        );
        if let Some(l) = self.lifetime {
            if l.is_power_of_two() {
                s.push_str(&format!("|2^{}", l.trailing_zeros()));
            } else {
                s.push_str(&format!("|{l}"));
            }
        }
        if let Some(m) = self.mki {
            s.push_str(&format!("|{}:{}", m.value, m.len));
        }
        if let Some(k) = self.kdr {
            s.push_str(&format!(" KDR={k}"));
        }
        if let Some(w) = self.wsh {
            s.push_str(&format!(" WSH={w}"));
        }
        s
    }

    /// The master key.
    pub fn master_key(&self) -> &[u8] {
        &self.key_salt[..self.suite.key_len()]
    }

    /// The master salt.
    pub fn master_salt(&self) -> &[u8] {
        let k = self.suite.key_len();
        &self.key_salt[k..k + self.suite.salt_len()]
    }

    /// An SRTP context keyed by this attribute.
    pub fn context(&self) -> Result<SrtpContext, SdesError> {
        let mki = self.mki.map(SdesMki::to_bytes);
        let options = SrtpOptions {
            mki: mki.as_deref(),
            key_derivation_rate: self.kdr.map_or(0, |n| 1u64 << n),
            key_lifetime: self.lifetime,
        };
        Ok(SrtpContext::with_options(
            self.suite,
            self.master_key(),
            self.master_salt(),
            &options,
        )?)
    }
}

fn digits<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_lifetime(s: &str) -> Result<u64, SdesError> {
    let packets = if let Some(exp) = s.strip_prefix("2^") {
        let e: u32 = digits(exp).ok_or(SdesError::Syntax("lifetime"))?;
        if e > 48 {
            return Err(SdesError::Lifetime);
        }
        1u64 << e
    } else {
        digits(s).ok_or(SdesError::Syntax("lifetime"))?
    };
    if packets == 0 || packets > 1 << 48 {
        return Err(SdesError::Lifetime);
    }
    Ok(packets)
}

fn parse_mki(value: &str, len: &str) -> Result<SdesMki, SdesError> {
    let value: u64 = digits(value).ok_or(SdesError::Mki)?;
    let len: u8 = digits(len).ok_or(SdesError::Mki)?;
    if len == 0 || len > 128 || (len < 8 && value >> (8 * u32::from(len)) != 0) {
        return Err(SdesError::Mki);
    }
    Ok(SdesMki { value, len })
}

/// Fresh offer lines, one per suite in the order given, tags 1, 2, ...
pub fn offer(suites: &[SrtpSuite]) -> Result<Vec<CryptoAttribute>, SdesError> {
    (1u32..)
        .zip(suites)
        .map(|(tag, &suite)| CryptoAttribute::generate(tag, suite))
        .collect()
}

/// Answers an offer: picks the strongest acceptable line (unacceptable lines are
/// skipped) and returns it with our fresh answer line (same tag, suite and KDR).
pub fn answer<'a, I>(offered: I) -> Result<(CryptoAttribute, CryptoAttribute), SdesError>
where
    I: IntoIterator<Item = &'a str>,
{
    let best = offered
        .into_iter()
        .filter_map(|line| CryptoAttribute::parse(line).ok())
        .min_by_key(|a| {
            SrtpSuite::STRONGEST_FIRST
                .iter()
                .position(|s| *s == a.suite)
        })
        .ok_or(SdesError::NoAcceptableOffer)?;
    let mut ours = CryptoAttribute::generate(best.tag, best.suite)?;
    ours.kdr = best.kdr;
    Ok((best, ours))
}

/// The offerer's side: finds which of our offered lines the answer accepted (same tag
/// and suite) and builds the session from it and the answer's key.
pub fn accept_answer(
    offered: &[CryptoAttribute],
    answer_line: &str,
) -> Result<SrtpSession, SdesError> {
    let theirs = CryptoAttribute::parse(answer_line)?;
    let ours = offered
        .iter()
        .find(|o| o.tag == theirs.tag && o.suite == theirs.suite)
        .ok_or(SdesError::NoAcceptableOffer)?;
    session_from_sdes(ours, &theirs)
}

/// Builds the SRTP contexts of a call: outbound from our line, inbound from the peer's.
pub fn session_from_sdes(
    local: &CryptoAttribute,
    remote: &CryptoAttribute,
) -> Result<SrtpSession, SdesError> {
    if local.suite != remote.suite {
        return Err(SdesError::SuiteMismatch {
            local: local.suite,
            remote: remote.suite,
        });
    }
    Ok(SrtpSession {
        inbound: remote.context()?,
        outbound: local.context()?,
    })
}

#[cfg(test)]
mod rfc4568 {
    use super::*;

    // RFC 4568 §9.1 example offer line.
    const RFC_LINE: &str = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 \
        inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

    #[test]
    fn parses_the_rfc_example() {
        let a = CryptoAttribute::parse(RFC_LINE).unwrap();
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, SrtpSuite::AesCm128HmacSha1_80);
        assert_eq!(a.lifetime, Some(1 << 20));
        assert_eq!(a.mki, Some(SdesMki { value: 1, len: 4 }));
        assert_eq!(a.mki.unwrap().to_bytes(), vec![0, 0, 0, 1]);
        let raw = STANDARD
            .decode("PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR")
            .unwrap();
        assert_eq!(a.master_key(), &raw[..16]);
        assert_eq!(a.master_salt(), &raw[16..]);
        // Round trip through generation.
        assert_eq!(
            format!("a=crypto:{}", a.to_sdp_value()),
            RFC_LINE.replace("        ", "")
        );
        // Tampered twin: one base64 character fewer is a bad key length.
        let short = RFC_LINE.replace("aVBR|", "aVB|");
        assert!(CryptoAttribute::parse(&short).is_err());
    }

    #[test]
    fn unacceptable_lines() {
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let cases = [
            format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTP"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {key} FEC_ORDER=FEC_SRTP"),
            format!("1 F8_128_HMAC_SHA1_80 {key}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {key};{key}"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^49"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {key}|256:1"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {key}|1:0"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {key} KDR=25"),
            format!("1 AES_CM_128_HMAC_SHA1_80 {key} WSH=10"),
            format!("x AES_CM_128_HMAC_SHA1_80 {key}"),
            format!("1 AEAD_AES_128_GCM {key}"),
            "1 AES_CM_128_HMAC_SHA1_80 uri:https://example.invalid/key".to_owned(),
            "1 AES_CM_128_HMAC_SHA1_80 inline:!!!!".to_owned(),
            "1".to_owned(),
            String::new(),
        ];
        for line in &cases {
            assert!(
                CryptoAttribute::parse(line).is_err(),
                "{line} must be refused"
            );
        }
        let ok = CryptoAttribute::parse(&format!(
            "7 AES_CM_128_HMAC_SHA1_32 {key}|1048576 KDR=4 WSH=128"
        ))
        .unwrap();
        assert_eq!(
            (ok.tag, ok.lifetime, ok.kdr, ok.wsh),
            (7, Some(1_048_576), Some(4), Some(128))
        );
        assert!(ok.context().is_ok());
    }

    #[test]
    fn answer_picks_the_strongest_acceptable_offer() {
        let offers = offer(&[
            SrtpSuite::AesCm128HmacSha1_32,
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AeadAes128Gcm,
        ])
        .unwrap();
        let mut lines: Vec<String> = offers.iter().map(CryptoAttribute::to_sdp_value).collect();
        // An unacceptable (stronger) line is skipped, not half-honoured.
        lines.push(format!(
            "{} UNENCRYPTED_SRTCP",
            CryptoAttribute::generate(9, SrtpSuite::AeadAes256Gcm)
                .unwrap()
                .to_sdp_value()
        ));
        let (theirs, ours) = answer(lines.iter().map(String::as_str)).unwrap();
        assert_eq!(theirs.suite, SrtpSuite::AeadAes128Gcm);
        assert_eq!(theirs.tag, 3);
        assert_eq!(ours.tag, 3);
        assert_eq!(theirs, offers[2]);
        assert_ne!(
            ours.master_key(),
            theirs.master_key(),
            "fresh key per direction"
        );
        assert!(matches!(
            answer(["1 NULL_HMAC inline:AAAA"]),
            Err(SdesError::NoAcceptableOffer)
        ));
    }

    #[test]
    fn offerer_accepts_the_answer_by_tag() {
        let offered = offer(&[SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AeadAes128Gcm]).unwrap();
        let lines: Vec<String> = offered.iter().map(CryptoAttribute::to_sdp_value).collect();
        let (seen, ours) = answer(lines.iter().map(String::as_str)).unwrap();
        let mut caller = accept_answer(&offered, &ours.to_sdp_value()).unwrap();
        let mut callee = SrtpSession::from_sdes(&ours, &seen).unwrap();
        carry(&mut caller, &mut callee);
        carry(&mut callee, &mut caller);
        // Tampered twin: an answer naming a tag we never offered is refused.
        let mut wrong = ours.clone();
        wrong.tag = 9;
        assert!(accept_answer(&offered, &wrong.to_sdp_value()).is_err());
    }

    #[test]
    fn fresh_keys_and_no_key_in_debug() {
        let a = CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_80).unwrap();
        let b = CryptoAttribute::generate(1, SrtpSuite::AesCm128HmacSha1_80).unwrap();
        assert_ne!(a.master_key(), b.master_key());
        let b64 = STANDARD.encode([a.master_key(), a.master_salt()].concat());
        let dbg = format!("{a:?} {:?}", a.context().unwrap());
        assert!(
            !dbg.contains(&b64) && !dbg.contains(&hex::encode(a.master_key())),
            "{dbg}"
        );
        assert!(a.to_sdp_value().contains(&b64));
    }

    fn carry(tx: &mut SrtpSession, rx: &mut SrtpSession) {
        let plain = [0x80u8, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 42, 43, 44];
        let mut buf = [0u8; 64];
        buf[..plain.len()].copy_from_slice(&plain);
        let n = tx.outbound.protect_rtp(&mut buf, plain.len()).unwrap();
        let sent = buf;
        let m = rx.inbound.unprotect_rtp(&mut buf[..n]).unwrap();
        assert_eq!(&buf[..m], &plain);
        // Tampered twin: the receiver's own (outbound) key does not open it.
        let mut copy = sent;
        assert!(rx.outbound.clone().unprotect_rtp(&mut copy[..n]).is_err());
    }

    #[test]
    fn offer_answer_session_carries_media_both_ways() {
        for suite in SrtpSuite::STRONGEST_FIRST {
            let mut local = CryptoAttribute::generate(1, suite).unwrap();
            local.mki = Some(SdesMki { value: 1, len: 4 });
            local.lifetime = Some(1 << 31);
            let offered = local.to_sdp_value();
            let (remote_seen, answer_attr) = answer([offered.as_str()]).unwrap();
            let answer_line = answer_attr.to_sdp_value();
            let mut alice =
                session_from_sdes(&local, &CryptoAttribute::parse(&answer_line).unwrap()).unwrap();
            let mut bob = session_from_sdes(&answer_attr, &remote_seen).unwrap();
            carry(&mut alice, &mut bob);
            carry(&mut bob, &mut alice);
        }
    }
}
