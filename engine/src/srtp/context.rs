//! `SrtpContext`: protect and unprotect SRTP/SRTCP packets in place.

use aes::cipher::KeyInit;
use aes::{Aes128Enc, Aes256Enc};
use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes128Gcm, Aes256Gcm};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use std::fmt;
use subtle::ConstantTimeEq;

use super::error::SrtpError;
use super::kdf::{self, ctr_xor};
use super::replay::ReplayWindow;
use super::suite::SrtpSuite;

type HmacSha1 = Hmac<Sha1>;

/// SRTP master key lifetime in packets (RFC 3711 §9.2).
const SRTP_MAX_PACKETS: u64 = 1 << 48;
/// SRTCP master key lifetime in packets.
const SRTCP_MAX_PACKETS: u64 = 1 << 31;
/// Longest MKI accepted (RFC 4568 allows 1..=128 bytes).
const MAX_MKI_LEN: usize = 128;
/// Bit 31 of the SRTCP trailer word: the payload is encrypted.
const SRTCP_E_FLAG: u32 = 0x8000_0000;

/// Options beyond suite, key, salt and MKI.
#[derive(Debug, Clone, Copy, Default)]
pub struct SrtpOptions<'a> {
    /// MKI carried in every packet, if any (1..=128 bytes).
    pub mki: Option<&'a [u8]>,
    /// Key derivation rate: 0 (derive once) or a power of two up to 2^24.
    pub key_derivation_rate: u64,
    /// Master key lifetime in packets (SDES `|2^n`); capped at 2^48 SRTP and 2^31 SRTCP.
    pub key_lifetime: Option<u64>,
}

/// AES in counter mode with the expanded key kept.
#[derive(Clone)]
enum CmCipher {
    A128(Aes128Enc),
    A256(Aes256Enc),
}

impl CmCipher {
    #[inline]
    fn xor(&self, iv: &[u8; 16], data: &mut [u8]) {
        match self {
            CmCipher::A128(aes) => ctr_xor(aes, iv, data),
            CmCipher::A256(aes) => ctr_xor(aes, iv, data),
        }
    }
}

/// AES-GCM with the expanded key and GHASH key kept.
#[derive(Clone)]
enum GcmCipher {
    A128(Aes128Gcm),
    A256(Aes256Gcm),
}

impl GcmCipher {
    #[inline]
    fn seal(&self, nonce: &[u8; 12], aad: &[u8], data: &mut [u8]) -> Result<[u8; 16], SrtpError> {
        let nonce = (*nonce).into();
        let tag = match self {
            GcmCipher::A128(g) => g.encrypt_inout_detached(&nonce, aad, data.into()),
            GcmCipher::A256(g) => g.encrypt_inout_detached(&nonce, aad, data.into()),
        };
        // Fails only beyond 2^36 bytes of plaintext.
        tag.map(Into::into).map_err(|_| SrtpError::TooLong)
    }

    #[inline]
    fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        data: &mut [u8],
        tag: &[u8; 16],
    ) -> Result<(), SrtpError> {
        let nonce = (*nonce).into();
        let tag = (*tag).into();
        match self {
            GcmCipher::A128(g) => g.decrypt_inout_detached(&nonce, aad, data.into(), &tag),
            GcmCipher::A256(g) => g.decrypt_inout_detached(&nonce, aad, data.into(), &tag),
        }
        .map_err(|_| SrtpError::AuthenticationFailed)
    }
}

/// Session keys for SRTP or SRTCP: the expanded cipher and the pre-keyed HMAC.
// Inline on purpose: one per stream, and boxing would add a pointer chase per packet.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum SessionKeys {
    Cm {
        aes: CmCipher,
        mac: HmacSha1,
        salt: [u8; 14],
    },
    Gcm {
        aead: GcmCipher,
        salt: [u8; 12],
    },
}

impl SessionKeys {
    /// Builds session keys from raw session key, salt and (AES-CM) auth key.
    fn from_session(suite: SrtpSuite, key: &[u8], salt: &[u8], auth: &[u8]) -> SessionKeys {
        // Lengths are fixed by the suite and checked by the callers.
        let mut s14 = [0u8; 14];
        let mut s12 = [0u8; 12];
        if suite.is_aead() {
            s12.copy_from_slice(&salt[..12]);
        } else {
            s14.copy_from_slice(&salt[..14]);
        }
        let mac = || HmacSha1::new_from_slice(auth).expect("HMAC accepts any key length");
        match suite {
            SrtpSuite::AesCm256HmacSha1_80 => SessionKeys::Cm {
                aes: CmCipher::A256(Aes256Enc::new_from_slice(key).expect("suite key length")),
                mac: mac(),
                salt: s14,
            },
            SrtpSuite::AeadAes128Gcm => SessionKeys::Gcm {
                aead: GcmCipher::A128(Aes128Gcm::new_from_slice(key).expect("suite key length")),
                salt: s12,
            },
            SrtpSuite::AeadAes256Gcm => SessionKeys::Gcm {
                aead: GcmCipher::A256(Aes256Gcm::new_from_slice(key).expect("suite key length")),
                salt: s12,
            },
            SrtpSuite::AesCm128HmacSha1_80 | SrtpSuite::AesCm128HmacSha1_32 => SessionKeys::Cm {
                aes: CmCipher::A128(Aes128Enc::new_from_slice(key).expect("suite key length")),
                mac: mac(),
                salt: s14,
            },
        }
    }

    /// Derives the SRTP (or SRTCP) session keys at `r` (RFC 3711 §4.3).
    fn derive(master: &MasterKey, rtcp: bool, r: u64) -> SessionKeys {
        let suite = master.suite;
        let (lk, la, ls) = if rtcp {
            (
                kdf::LABEL_RTCP_KEY,
                kdf::LABEL_RTCP_AUTH,
                kdf::LABEL_RTCP_SALT,
            )
        } else {
            (kdf::LABEL_RTP_KEY, kdf::LABEL_RTP_AUTH, kdf::LABEL_RTP_SALT)
        };
        let (kl, sl) = (suite.key_len(), suite.salt_len());
        let salt_in = &master.salt[..sl];
        let mut key = [0u8; 32];
        let mut salt = [0u8; 14];
        let mut auth = [0u8; 20];
        let mk = &master.key[..kl];
        if kl == 32 {
            let prf = Aes256Enc::new_from_slice(mk).expect("suite key length");
            kdf::derive(&prf, salt_in, lk, r, &mut key[..kl]);
            kdf::derive(&prf, salt_in, ls, r, &mut salt[..sl]);
            kdf::derive(&prf, salt_in, la, r, &mut auth);
        } else {
            let prf = Aes128Enc::new_from_slice(mk).expect("suite key length");
            kdf::derive(&prf, salt_in, lk, r, &mut key[..kl]);
            kdf::derive(&prf, salt_in, ls, r, &mut salt[..sl]);
            kdf::derive(&prf, salt_in, la, r, &mut auth);
        }
        SessionKeys::from_session(suite, &key[..kl], &salt[..sl], &auth)
    }
}

/// Master key material, kept for re-derivation with a non-zero key derivation rate.
#[derive(Clone)]
struct MasterKey {
    suite: SrtpSuite,
    key: [u8; 32],
    salt: [u8; 14],
}

/// Fixed-size MKI storage (no allocation).
#[derive(Clone, Copy)]
struct Mki {
    bytes: [u8; MAX_MKI_LEN],
    len: usize,
}

impl Mki {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// SRTP/SRTCP cryptographic context for one direction of one master key.
///
/// Use one context for sending (`protect_*`) and another for receiving (`unprotect_*`):
/// each keeps its own ROC, replay windows and lifetime counters. See [`super::SrtpSession`].
#[derive(Clone)]
pub struct SrtpContext {
    suite: SrtpSuite,
    master: MasterKey,
    mki: Option<Mki>,
    kdr: u64,
    rtp_keys: SessionKeys,
    rtp_r: u64,
    rtcp_keys: SessionKeys,
    rtcp_r: u64,
    rtp_window: ReplayWindow,
    /// Until the first packet is accepted: the highest index of the context this one
    /// replaced on a re-key, a second guess at the rollover counter (see
    /// [`SrtpContext::continue_from`]).
    rtp_carried: Option<u64>,
    rtcp_window: ReplayWindow,
    next_rtcp_index: u32,
    rtp_packets: u64,
    rtcp_packets: u64,
    rtp_limit: u64,
    rtcp_limit: u64,
}

impl fmt::Debug for SrtpContext {
    /// Never prints key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpContext")
            .field("suite", &self.suite)
            .field("mki_len", &self.mki.map(|m| m.len))
            .field("kdr", &self.kdr)
            .field("rtp_highest_index", &self.rtp_window.highest())
            .field("rtp_continued_from", &self.rtp_carried)
            .field("next_rtcp_index", &self.next_rtcp_index)
            .field("rtp_packets", &self.rtp_packets)
            .field("rtcp_packets", &self.rtcp_packets)
            .finish_non_exhaustive()
    }
}

/// Which of the two key sets an operation uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Rtp,
    Rtcp,
}

impl SrtpContext {
    /// A context with key derivation rate 0 and the full key lifetime.
    pub fn new(
        suite: SrtpSuite,
        master_key: &[u8],
        master_salt: &[u8],
        mki: Option<&[u8]>,
    ) -> Result<SrtpContext, SrtpError> {
        Self::with_options(
            suite,
            master_key,
            master_salt,
            &SrtpOptions {
                mki,
                ..SrtpOptions::default()
            },
        )
    }

    /// A context with explicit options (key derivation rate, lifetime, MKI).
    pub fn with_options(
        suite: SrtpSuite,
        master_key: &[u8],
        master_salt: &[u8],
        options: &SrtpOptions<'_>,
    ) -> Result<SrtpContext, SrtpError> {
        if master_key.len() != suite.key_len() {
            return Err(SrtpError::InvalidKeyLength {
                expected: suite.key_len(),
                got: master_key.len(),
            });
        }
        if master_salt.len() != suite.salt_len() {
            return Err(SrtpError::InvalidSaltLength {
                expected: suite.salt_len(),
                got: master_salt.len(),
            });
        }
        let kdr = options.key_derivation_rate;
        if kdr != 0 && (!kdr.is_power_of_two() || kdr > 1 << 24) {
            return Err(SrtpError::InvalidKeyDerivationRate(kdr));
        }
        let mki = match options.mki {
            None => None,
            Some(m) if m.is_empty() || m.len() > MAX_MKI_LEN => {
                return Err(SrtpError::InvalidMki(m.len()))
            }
            Some(m) => {
                let mut bytes = [0u8; MAX_MKI_LEN];
                bytes[..m.len()].copy_from_slice(m);
                Some(Mki {
                    bytes,
                    len: m.len(),
                })
            }
        };
        let mut master = MasterKey {
            suite,
            key: [0; 32],
            salt: [0; 14],
        };
        master.key[..master_key.len()].copy_from_slice(master_key);
        master.salt[..master_salt.len()].copy_from_slice(master_salt);
        let lifetime = options.key_lifetime.unwrap_or(u64::MAX);
        Ok(SrtpContext {
            suite,
            rtp_keys: SessionKeys::derive(&master, false, 0),
            rtcp_keys: SessionKeys::derive(&master, true, 0),
            master,
            mki,
            kdr,
            rtp_r: 0,
            rtcp_r: 0,
            rtp_window: ReplayWindow::default(),
            rtcp_window: ReplayWindow::default(),
            next_rtcp_index: 0,
            rtp_packets: 0,
            rtcp_packets: 0,
            rtp_limit: lifetime.min(SRTP_MAX_PACKETS),
            rtcp_limit: lifetime.min(SRTCP_MAX_PACKETS),
            rtp_carried: None,
        })
    }

    /// The suite of this context.
    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// Bytes `protect_rtp` adds to a packet (tag and MKI).
    pub fn rtp_overhead(&self) -> usize {
        self.suite.rtp_overhead() + self.mki_len()
    }

    /// Bytes `protect_rtcp` adds to a packet (E+index word, tag and MKI).
    pub fn rtcp_overhead(&self) -> usize {
        self.suite.rtcp_overhead() + self.mki_len()
    }

    /// SRTP packets protected or accepted under this master key.
    pub fn rtp_packets(&self) -> u64 {
        self.rtp_packets
    }

    /// SRTCP packets protected or accepted under this master key.
    pub fn rtcp_packets(&self) -> u64 {
        self.rtcp_packets
    }

    /// The current rollover counter (of the highest index protected or accepted).
    pub fn roc(&self) -> u32 {
        self.rtp_window.highest().map_or(0, |i| (i >> 16) as u32)
    }

    /// Sets the rollover counter and highest sequence number known from signalling
    /// (e.g. joining a stream mid-way); the next packets are estimated from there.
    pub fn set_roc(&mut self, roc: u32, seq: u16) {
        self.rtp_carried = None;
        self.rtp_window
            .start_at((u64::from(roc) << 16) | u64::from(seq));
    }

    /// Makes this context, the peer's new key on a re-key, also try the rollover
    /// counter where `old` (the context it replaces) left off. RFC 3711 keeps a stream's
    /// index across a master-key change and some senders do (libsrtp's `srtp_update`);
    /// others start the new key's stream afresh at ROC 0. Until this context accepts a
    /// packet, each packet is tried at the index estimated from `old`'s highest (only
    /// above it) and, if that fails to authenticate, at the fresh estimate; the first
    /// that authenticates decides. Until then a packet that fails costs two
    /// authentication passes instead of one. Without this, a continuing sender re-keyed after its first sequence
    /// wrap (within 22 minutes of a 50 packet/s call) would fail every packet.
    pub fn continue_from(&mut self, old: &SrtpContext) {
        if self.rtp_window.highest().is_none() {
            self.rtp_carried = old.rtp_window.highest().or(old.rtp_carried);
        }
    }

    /// Sets the next SRTCP index to send (tests and re-keying; it starts at 0).
    pub fn set_next_srtcp_index(&mut self, index: u32) {
        self.next_rtcp_index = index;
    }

    fn mki_len(&self) -> usize {
        self.mki.map_or(0, |m| m.len)
    }

    /// Replaces the session keys directly (known-answer tests of the transforms).
    #[cfg(test)]
    pub(crate) fn set_session_keys(&mut self, rtcp: bool, key: &[u8], salt: &[u8], auth: &[u8]) {
        let keys = SessionKeys::from_session(self.suite, key, salt, auth);
        if rtcp {
            self.rtcp_keys = keys;
        } else {
            self.rtp_keys = keys;
        }
    }

    fn r_for(&self, index: u64) -> u64 {
        // r = index DIV kdr, and 0 when the rate is 0 (RFC 3711 §4.3.1).
        index.checked_div(self.kdr).unwrap_or(0)
    }

    /// Session keys for `index`: the current ones, or (non-zero KDR) freshly derived
    /// ones returned for the caller to install once the packet is accepted.
    fn keys_for(&self, stream: Stream, index: u64) -> Option<(u64, SessionKeys)> {
        let r = self.r_for(index);
        let current = match stream {
            Stream::Rtp => self.rtp_r,
            Stream::Rtcp => self.rtcp_r,
        };
        (r != current).then(|| {
            (
                r,
                SessionKeys::derive(&self.master, stream == Stream::Rtcp, r),
            )
        })
    }

    fn install_keys(&mut self, stream: Stream, fresh: Option<(u64, SessionKeys)>) {
        if let Some((r, keys)) = fresh {
            let (cur_r, cur) = match stream {
                Stream::Rtp => (&mut self.rtp_r, &mut self.rtp_keys),
                Stream::Rtcp => (&mut self.rtcp_r, &mut self.rtcp_keys),
            };
            if r > *cur_r {
                *cur_r = r;
                *cur = keys;
            }
        }
    }

    /// Protects the RTP packet in `buf[..len]` in place, appending MKI and tag in the
    /// tail room of `buf`. Returns the SRTP packet length.
    #[must_use = "the protected packet must be sent"]
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len > buf.len() {
            return Err(SrtpError::LengthOutOfRange {
                len,
                available: buf.len(),
            });
        }
        let hdr = rtp_header_len(&buf[..len])?;
        let tag_len = self.suite.rtp_tag_len();
        let mki_len = self.mki_len();
        let needed = len + mki_len + tag_len;
        if needed > buf.len() {
            return Err(SrtpError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        if self.rtp_packets >= self.rtp_limit {
            return Err(SrtpError::KeyLifetimeExhausted);
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = [buf[8], buf[9], buf[10], buf[11]];
        let index = self.rtp_window.estimate_rtp_index(seq)?;
        self.rtp_window.check(index)?;
        let fresh = self.keys_for(Stream::Rtp, index);
        let keys = fresh.as_ref().map_or(&self.rtp_keys, |(_, k)| k);
        let roc = ((index >> 16) as u32).to_be_bytes();
        match keys {
            SessionKeys::Cm { aes, mac, salt } => {
                aes.xor(&cm_iv(salt, ssrc, index), &mut buf[hdr..len]);
                if let Some(m) = &self.mki {
                    buf[len..len + mki_len].copy_from_slice(m.as_slice());
                }
                let tag = hmac_tag(mac, &buf[..len], &roc);
                buf[len + mki_len..needed].copy_from_slice(&tag[..tag_len]);
            }
            SessionKeys::Gcm { aead, salt } => {
                let nonce = gcm_iv(salt, ssrc, index);
                let (head, rest) = buf.split_at_mut(hdr);
                let tag = aead.seal(&nonce, head, &mut rest[..len - hdr])?;
                buf[len..len + 16].copy_from_slice(&tag);
                if let Some(m) = &self.mki {
                    buf[len + 16..needed].copy_from_slice(m.as_slice());
                }
            }
        }
        self.rtp_window.commit(index);
        self.install_keys(Stream::Rtp, fresh);
        self.rtp_packets += 1;
        Ok(needed)
    }

    /// Starts fetching what [`SrtpContext::unprotect_rtp`] reads: the RTP session keys
    /// (expanded AES key, pre-keyed HMAC state), the replay window and the limits.
    pub(crate) fn prefetch_unprotect_rtp(&self) {
        crate::prefetch::value(&self.suite);
        crate::prefetch::value(&self.mki);
        crate::prefetch::value(&self.kdr);
        crate::prefetch::value(&self.rtp_keys);
        crate::prefetch::value(&self.rtp_r);
        crate::prefetch::value(&self.rtp_window);
        crate::prefetch::value(&self.rtp_packets);
        crate::prefetch::value(&self.rtp_limit);
    }

    /// Verifies and decrypts the SRTP packet `buf` in place. Returns the RTP packet
    /// length (`buf[..n]`). On any error the packet must be dropped.
    #[must_use = "an unprotect error means the packet must be dropped"]
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf.len();
        let tag_len = self.suite.rtp_tag_len();
        let mki_len = self.mki_len();
        if len < 12 + tag_len + mki_len {
            return Err(SrtpError::TooShort);
        }
        let end = len - tag_len - mki_len;
        let hdr = rtp_header_len(&buf[..end])?;
        let (mki_at, tag_at) = if self.suite.is_aead() {
            (end + tag_len, end)
        } else {
            (end, end + mki_len)
        };
        if let Some(m) = &self.mki {
            if buf[mki_at..mki_at + mki_len] != *m.as_slice() {
                return Err(SrtpError::UnknownMki);
            }
        }
        if self.rtp_packets >= self.rtp_limit {
            return Err(SrtpError::KeyLifetimeExhausted);
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let index = self.rtp_window.estimate_rtp_index(seq)?;
        self.rtp_window.check(index)?;
        if let Some(top) = self.rtp_carried {
            if let Some((c, fresh)) = self.open_rtp_continued(buf, hdr, end, tag_at, top, index) {
                self.accept_rtp(c, fresh);
                return Ok(end);
            }
        }
        let fresh = self.keys_for(Stream::Rtp, index);
        let keys = fresh.as_ref().map_or(&self.rtp_keys, |(_, k)| k);
        open_rtp(keys, self.suite, buf, hdr, end, tag_at, index)?;
        self.accept_rtp(index, fresh);
        Ok(end)
    }

    /// Records the SRTP packet of `index` as accepted (it authenticated).
    #[inline(always)]
    fn accept_rtp(&mut self, index: u64, fresh: Option<(u64, SessionKeys)>) {
        if self.rtp_carried.is_some() {
            self.rtp_carried = None;
        }
        self.rtp_window.commit(index);
        self.install_keys(Stream::Rtp, fresh);
        self.rtp_packets += 1;
    }

    /// The first packets after a re-key ([`SrtpContext::continue_from`]): opens `buf`
    /// as the index continued from the old context's highest `top`, if that differs
    /// from `index` (the fresh estimate) and authenticates. Returns that index and the
    /// keys to install; `None` leaves `buf` untouched for the fresh try.
    #[cold]
    #[inline(never)]
    fn open_rtp_continued(
        &self,
        buf: &mut [u8],
        hdr: usize,
        end: usize,
        tag_at: usize,
        top: u64,
        index: u64,
    ) -> Option<(u64, Option<(u64, SessionKeys)>)> {
        let mut carried = ReplayWindow::default();
        carried.start_at(top);
        // A continuing sender sends above what the old key reached; at or below it are
        // packets already heard under the old key, a replay if the new key is the same.
        let c = carried
            .estimate_rtp_index(index as u16)
            .ok()
            .filter(|&c| c != index && c > top)?;
        let fresh = self.keys_for(Stream::Rtp, c);
        let keys = fresh.as_ref().map_or(&self.rtp_keys, |(_, k)| k);
        open_rtp(keys, self.suite, buf, hdr, end, tag_at, c).ok()?;
        Some((c, fresh))
    }

    /// Protects the RTCP compound packet in `buf[..len]` in place (always encrypted,
    /// E=1), appending the E+index word, MKI and tag. Returns the SRTCP length.
    #[must_use = "the protected packet must be sent"]
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len > buf.len() {
            return Err(SrtpError::LengthOutOfRange {
                len,
                available: buf.len(),
            });
        }
        check_rtcp_header(&buf[..len])?;
        let tag_len = self.suite.rtcp_tag_len();
        let mki_len = self.mki_len();
        let needed = len + 4 + mki_len + tag_len;
        if needed > buf.len() {
            return Err(SrtpError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        if self.rtcp_packets >= self.rtcp_limit
            || u64::from(self.next_rtcp_index) >= SRTCP_MAX_PACKETS
        {
            return Err(SrtpError::KeyLifetimeExhausted);
        }
        let index = self.next_rtcp_index;
        let trailer = (SRTCP_E_FLAG | index).to_be_bytes();
        let ssrc = [buf[4], buf[5], buf[6], buf[7]];
        let fresh = self.keys_for(Stream::Rtcp, u64::from(index));
        let keys = fresh.as_ref().map_or(&self.rtcp_keys, |(_, k)| k);
        match keys {
            SessionKeys::Cm { aes, mac, salt } => {
                aes.xor(&cm_iv(salt, ssrc, u64::from(index)), &mut buf[8..len]);
                buf[len..len + 4].copy_from_slice(&trailer);
                if let Some(m) = &self.mki {
                    buf[len + 4..len + 4 + mki_len].copy_from_slice(m.as_slice());
                }
                let tag = hmac_tag(mac, &buf[..len + 4], &[]);
                buf[len + 4 + mki_len..needed].copy_from_slice(&tag[..tag_len]);
            }
            SessionKeys::Gcm { aead, salt } => {
                let nonce = gcm_iv(salt, ssrc, u64::from(index));
                let mut aad = [0u8; 12];
                aad[..8].copy_from_slice(&buf[..8]);
                aad[8..].copy_from_slice(&trailer);
                let tag = aead.seal(&nonce, &aad, &mut buf[8..len])?;
                buf[len..len + 16].copy_from_slice(&tag);
                buf[len + 16..len + 20].copy_from_slice(&trailer);
                if let Some(m) = &self.mki {
                    buf[len + 20..needed].copy_from_slice(m.as_slice());
                }
            }
        }
        self.next_rtcp_index += 1;
        self.install_keys(Stream::Rtcp, fresh);
        self.rtcp_packets += 1;
        Ok(needed)
    }

    /// Verifies and (if E=1) decrypts the SRTCP packet `buf` in place. Returns the RTCP
    /// compound length (`buf[..n]`). On any error the packet must be dropped.
    #[must_use = "an unprotect error means the packet must be dropped"]
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf.len();
        let tag_len = self.suite.rtcp_tag_len();
        let mki_len = self.mki_len();
        if len < 8 + 4 + tag_len + mki_len {
            return Err(SrtpError::TooShort);
        }
        check_rtcp_header(buf)?;
        let aead = self.suite.is_aead();
        // AES-CM: hdr|ct|E+index|MKI|tag.  GCM: hdr|ct|tag|E+index|MKI.
        let (trailer_at, mki_at, tag_at, ct_end) = if aead {
            let t = len - mki_len - 4;
            (t, len - mki_len, t - tag_len, t - tag_len)
        } else {
            let t = len - tag_len - mki_len - 4;
            (t, t + 4, len - tag_len, t)
        };
        if let Some(m) = &self.mki {
            if buf[mki_at..mki_at + mki_len] != *m.as_slice() {
                return Err(SrtpError::UnknownMki);
            }
        }
        if self.rtcp_packets >= self.rtcp_limit {
            return Err(SrtpError::KeyLifetimeExhausted);
        }
        let mut trailer = [0u8; 4];
        trailer.copy_from_slice(&buf[trailer_at..trailer_at + 4]);
        let word = u32::from_be_bytes(trailer);
        let encrypted = word & SRTCP_E_FLAG != 0;
        let index = u64::from(word & !SRTCP_E_FLAG);
        self.rtcp_window.check(index)?;
        let ssrc = [buf[4], buf[5], buf[6], buf[7]];
        let fresh = self.keys_for(Stream::Rtcp, index);
        let keys = fresh.as_ref().map_or(&self.rtcp_keys, |(_, k)| k);
        match keys {
            SessionKeys::Cm { aes, mac, salt } => {
                let tag = hmac_tag(mac, &buf[..trailer_at + 4], &[]);
                if !bool::from(tag[..tag_len].ct_eq(&buf[tag_at..tag_at + tag_len])) {
                    return Err(SrtpError::AuthenticationFailed);
                }
                if encrypted {
                    aes.xor(&cm_iv(salt, ssrc, index), &mut buf[8..ct_end]);
                }
            }
            SessionKeys::Gcm { aead, salt } => {
                let nonce = gcm_iv(salt, ssrc, index);
                let mut tag = [0u8; 16];
                tag.copy_from_slice(&buf[tag_at..tag_at + 16]);
                if encrypted {
                    let mut aad = [0u8; 12];
                    aad[..8].copy_from_slice(&buf[..8]);
                    aad[8..].copy_from_slice(&trailer);
                    aead.open(&nonce, &aad, &mut buf[8..ct_end], &tag)?;
                } else {
                    // Authentication only: AAD = whole packet || E+index. Move the
                    // trailer next to the packet so the AAD is one slice.
                    buf[ct_end..ct_end + 4].copy_from_slice(&trailer);
                    let result = aead.open(&nonce, &buf[..ct_end + 4], &mut [], &tag);
                    buf[ct_end..ct_end + 4].copy_from_slice(&tag[..4]);
                    result?;
                }
            }
        }
        self.rtcp_window.commit(index);
        self.install_keys(Stream::Rtcp, fresh);
        self.rtcp_packets += 1;
        Ok(ct_end)
    }
}

/// Authenticates and decrypts `buf` (payload `hdr..end`, tag at `tag_at`) with `keys`
/// as the SRTP packet of `index`; `buf` is left untouched when it does not authenticate
/// (AES-CM compares the tag before the keystream; aes-gcm 0.11's
/// `decrypt_inout_detached` does the same, which the aead trait does not promise: the
/// re-key test's afresh case, GCM included, depends on it).
#[inline(always)]
fn open_rtp(
    keys: &SessionKeys,
    suite: SrtpSuite,
    buf: &mut [u8],
    hdr: usize,
    end: usize,
    tag_at: usize,
    index: u64,
) -> Result<(), SrtpError> {
    let ssrc = [buf[8], buf[9], buf[10], buf[11]];
    match keys {
        SessionKeys::Cm { aes, mac, salt } => {
            let tag_len = suite.rtp_tag_len();
            let roc = ((index >> 16) as u32).to_be_bytes();
            let tag = hmac_tag(mac, &buf[..end], &roc);
            if !bool::from(tag[..tag_len].ct_eq(&buf[tag_at..tag_at + tag_len])) {
                return Err(SrtpError::AuthenticationFailed);
            }
            aes.xor(&cm_iv(salt, ssrc, index), &mut buf[hdr..end]);
        }
        SessionKeys::Gcm { aead, salt } => {
            let nonce = gcm_iv(salt, ssrc, index);
            let mut tag = [0u8; 16];
            tag.copy_from_slice(&buf[tag_at..tag_at + 16]);
            let (head, rest) = buf.split_at_mut(hdr);
            aead.open(&nonce, head, &mut rest[..end - hdr], &tag)?;
        }
    }
    Ok(())
}

/// RTP header length (fixed header, CSRCs, extension), checked against the packet.
fn rtp_header_len(pkt: &[u8]) -> Result<usize, SrtpError> {
    if pkt.len() < 12 {
        return Err(SrtpError::TooShort);
    }
    if pkt[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let mut n = 12 + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        if pkt.len() < n + 4 {
            return Err(SrtpError::TooShort);
        }
        n += 4 + 4 * usize::from(u16::from_be_bytes([pkt[n + 2], pkt[n + 3]]));
    }
    if n > pkt.len() {
        return Err(SrtpError::TooShort);
    }
    Ok(n)
}

/// Checks the first RTCP header: at least the 8 bytes that stay clear, version 2.
fn check_rtcp_header(pkt: &[u8]) -> Result<(), SrtpError> {
    if pkt.len() < 8 {
        return Err(SrtpError::TooShort);
    }
    if pkt[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    Ok(())
}

/// AES-CM IV: (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16).
#[inline]
fn cm_iv(salt: &[u8; 14], ssrc: [u8; 4], index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (d, s) in iv[4..8].iter_mut().zip(ssrc) {
        *d ^= s;
    }
    let idx = index.to_be_bytes();
    for (d, s) in iv[8..14].iter_mut().zip(&idx[2..8]) {
        *d ^= s;
    }
    iv
}

/// GCM IV (RFC 7714 §8.1, §9.1): (00 00 || SSRC || 48-bit index) XOR salt.
#[inline]
fn gcm_iv(salt: &[u8; 12], ssrc: [u8; 4], index: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc);
    iv[6..12].copy_from_slice(&index.to_be_bytes()[2..8]);
    for (d, s) in iv.iter_mut().zip(salt) {
        *d ^= s;
    }
    iv
}

/// HMAC-SHA1 over `data || extra` from the pre-keyed state.
#[inline]
fn hmac_tag(mac: &HmacSha1, data: &[u8], extra: &[u8]) -> [u8; 20] {
    let mut m = mac.clone();
    m.update(data);
    m.update(extra);
    m.finalize().into_bytes().into()
}
