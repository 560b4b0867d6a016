//! What the UA core tells the call layer, and what it sends.

use std::net::SocketAddr;

use bytes::Bytes;

use super::media::NegotiatedMedia;
use super::view::{Flow, Transport};
use crate::sip::dialog::{CallRef, Direction, TransferOutcome};

/// Bytes to send on a flow (UDP: to `flow.remote`; TCP/TLS: on `flow.conn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub flow: Flow,
    /// The message.
    pub bytes: Bytes,
}

/// An admitted inbound call, waiting for the call layer to answer or reject it.
#[derive(Debug, Clone)]
pub struct IncomingCall {
    /// The call.
    pub call: CallRef,
    /// Call-ID.
    pub call_id: String,
    /// From value.
    pub from: String,
    /// To value.
    pub to: String,
    /// Request-URI.
    pub request_uri: String,
    /// Caller's number (From), E.164 when it is one.
    pub caller_number: Option<String>,
    /// The called number, E.164 (one of the configured numbers).
    pub called_number: String,
    /// The configured INVITE headers that were present, sanitised.
    pub custom_headers: Vec<(String, String)>,
    /// The transport the INVITE came on.
    pub transport: Transport,
    /// The trunk's address.
    pub remote: SocketAddr,
    /// What the offer proposes (remote RTP address, SRTP); the answer is made when the
    /// call layer calls `answer` with its local RTP address.
    pub offer_srtp: bool,
}

/// An INVITE refused before any call existed: by admission (403 unknown number, 488
/// secure trunking, 486/503 over the cap), for its offer (415, 488) or while draining
/// (503). Reported once per INVITE transaction (retransmissions are absorbed); nothing
/// more follows for it.
#[derive(Debug, Clone)]
pub struct RefusedInvite {
    /// Call-ID.
    pub call_id: String,
    /// From value.
    pub from: String,
    /// To value.
    pub to: String,
    /// Caller's number (From), E.164 when it is one.
    pub caller_number: Option<String>,
    /// The called number (Request-URI user, else To), E.164 when it is one.
    pub called_number: Option<String>,
    /// The final status sent.
    pub status: u16,
    /// Why, for logs and records.
    pub reason: String,
    /// The transport the INVITE came on.
    pub transport: Transport,
    /// The trunk's address.
    pub remote: SocketAddr,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The trunk sent BYE.
    RemoteBye,
    /// We sent BYE (hangup).
    LocalBye,
    /// The trunk cancelled before the answer.
    Cancelled,
    /// We rejected it with this status.
    Rejected(u16),
    /// Our 2xx was never ACKed (Timer H); a BYE was sent.
    AckTimeout,
    /// The session timer expired without refresh (RFC 4028); a BYE was sent.
    SessionExpired,
}

/// An event for the call layer.
#[derive(Debug, Clone)]
pub enum CallEvent {
    /// A new call passed admission; answer or reject it.
    Incoming(IncomingCall),
    /// An INVITE was refused with a final response before a call existed.
    Refused(RefusedInvite),
    /// The 200 OK was sent with this media agreement (RTP may flow now).
    Answered {
        /// The call.
        call: CallRef,
        /// The agreement.
        media: NegotiatedMedia,
    },
    /// The ACK arrived: the dialog is confirmed.
    Established {
        /// The call.
        call: CallRef,
    },
    /// A re-INVITE or UPDATE changed the media (hold, resume, new address).
    MediaChanged {
        /// The call.
        call: CallRef,
        /// The new agreement.
        media: NegotiatedMedia,
    },
    /// Our hold/resume re-INVITE finished.
    HoldResult {
        /// The call.
        call: CallRef,
        /// Direction we asked for.
        direction: Direction,
        /// Final status of the re-INVITE (0 on timeout).
        status: u16,
    },
    /// DTMF by SIP INFO (application/dtmf-relay or application/dtmf).
    Dtmf {
        /// The call.
        call: CallRef,
        /// The digit (0-9, *, #, A-D).
        digit: char,
        /// Duration in ms, when given.
        duration_ms: Option<u32>,
    },
    /// Transfer progress.
    Transfer {
        /// The call.
        call: CallRef,
        /// Outcome so far.
        outcome: TransferOutcome,
    },
    /// The call is over; nothing more will be reported for it.
    Ended {
        /// The call.
        call: CallRef,
        /// Why.
        reason: EndReason,
    },
}

/// Counters of the UA core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Requests received (after parsing).
    pub requests: u64,
    /// Retransmitted requests absorbed.
    pub retransmissions_absorbed: u64,
    /// Messages retransmitted by our timers.
    pub retransmissions_sent: u64,
    /// Responses that matched no transaction.
    pub stray_responses: u64,
    /// INVITEs admitted.
    pub calls_admitted: u64,
    /// INVITEs refused by admission or SDP.
    pub calls_refused: u64,
    /// Digest challenges sent.
    pub auth_challenges: u64,
    /// Requests refused by authentication (403 or failed digest).
    pub auth_failures: u64,
}
