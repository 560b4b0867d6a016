//! voxgate media engine.
//!
//! The protocol code here (RTP/RTCP, SRTP, codecs, jitter buffer, media session) is
//! sans-IO: bytes and `now` in, packets, events and the next timeout out. Only the
//! worker I/O modules touch sockets or io_uring, and only they contain `unsafe`.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod codec;
pub mod dtmf;
#[doc(hidden)]
pub mod fuzz;
pub mod jitter;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod srtp;
pub mod vad;
#[allow(unsafe_code)]
pub mod worker;
