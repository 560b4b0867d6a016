//! The user agent core: transactions, dialogs and admission for inbound calls.
//!
//! [`SipCore`] is sans-IO: the gateway feeds it parsed requests and responses with the
//! [`Flow`] they came on and `now`, sends what [`SipCore::poll_transmit`] returns,
//! hands [`CallEvent`]s to the call layer, and calls [`SipCore::handle_timeout`] when
//! [`SipCore::poll_timeout`] is due.

pub mod auth;
pub mod build;
mod core;
pub mod events;
mod from_parsed;
pub mod fuzzing;
mod in_dialog;
mod invite;
pub mod media;
pub mod sdp_glue;
pub mod view;

pub use self::core::{response_flow, CallError, CoreConfig, LocalAddrs, SipCore};
pub use events::{CallEvent, CoreStats, EndReason, IncomingCall, RefusedInvite, Transmit};
pub use in_dialog::read_dtmf;
pub use media::{NegotiatedMedia, SdpReject};
pub use view::{ConnId, Flow, RequestView, ResponseView, TopVia, Transport};
#[cfg(test)]
mod tests;
