//! voxgate control plane: SIP signaling, the per-call conversation loop, speech and
//! assistant providers, storage and the admin API. Media runs in `voxgate-engine`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod admin;
pub mod cdr;
pub mod config;
pub mod lifecycle;
pub mod live;
pub mod logs;
pub mod metrics;
pub mod numbers;
pub mod pii;
pub mod settings;
pub mod store;
