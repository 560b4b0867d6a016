//! SIP transports: UDP, TCP and TLS on tokio, with stream framing and response routing.

pub mod framing;
pub mod tls;
