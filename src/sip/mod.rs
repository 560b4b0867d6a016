//! SIP signaling.

pub mod admission;
pub mod dialog;
pub mod nonce;
pub mod transaction;
pub mod transport;
pub mod ua;
