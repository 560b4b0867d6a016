//! voxgate control plane: SIP signaling, the per-call conversation loop, speech and
//! assistant providers, storage and the admin API. Media runs in `voxgate-engine`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod assistant;
pub mod call;
pub mod caller;
pub mod cdr;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod gateway;
pub mod lifecycle;
pub mod live;
pub mod live_calls;
pub mod logs;
pub mod metrics;
pub mod numbers;
pub mod pii;
pub mod run;
pub mod settings;
pub mod sip;
pub mod speech;
pub mod store;
