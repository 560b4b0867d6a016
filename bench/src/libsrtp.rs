//! Minimal FFI binding to libsrtp2, for interop tests and comparison benchmarks only.
//!
//! All `unsafe` of the bench crate lives here. One [`LibSrtp`] wraps one `srtp_t`
//! session with a single policy for any inbound or any outbound SSRC.

use std::ffi::{c_int, c_uint, c_ulong, c_void};
use std::sync::Once;
use voxgate_engine::srtp::SrtpSuite;

/// libsrtp's `srtp_ssrc_t`.
#[repr(C)]
struct SsrcPolicy {
    kind: c_int,
    value: c_uint,
}

/// libsrtp's `srtp_crypto_policy_t`.
#[repr(C)]
#[derive(Default)]
struct CryptoPolicy {
    cipher_type: u32,
    cipher_key_len: c_int,
    auth_type: u32,
    auth_key_len: c_int,
    auth_tag_len: c_int,
    sec_serv: c_int,
}

/// libsrtp's `srtp_master_key_t`.
#[repr(C)]
struct MasterKey {
    key: *mut u8,
    mki_id: *mut u8,
    mki_size: c_uint,
}

/// libsrtp's `srtp_policy_t` (libsrtp 2.5).
#[repr(C)]
struct Policy {
    ssrc: SsrcPolicy,
    rtp: CryptoPolicy,
    rtcp: CryptoPolicy,
    key: *mut u8,
    keys: *mut *mut MasterKey,
    num_master_keys: c_ulong,
    deprecated_ekt: *mut c_void,
    window_size: c_ulong,
    allow_repeat_tx: c_int,
    enc_xtn_hdr: *mut c_int,
    enc_xtn_hdr_count: c_int,
    next: *mut Policy,
}

const SSRC_ANY_INBOUND: c_int = 2;
const SSRC_ANY_OUTBOUND: c_int = 3;
/// libsrtp's `sec_serv_auth`: authentication without confidentiality (SRTCP E = 0).
const SEC_SERV_AUTH: c_int = 2;
/// Bytes libsrtp may write past the packet when protecting (tag, MKI, SRTCP index).
pub const MAX_TRAILER: usize = 16 + 128 + 4;

#[link(name = "srtp2")]
extern "C" {
    fn srtp_init() -> c_int;
    fn srtp_create(session: *mut *mut c_void, policy: *const Policy) -> c_int;
    fn srtp_dealloc(session: *mut c_void) -> c_int;
    fn srtp_update(session: *mut c_void, policy: *const Policy) -> c_int;
    fn srtp_protect_mki(
        s: *mut c_void,
        hdr: *mut c_void,
        len: *mut c_int,
        use_mki: c_uint,
        idx: c_uint,
    ) -> c_int;
    fn srtp_unprotect_mki(
        s: *mut c_void,
        hdr: *mut c_void,
        len: *mut c_int,
        use_mki: c_uint,
    ) -> c_int;
    fn srtp_protect_rtcp_mki(
        s: *mut c_void,
        hdr: *mut c_void,
        len: *mut c_int,
        use_mki: c_uint,
        idx: c_uint,
    ) -> c_int;
    fn srtp_unprotect_rtcp_mki(
        s: *mut c_void,
        hdr: *mut c_void,
        len: *mut c_int,
        use_mki: c_uint,
    ) -> c_int;
    fn srtp_crypto_policy_set_rtp_default(p: *mut CryptoPolicy);
    fn srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(p: *mut CryptoPolicy);
    fn srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(p: *mut CryptoPolicy);
    fn srtp_crypto_policy_set_aes_gcm_128_16_auth(p: *mut CryptoPolicy);
    fn srtp_crypto_policy_set_aes_gcm_256_16_auth(p: *mut CryptoPolicy);
}

/// A libsrtp error status (`srtp_err_status_t`; 7 = auth_fail, 9/10 = replay).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LibSrtpError(pub i32);

impl std::fmt::Display for LibSrtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "libsrtp error status {}", self.0)
    }
}

impl std::error::Error for LibSrtpError {}

/// What one libsrtp policy is made of.
#[derive(Clone, Copy)]
struct Keying<'a> {
    suite: SrtpSuite,
    key: &'a [u8],
    salt: &'a [u8],
    mki: Option<&'a [u8]>,
    /// Protect (true) or unprotect (false).
    outbound: bool,
    /// SRTCP with E = 1 (libsrtp's default) or authentication only.
    rtcp_encrypted: bool,
}

impl<'a> Keying<'a> {
    /// No MKI, SRTCP encrypted.
    fn new(suite: SrtpSuite, key: &'a [u8], salt: &'a [u8], outbound: bool) -> Keying<'a> {
        Keying {
            suite,
            key,
            salt,
            mki: None,
            outbound,
            rtcp_encrypted: true,
        }
    }
}

/// Builds the libsrtp policy for `keying` and hands it to `f` while everything it
/// points to is alive.
fn with_policy<R>(keying: Keying<'_>, f: impl FnOnce(&Policy) -> R) -> R {
    let Keying {
        suite,
        key,
        salt,
        mki,
        outbound,
        rtcp_encrypted,
    } = keying;
    let mut policy = Policy {
        ssrc: SsrcPolicy {
            kind: if outbound {
                SSRC_ANY_OUTBOUND
            } else {
                SSRC_ANY_INBOUND
            },
            value: 0,
        },
        rtp: CryptoPolicy::default(),
        rtcp: CryptoPolicy::default(),
        key: std::ptr::null_mut(),
        keys: std::ptr::null_mut(),
        num_master_keys: 0,
        deprecated_ekt: std::ptr::null_mut(),
        window_size: 128,
        allow_repeat_tx: 0,
        enc_xtn_hdr: std::ptr::null_mut(),
        enc_xtn_hdr_count: 0,
        next: std::ptr::null_mut(),
    };
    // SAFETY: each setter only writes the six fields of the CryptoPolicy it is given.
    unsafe {
        let set: unsafe extern "C" fn(*mut CryptoPolicy) = match suite {
            SrtpSuite::AesCm128HmacSha1_32 => srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32,
            SrtpSuite::AesCm256HmacSha1_80 => srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
            SrtpSuite::AeadAes128Gcm => srtp_crypto_policy_set_aes_gcm_128_16_auth,
            SrtpSuite::AeadAes256Gcm => srtp_crypto_policy_set_aes_gcm_256_16_auth,
            _ => srtp_crypto_policy_set_rtp_default,
        };
        set(&mut policy.rtp);
        // The RTCP policy of the _32 suite keeps an 80-bit tag (RFC 4568 §6.2.1).
        let set_rtcp: unsafe extern "C" fn(*mut CryptoPolicy) = match suite {
            SrtpSuite::AesCm128HmacSha1_32 => srtp_crypto_policy_set_rtp_default,
            _ => set,
        };
        set_rtcp(&mut policy.rtcp);
    }
    if !rtcp_encrypted {
        policy.rtcp.sec_serv = SEC_SERV_AUTH;
    }
    let mut key_salt = [key, salt].concat();
    key_salt.resize(64, 0);
    let mut mki_bytes = mki.map(<[u8]>::to_vec).unwrap_or_default();
    let mut master = MasterKey {
        key: key_salt.as_mut_ptr(),
        mki_id: mki_bytes.as_mut_ptr(),
        mki_size: mki_bytes.len() as c_uint,
    };
    let mut master_ptr: *mut MasterKey = &mut master;
    if mki.is_some() {
        policy.keys = &mut master_ptr;
        policy.num_master_keys = 1;
    } else {
        policy.key = key_salt.as_mut_ptr();
    }
    f(&policy)
}

fn check(status: c_int) -> Result<(), LibSrtpError> {
    if status == 0 {
        Ok(())
    } else {
        Err(LibSrtpError(status))
    }
}

/// One libsrtp session (one direction, any SSRC).
#[derive(Debug)]
pub struct LibSrtp {
    session: *mut c_void,
    use_mki: bool,
}

impl LibSrtp {
    /// Creates a session for `suite` keyed by `key || salt`; `outbound` picks
    /// protect (true) or unprotect (false).
    pub fn new(
        suite: SrtpSuite,
        key: &[u8],
        salt: &[u8],
        mki: Option<&[u8]>,
        outbound: bool,
    ) -> Result<LibSrtp, LibSrtpError> {
        Self::create(Keying {
            mki,
            ..Keying::new(suite, key, salt, outbound)
        })
    }

    /// As [`LibSrtp::new`] without SRTCP encryption: protected RTCP goes out with E = 0,
    /// authenticated only (RFC 3711 §3.4).
    pub fn new_unencrypted_srtcp(
        suite: SrtpSuite,
        key: &[u8],
        salt: &[u8],
        outbound: bool,
    ) -> Result<LibSrtp, LibSrtpError> {
        Self::create(Keying {
            rtcp_encrypted: false,
            ..Keying::new(suite, key, salt, outbound)
        })
    }

    fn create(keying: Keying<'_>) -> Result<LibSrtp, LibSrtpError> {
        static INIT: Once = Once::new();
        // SAFETY: srtp_init has no preconditions; Once runs it once per process.
        INIT.call_once(|| unsafe {
            let _ = srtp_init();
        });
        let mut session = std::ptr::null_mut();
        with_policy(keying, |policy| {
            // SAFETY: the policy and everything it points to outlive this call; libsrtp
            // copies the key material it needs.
            check(unsafe { srtp_create(&mut session, policy) })
        })?;
        Ok(LibSrtp {
            session,
            use_mki: keying.mki.is_some(),
        })
    }

    /// srtp_update: re-keys the session in place with the same suite and direction, and
    /// no MKI (a session made with one drops it). For streams already seen, libsrtp
    /// keeps the extended sequence number (ROC) and the SRTCP index under the new key.
    pub fn update(
        &mut self,
        suite: SrtpSuite,
        key: &[u8],
        salt: &[u8],
        outbound: bool,
    ) -> Result<(), LibSrtpError> {
        with_policy(Keying::new(suite, key, salt, outbound), |policy| {
            // SAFETY: `self.session` is a live session from srtp_create; the policy and
            // everything it points to outlive this call.
            check(unsafe { srtp_update(self.session, policy) })
        })?;
        self.use_mki = false;
        Ok(())
    }

    fn call(
        &mut self,
        buf: &mut [u8],
        len: usize,
        f: impl FnOnce(*mut c_void, *mut c_void, *mut c_int) -> c_int,
        grows: bool,
    ) -> Result<usize, LibSrtpError> {
        assert!(
            len <= buf.len() && (!grows || len + MAX_TRAILER <= buf.len()),
            "buffer too small"
        );
        let mut n = len as c_int;
        check(f(self.session, buf.as_mut_ptr().cast(), &mut n))?;
        Ok(n as usize)
    }

    /// srtp_protect: `buf[..len]` is the RTP packet; needs MAX_TRAILER bytes of room.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibSrtpError> {
        let mki = c_uint::from(self.use_mki);
        // SAFETY: `call` checked that buf holds len + MAX_TRAILER bytes; the session is live.
        self.call(
            buf,
            len,
            |s, p, n| unsafe { srtp_protect_mki(s, p, n, mki, 0) },
            true,
        )
    }

    /// srtp_unprotect in place; returns the RTP length.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, LibSrtpError> {
        let mki = c_uint::from(self.use_mki);
        let len = buf.len();
        // SAFETY: libsrtp reads and writes only within the `len` bytes given.
        self.call(
            buf,
            len,
            |s, p, n| unsafe { srtp_unprotect_mki(s, p, n, mki) },
            false,
        )
    }

    /// srtp_protect_rtcp: `buf[..len]` is the RTCP compound; needs MAX_TRAILER bytes of room.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibSrtpError> {
        let mki = c_uint::from(self.use_mki);
        // SAFETY: `call` checked that buf holds len + MAX_TRAILER bytes; the session is live.
        self.call(
            buf,
            len,
            |s, p, n| unsafe { srtp_protect_rtcp_mki(s, p, n, mki, 0) },
            true,
        )
    }

    /// srtp_unprotect_rtcp in place; returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, LibSrtpError> {
        let mki = c_uint::from(self.use_mki);
        let len = buf.len();
        // SAFETY: libsrtp reads and writes only within the `len` bytes given.
        self.call(
            buf,
            len,
            |s, p, n| unsafe { srtp_unprotect_rtcp_mki(s, p, n, mki) },
            false,
        )
    }
}

impl Drop for LibSrtp {
    fn drop(&mut self) {
        // SAFETY: the session came from srtp_create and is freed exactly once.
        unsafe {
            let _ = srtp_dealloc(self.session);
        }
    }
}
