//! Speech: round trips through the real engines, the Watson clients against speech-server
//! over loopback HTTP/WebSocket, error paths, and held-out accuracy.

mod common;
mod errors;
mod heldout;
mod roundtrip;
