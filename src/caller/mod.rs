//! The built-in caller behind `voxgate demo` and `voxgate call`: it plays the trunk's
//! part in a real SIP call over loopback or to any gateway — places the call, speaks
//! synthesized phrases over RTP (or SRTP), presses keys (RFC 4733), recognises what it
//! hears, and answers the gateway's hold re-INVITE and REFER as a trunk would.

pub mod leg;
pub mod media;
pub mod run;

pub use leg::{CallLeg, LegError, LegEvent, LegOptions, TransferBehaviour};
