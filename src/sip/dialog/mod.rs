//! SIP dialogs (RFC 3261 §12) created by inbound INVITEs: identity, sequence numbers,
//! route set, remote target, and the requests we send inside them.

pub mod refer;
pub mod session_timer;

use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::sip::ua::build::{ALLOW, SUPPORTED, USER_AGENT};
use crate::sip::ua::view::{Flow, RequestView};

pub use refer::{ReferError, ReferRequest, TransferOutcome};
pub use session_timer::SessionTimer;

/// Identifies a call (one dialog) inside the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

/// SDP direction attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// `a=sendrecv`.
    #[default]
    SendRecv,
    /// `a=sendonly`.
    SendOnly,
    /// `a=recvonly`.
    RecvOnly,
    /// `a=inactive`.
    Inactive,
}

impl Direction {
    /// The direction an answer takes for this offered direction (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// True when the peer is putting us on hold or we hold it.
    pub fn is_hold(self) -> bool {
        !matches!(self, Direction::SendRecv)
    }
}

/// Dialog state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// INVITE received, no final response yet (or 2xx not yet ACKed).
    Early,
    /// 2xx sent and ACKed.
    Confirmed,
    /// A BYE is on its way or done.
    Terminated,
}

/// One inbound call's dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// The call this dialog belongs to.
    pub call: CallRef,
    /// Call-ID.
    pub call_id: String,
    /// Our tag (To tag of our responses).
    pub local_tag: String,
    /// The To value of the INVITE (our address), without tag.
    pub local_uri: String,
    /// The From value of the INVITE, tag included.
    pub remote_uri: String,
    /// Where in-dialog requests are addressed (the INVITE's Contact).
    pub remote_target: String,
    /// Route set (Record-Route of the INVITE, in order).
    pub route_set: Vec<String>,
    /// Last CSeq we used.
    pub local_cseq: u32,
    /// Highest CSeq received.
    pub remote_cseq: u32,
    /// State.
    pub state: DialogState,
    /// The flow the INVITE came on: in-dialog requests go back on it.
    pub flow: Flow,
    /// Our address for Via and Contact on this transport.
    pub local_addr: SocketAddr,
    /// SDP origin session id and version.
    pub sdp_session: (u64, u64),
    /// Our media direction.
    pub local_direction: Direction,
    /// Session timer, when negotiated.
    pub session_timer: Option<SessionTimer>,
}

/// The URI inside a name-addr (`"Bob" <sip:b@h>;tag=x` → `sip:b@h`).
pub fn uri_of(name_addr: &str) -> &str {
    if let (Some(a), Some(b)) = (name_addr.find('<'), name_addr.rfind('>')) {
        if a < b {
            return &name_addr[a + 1..b];
        }
    }
    name_addr.split(';').next().unwrap_or(name_addr).trim()
}

impl Dialog {
    /// The dialog an INVITE creates on the UAS side (§12.1.1).
    pub fn from_invite(
        call: CallRef,
        req: &RequestView,
        flow: Flow,
        local_addr: SocketAddr,
        local_tag: String,
        sdp_session: u64,
    ) -> Self {
        let remote_target = req
            .contact
            .clone()
            .unwrap_or_else(|| uri_of(&req.from).to_owned());
        Self {
            call,
            call_id: req.call_id.clone(),
            local_tag,
            local_uri: req.to.clone(),
            remote_uri: req.from.clone(),
            remote_target,
            route_set: req.record_route.clone(),
            local_cseq: 0,
            remote_cseq: req.cseq,
            state: DialogState::Early,
            flow,
            local_addr,
            sdp_session: (sdp_session, sdp_session),
            local_direction: Direction::SendRecv,
            session_timer: None,
        }
    }

    /// Our Contact header value.
    pub fn contact(&self) -> String {
        contact_for(self.local_addr, self.flow.transport)
    }

    /// Accepts a remote CSeq: in-dialog requests must rise (§12.2.2); false = 500.
    pub fn accept_remote_cseq(&mut self, cseq: u32) -> bool {
        if cseq <= self.remote_cseq {
            return false;
        }
        self.remote_cseq = cseq;
        true
    }

    /// Builds a request inside the dialog (§12.2.1.1). `cseq` of `None` takes the next
    /// local CSeq (ACK passes the INVITE's). Returns (bytes, branch, cseq).
    pub fn request(
        &mut self,
        method: &str,
        cseq: Option<u32>,
        extra: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> (Bytes, String, u32) {
        let cseq = cseq.unwrap_or_else(|| {
            self.local_cseq += 1;
            self.local_cseq
        });
        let branch = crate::sip::ua::build::branch();
        let mut s = String::with_capacity(600);
        let _ = write!(s, "{method} {} SIP/2.0\r\n", self.remote_target);
        let _ = write!(
            s,
            "Via: SIP/2.0/{} {};branch={branch};rport\r\n",
            self.flow.transport.token(),
            host_port(self.local_addr)
        );
        let _ = write!(s, "Max-Forwards: 70\r\n");
        let _ = write!(s, "From: {};tag={}\r\n", self.local_uri, self.local_tag);
        let _ = write!(s, "To: {}\r\n", self.remote_uri);
        let _ = write!(s, "Call-ID: {}\r\n", self.call_id);
        let _ = write!(s, "CSeq: {cseq} {method}\r\n");
        for r in &self.route_set {
            let _ = write!(s, "Route: {r}\r\n");
        }
        if method != "ACK" {
            let _ = write!(s, "Contact: {}\r\n", self.contact());
            let _ = write!(s, "Allow: {ALLOW}\r\nSupported: {SUPPORTED}\r\n");
        }
        for (n, v) in extra {
            let _ = write!(s, "{n}: {v}\r\n");
        }
        let _ = write!(s, "User-Agent: {USER_AGENT}\r\n");
        (crate::sip::ua::build::with_body(s, body), branch, cseq)
    }

    /// The next SDP origin version (each new offer or answer that changes media).
    pub fn next_sdp_version(&mut self) -> u64 {
        self.sdp_session.1 += 1;
        self.sdp_session.1
    }
}

/// `host:port` with IPv6 brackets.
pub fn host_port(a: SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => v.to_string(),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

/// A Contact value for our address on `transport`.
pub fn contact_for(addr: SocketAddr, transport: crate::sip::ua::view::Transport) -> String {
    use crate::sip::ua::view::Transport;
    match transport {
        Transport::Udp => format!("<sip:voxgate@{}>", host_port(addr)),
        Transport::Tcp => format!("<sip:voxgate@{};transport=tcp>", host_port(addr)),
        Transport::Tls => format!("<sips:voxgate@{}>", host_port(addr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::ua::view::Transport;

    #[test]
    fn bye_is_addressed_to_the_remote_target_with_swapped_tags_and_rising_cseq() {
        let req = RequestView {
            method: "INVITE".into(),
            from: "\"Caller\" <sip:+15550001@trunk.example.com>;tag=abc".into(),
            to: "<sip:+19585550123@gw.example.com>".into(),
            call_id: "cid".into(),
            cseq: 1,
            contact: Some("sip:trunk@192.0.2.1:5060".into()),
            record_route: vec!["<sip:proxy.example.com;lr>".into()],
            ..Default::default()
        };
        let flow = Flow {
            transport: Transport::Udp,
            remote: "192.0.2.1:5060".parse().unwrap(),
            conn: None,
        };
        let mut d = Dialog::from_invite(
            CallRef(1),
            &req,
            flow,
            "127.0.0.1:5060".parse().unwrap(),
            "xyz".into(),
            42,
        );
        assert!(!d.accept_remote_cseq(1));
        assert!(d.accept_remote_cseq(2));
        let (b, branch, cseq) = d.request("BYE", None, &[("Reason", "Q.850;cause=16")], None);
        let t = std::str::from_utf8(&b).unwrap();
        assert!(
            t.starts_with("BYE sip:trunk@192.0.2.1:5060 SIP/2.0\r\n"),
            "{t}"
        );
        assert!(t.contains(&format!("branch={branch};rport")));
        assert!(t.contains("From: <sip:+19585550123@gw.example.com>;tag=xyz\r\n"));
        assert!(t.contains("To: \"Caller\" <sip:+15550001@trunk.example.com>;tag=abc\r\n"));
        assert!(t.contains("CSeq: 1 BYE\r\nRoute: <sip:proxy.example.com;lr>\r\n"));
        assert!(t.contains("Reason: Q.850;cause=16\r\n"));
        assert_eq!(cseq, 1);
        let (_, _, cseq2) = d.request("INFO", None, &[], None);
        assert_eq!(cseq2, 2);
    }

    #[test]
    fn hold_offers_are_answered_with_the_matching_direction() {
        assert_eq!(Direction::SendOnly.answer(), Direction::RecvOnly);
        assert_eq!(Direction::Inactive.answer(), Direction::Inactive);
        assert_eq!(Direction::RecvOnly.answer(), Direction::SendOnly);
        assert_eq!(Direction::SendRecv.answer(), Direction::SendRecv);
        assert_eq!(uri_of("sip:a@b;tag=1"), "sip:a@b");
    }
}
