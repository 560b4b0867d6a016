//! voxgate media engine.
//!
//! The protocol code here (RTP/RTCP, SRTP, codecs, jitter buffer, media session) is
//! sans-IO: bytes and `now` in, packets, events and the next timeout out. Only the
//! worker I/O modules touch sockets or io_uring, and only `worker` (the I/O backends)
//! and `prefetch` (a cache-prefetch hint the worker asks sessions to give) contain
//! `unsafe`.
//!
//! Protocol modules: [`rtp`] (packet view/writer, RFC 3550 A.1/A.8 receive statistics),
//! [`rtcp`] (SR/RR/SDES/BYE compounds), [`codec`] (G.711, the encoder/decoder interface,
//! resampling), [`jitter`] (adaptive jitter buffer), [`dtmf`] (RFC 4733), [`vad`] (speech
//! detector) and [`session`] ([`session::MediaSession`], which ties them together for one
//! call leg; its docs show the run loop). Invariants: no panic on any input (fuzzed), no
//! allocation after a session is created (tested with a counting allocator), every time
//! comes in as a `now: Instant` argument.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod codec;
pub mod dtmf;
#[doc(hidden)]
pub mod fuzz;
pub mod jitter;
mod prefault;
#[allow(unsafe_code)]
mod prefetch;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod srtp;
pub mod vad;
#[allow(unsafe_code)]
pub mod worker;
