//! SIP signaling.

pub mod transaction;
