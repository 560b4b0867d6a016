//! SIP signalling (RFC 3261): the message parser and serializer, URIs, SDP offer/answer
//! and digest authentication. Everything here is sans-IO: bytes in, values out.
//!
//! Model: a received datagram (`bytes::Bytes`) is parsed once by [`parse`] into a
//! [`SipMessage`] that keeps the buffer and records header spans into it (zero-copy;
//! one `Vec` per message). Typed header values ([`Via`], [`NameAddr`], [`CSeq`], ...)
//! are parsed on access and borrow from the message. [`check_request`] then decides
//! whether the UAS may process the request or must answer it with a fixed status
//! (RFC 4475 behaviour); [`MessageWriter`] writes responses and requests into a
//! caller-owned buffer.
//!
//! Invariants: no input panics; every fault is a [`ParseError`] with a byte position;
//! the parser never allocates per header beyond the span vector.
//!
//! ```no_run
//! use voxgate::sip::{self, SipMessage, UasPolicy, MessageWriter};
//! # let datagram = bytes::Bytes::new();
//! let mut out = Vec::new();
//! match sip::parse(datagram.clone()) {
//!     Ok(SipMessage::Request(req)) => match sip::check_request(&req, &UasPolicy::GATEWAY) {
//!         Ok(()) => { /* hand to the transaction layer */ }
//!         Err(rej) => { rej.write_response(&req, Some("tag1"), &mut out); }
//!     },
//!     Ok(SipMessage::Response(_resp)) => { /* match a client transaction */ }
//!     Err(e) => { let _ = e.disposition(&datagram); }
//! }
//! ```

pub mod admission;
pub mod auth;
pub mod check;
pub mod dialog;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod message;
pub mod nonce;
pub mod params;
pub mod parse;
pub mod sdp;
pub mod transaction;
pub mod transport;
pub mod ua;
pub mod uri;
pub mod writer;

pub use check::{check_request, check_response, Rejection, UasPolicy};
pub use error::{Disposition, ParseError};
pub use header::{CSeq, HeaderName, MediaType, NameAddr, TokenParams, Via};
pub use message::{FramingFault, Headers, Method, Request, Response, SipMessage};
pub use params::Params;
pub use parse::{frame_len, parse};
pub use uri::{normalise_number, unescape, Host, Scheme, Uri};
pub use writer::{reason_phrase, MessageWriter};
