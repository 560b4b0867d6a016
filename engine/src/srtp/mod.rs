//! SRTP and SRTCP (RFC 3711, RFC 7714) with SDES keying (RFC 4568).
//!
//! The model: one [`SrtpContext`] per direction and master key. It keeps the expanded AES
//! key and a pre-keyed HMAC-SHA1 state for SRTP and for SRTCP, the rollover counter, the
//! replay windows and the key-lifetime counters. Packets are transformed in place in a
//! caller-owned buffer; nothing is allocated per packet and nothing reads a clock.
//!
//! Invariants:
//! - a packet is only passed on (unprotect returns `Ok`) after its tag verified; the ROC,
//!   replay window and lifetime counters change only then;
//! - protect never re-uses a packet index (keystream re-use is refused as a replay);
//! - a master key is refused once it has protected or accepted 2^48 SRTP or 2^31 SRTCP
//!   packets (or the lower SDES lifetime).
//!
//! ```no_run
//! use voxgate_engine::srtp::{SrtpContext, SrtpSuite};
//! # fn send(_: &[u8]) {}
//! let key = [7u8; 16];
//! let salt = [9u8; 14];
//! let mut tx = SrtpContext::new(SrtpSuite::AesCm128HmacSha1_80, &key, &salt, None)?;
//! let mut buf = [0u8; 1500];
//! # let rtp_len = 172;
//! // ... write an RTP packet of `rtp_len` bytes into `buf` ...
//! let n = tx.protect_rtp(&mut buf, rtp_len)?;
//! send(&buf[..n]);
//! # Ok::<(), voxgate_engine::srtp::SrtpError>(())
//! ```

mod context;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod kdf;
mod replay;
pub mod sdes;
mod session;
mod suite;

pub use context::{SrtpContext, SrtpOptions};
pub use error::{ReplayKind, SrtpError};
pub use replay::REPLAY_WINDOW;
pub use session::SrtpSession;
pub use suite::SrtpSuite;

#[cfg(test)]
mod rfc3711;
#[cfg(test)]
mod rfc7714;
#[cfg(test)]
mod tests;
