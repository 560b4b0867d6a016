//! Owned views of parsed SIP messages: what the UA core needs from a request or a
//! response, extracted once right after parsing so the core holds no borrowed buffers.

use std::net::SocketAddr;

use bytes::Bytes;

/// A SIP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Transport {
    /// The Via transport token.
    pub fn token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// Stream transports retransmit for us.
    pub fn reliability(self) -> crate::sip::transaction::Reliability {
        match self {
            Transport::Udp => crate::sip::transaction::Reliability::Unreliable,
            _ => crate::sip::transaction::Reliability::Reliable,
        }
    }
}

/// Identifies a TCP or TLS connection inside the gateway.
pub type ConnId = u64;

/// Where a message came from, and so where responses and in-dialog requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The transport it arrived on.
    pub transport: Transport,
    /// The peer's address (source of the packet or connection).
    pub remote: SocketAddr,
    /// The connection, for TCP and TLS.
    pub conn: Option<ConnId>,
}

/// The top Via of a request, as needed for transaction matching and response routing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopVia {
    /// Transport token.
    pub transport: String,
    /// sent-by host (as written; IPv6 in brackets).
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// branch parameter.
    pub branch: Option<String>,
    /// `rport` present (RFC 3581).
    pub rport: bool,
    /// `received` parameter.
    pub received: Option<String>,
}

impl TopVia {
    /// sent-by as `host[:port]`.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }
}

/// A request as the UA core sees it.
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    /// Method, as written (methods are case-sensitive).
    pub method: String,
    /// Request-URI as written.
    pub uri: String,
    /// Request-URI scheme, lower-case (`sip`, `sips`, `tel`, ...).
    pub uri_scheme: String,
    /// The telephone number the Request-URI addresses, if any.
    pub uri_number: Option<String>,
    /// Via values as written, top first.
    pub vias: Vec<String>,
    /// The top Via, parsed.
    pub top_via: TopVia,
    /// From value as written.
    pub from: String,
    /// From tag.
    pub from_tag: Option<String>,
    /// To value as written.
    pub to: String,
    /// To tag.
    pub to_tag: Option<String>,
    /// The telephone number the To URI addresses, if any.
    pub to_number: Option<String>,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// CSeq method.
    pub cseq_method: String,
    /// Contact URI (without angle brackets), if any.
    pub contact: Option<String>,
    /// Record-Route values as written, in order.
    pub record_route: Vec<String>,
    /// Content-Type (type/subtype, lower-case), if any.
    pub content_type: Option<String>,
    /// Body.
    pub body: Bytes,
    /// Every header as (name as written, value), in order, for lookups.
    pub headers: Vec<(String, String)>,
}

impl RequestView {
    /// The first value of header `name` (case-insensitive; `compact` is its short form).
    pub fn header(&self, name: &str, compact: Option<&str>) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| {
                n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c))
            })
            .map(|(_, v)| v.as_str())
    }

    /// All values of header `name`, comma lists split.
    pub fn header_tokens(&self, name: &str, compact: Option<&str>) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| {
                n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c))
            })
            .flat_map(|(_, v)| v.split(',').map(|t| t.trim().to_owned()))
            .filter(|t| !t.is_empty())
            .collect()
    }
}

/// A response as the UA core sees it.
#[derive(Debug, Clone, Default)]
pub struct ResponseView {
    /// Status code.
    pub status: u16,
    /// Top Via branch.
    pub branch: Option<String>,
    /// To value as written.
    pub to: String,
    /// To tag.
    pub to_tag: Option<String>,
    /// Call-ID.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// CSeq method.
    pub cseq_method: String,
    /// Contact URI, if any.
    pub contact: Option<String>,
    /// Content-Type, if any.
    pub content_type: Option<String>,
    /// Body.
    pub body: Bytes,
}
