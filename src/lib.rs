//! voxgate control plane: SIP signaling, the per-call conversation loop, speech and
//! assistant providers, storage and the admin API. Media runs in `voxgate-engine`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod app;
pub mod assistant;
pub mod call;
pub mod caller;
pub mod demo;
pub mod gateway;
pub mod settings;
pub mod sip;
pub mod speech;
