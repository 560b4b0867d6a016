//! SIP signaling.

pub mod nonce;
pub mod transaction;
pub mod transport;
