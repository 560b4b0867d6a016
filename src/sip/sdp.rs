//! SDP (RFC 4566/8866): parse and serialise session descriptions; the offer/answer
//! rules of RFC 3264 live in [`answer`].

use std::fmt;
use std::net::IpAddr;

pub mod answer;
pub mod opus_fmtp;

pub use answer::{answer, offer, Codec, LocalCapabilities, Negotiated, NegotiationError};
pub use opus_fmtp::OpusFmtp;

/// A fault in an SDP body (answered with 400 or 488 by the caller).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// A line does not follow `<type>=<value>` or a known line's grammar.
    #[error("SDP line {line}: {what}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// A mandatory line (`v=`, `o=`) is missing.
    #[error("SDP lacks its {0} line")]
    Missing(&'static str),
    /// The body is not UTF-8.
    #[error("SDP is not UTF-8")]
    Utf8,
    /// Over the size limits (lines, media sections).
    #[error("SDP over the size limit")]
    TooLarge,
}

/// `IP4` or `IP6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrType {
    /// IPv4
    Ip4,
    /// IPv6
    Ip6,
}

impl AddrType {
    fn as_str(self) -> &'static str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        }
    }
    /// The address type for an IP address.
    pub fn of(ip: IpAddr) -> AddrType {
        if ip.is_ipv4() {
            AddrType::Ip4
        } else {
            AddrType::Ip6
        }
    }
}

/// `c=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Address type.
    pub addr_type: AddrType,
    /// Address as written (may carry `/ttl` for multicast, or be a name).
    pub address: String,
}

impl Connection {
    /// For an IP address.
    pub fn from_ip(ip: IpAddr) -> Self {
        Connection {
            addr_type: AddrType::of(ip),
            address: ip.to_string(),
        }
    }
    /// The unicast IP address, if the address is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.split('/').next().and_then(|a| a.parse().ok())
    }
}

/// `o=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Username (`-` when none).
    pub username: String,
    /// Session id (numeric string).
    pub session_id: String,
    /// Session version (incremented on every change, RFC 3264 §8).
    pub session_version: u64,
    /// Connection address of the originator.
    pub connection: Connection,
}

/// `a=name[:value]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Name.
    pub name: String,
    /// Value after `:`.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute (`a=rtcp-mux`).
    pub fn flag(name: &str) -> Self {
        Attribute {
            name: name.into(),
            value: None,
        }
    }
    /// A value attribute (`a=ptime:20`).
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

/// Stream direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `sendrecv` (default)
    SendRecv,
    /// `sendonly`
    SendOnly,
    /// `recvonly`
    RecvOnly,
    /// `inactive`
    Inactive,
}

impl Direction {
    /// Attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
    fn from_attr(name: &str) -> Option<Direction> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
    fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }
    fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
    fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
    /// The direction an answer takes to an offer with this direction when we want
    /// `local` at most: sendonly ↔ recvonly, inactive stays inactive.
    pub fn answer_to(self, local: Direction) -> Direction {
        Direction::from_flags(
            self.receives() && local.sends(),
            self.sends() && local.receives(),
        )
    }
}

/// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpMap<'a> {
    /// Payload type.
    pub payload_type: u8,
    /// Encoding name.
    pub encoding: &'a str,
    /// Clock rate.
    pub clock_rate: u32,
    /// Channels (1 when absent).
    pub channels: u8,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `audio`, `video`, ...
    pub media: String,
    /// Port (0 = rejected/disabled).
    pub port: u16,
    /// `/<n>` port count.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, ...
    pub proto: String,
    /// Formats (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=`.
    pub connection: Option<Connection>,
    /// Other lines (`i=`, `b=`, `k=`) as (type, value), in order.
    pub lines: Vec<(char, String)>,
    /// Attributes in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// Values of every attribute named `name`.
    pub fn attrs<'s, 'n>(
        &'s self,
        name: &'n str,
    ) -> impl Iterator<Item = Option<&'s str>> + use<'s, 'n> {
        self.attributes
            .iter()
            .filter(move |a| a.name == name)
            .map(|a| a.value.as_deref())
    }

    /// First attribute named `name`.
    pub fn attr(&self, name: &str) -> Option<Option<&str>> {
        self.attrs(name).next()
    }

    /// rtpmap of a payload type.
    pub fn rtpmap(&self, pt: u8) -> Option<RtpMap<'_>> {
        self.attrs("rtpmap").flatten().find_map(|v| {
            let (p, rest) = v.split_once(' ')?;
            if p.trim().parse::<u8>().ok()? != pt {
                return None;
            }
            let mut it = rest.trim().split('/');
            let encoding = it.next()?;
            let clock_rate = it.next()?.parse().ok()?;
            let channels = match it.next() {
                Some(c) => c.parse().ok()?,
                None => 1,
            };
            Some(RtpMap {
                payload_type: pt,
                encoding,
                clock_rate,
                channels,
            })
        })
    }

    /// fmtp parameters of a payload type.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.attrs("fmtp").flatten().find_map(|v| {
            let (p, rest) = v.split_once(' ')?;
            (p.parse::<u8>().ok()? == pt).then_some(rest.trim())
        })
    }

    /// Media-level direction attribute, if any.
    pub fn direction_attr(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .rev()
            .find_map(|a| Direction::from_attr(&a.name))
    }

    /// `a=ptime` in ms.
    pub fn ptime(&self) -> Option<u32> {
        self.attr("ptime")
            .flatten()
            .and_then(|v| v.trim().parse().ok())
    }

    /// `a=rtcp-mux` present.
    pub fn rtcp_mux(&self) -> bool {
        self.attr("rtcp-mux").is_some()
    }

    /// Values of `a=crypto` lines (RFC 4568), unparsed: `1 AES_CM_128_HMAC_SHA1_80 inline:...`.
    pub fn crypto(&self) -> impl Iterator<Item = &str> + '_ {
        self.attrs("crypto").flatten()
    }

    /// Payload types as numbers (non-numeric formats skipped).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }
}

/// A session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`
    pub origin: Origin,
    /// `s=` (`-` when none)
    pub session_name: String,
    /// Session-level `c=`.
    pub connection: Option<Connection>,
    /// `t=` values (`0 0` when none).
    pub timing: Vec<String>,
    /// Other session-level lines (`i= u= e= p= b= z= k= r=`) as (type, value).
    pub lines: Vec<(char, String)>,
    /// Session-level attributes.
    pub attributes: Vec<Attribute>,
    /// Media sections.
    pub media: Vec<MediaDescription>,
}

fn parse_connection(v: &str, line: usize) -> Result<Connection, SdpError> {
    let e = SdpError::Syntax {
        line,
        what: "c= must be `IN IP4|IP6 <address>`",
    };
    let mut it = v.split_ascii_whitespace();
    if it.next() != Some("IN") {
        return Err(e);
    }
    let addr_type = match it.next() {
        Some("IP4") => AddrType::Ip4,
        Some("IP6") => AddrType::Ip6,
        _ => return Err(e),
    };
    let address = it.next().ok_or(e.clone())?.to_owned();
    if it.next().is_some() {
        return Err(e);
    }
    Ok(Connection { addr_type, address })
}

fn parse_attr(v: &str) -> Attribute {
    match v.split_once(':') {
        Some((n, val)) => Attribute::new(n, val),
        None => Attribute::flag(v),
    }
}

/// Most lines accepted in one body.
pub const MAX_LINES: usize = 512;

impl SessionDescription {
    /// Parses an SDP body (CRLF or LF line ends).
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::Utf8)?;
        let mut sd = SessionDescription {
            origin: Origin {
                username: String::new(),
                session_id: String::new(),
                session_version: 0,
                connection: Connection {
                    addr_type: AddrType::Ip4,
                    address: String::new(),
                },
            },
            session_name: "-".into(),
            connection: None,
            timing: Vec::new(),
            lines: Vec::new(),
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let mut saw_v = false;
        let mut saw_o = false;
        for (idx, raw) in text.split('\n').enumerate() {
            let line = idx + 1;
            if line > MAX_LINES {
                return Err(SdpError::TooLarge);
            }
            let l = raw.strip_suffix('\r').unwrap_or(raw);
            if l.is_empty() {
                continue;
            }
            let b = l.as_bytes();
            if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
                return Err(SdpError::Syntax {
                    line,
                    what: "expected <type>=<value>",
                });
            }
            let t = b[0] as char;
            let v = &l[2..];
            if !saw_v {
                if t != 'v' || v.trim() != "0" {
                    return Err(SdpError::Syntax {
                        line,
                        what: "first line must be v=0",
                    });
                }
                saw_v = true;
                continue;
            }
            match t {
                'v' => {
                    return Err(SdpError::Syntax {
                        line,
                        what: "repeated v=",
                    })
                }
                'o' => {
                    let f: Vec<&str> = v.split_ascii_whitespace().collect();
                    if f.len() != 6 || f[3] != "IN" {
                        return Err(SdpError::Syntax {
                            line,
                            what: "o= needs 6 fields",
                        });
                    }
                    sd.origin = Origin {
                        username: f[0].into(),
                        session_id: f[1].into(),
                        session_version: f[2].parse().map_err(|_| SdpError::Syntax {
                            line,
                            what: "o= version",
                        })?,
                        connection: parse_connection(&format!("IN {} {}", f[4], f[5]), line)?,
                    };
                    saw_o = true;
                }
                'm' => {
                    if sd.media.len() >= 32 {
                        return Err(SdpError::TooLarge);
                    }
                    let e = SdpError::Syntax {
                        line,
                        what: "m= must be `<media> <port> <proto> <fmt>...`",
                    };
                    let mut it = v.split_ascii_whitespace();
                    let media = it.next().ok_or(e.clone())?.to_owned();
                    let port_s = it.next().ok_or(e.clone())?;
                    let (port, port_count) = match port_s.split_once('/') {
                        Some((p, n)) => (
                            p.parse().map_err(|_| e.clone())?,
                            Some(n.parse().map_err(|_| e.clone())?),
                        ),
                        None => (port_s.parse().map_err(|_| e.clone())?, None),
                    };
                    let proto = it.next().ok_or(e.clone())?.to_owned();
                    let formats: Vec<String> = it.map(str::to_owned).collect();
                    if formats.is_empty() {
                        return Err(e);
                    }
                    sd.media.push(MediaDescription {
                        media,
                        port,
                        port_count,
                        proto,
                        formats,
                        connection: None,
                        lines: Vec::new(),
                        attributes: Vec::new(),
                    });
                }
                'c' => {
                    let c = parse_connection(v, line)?;
                    match sd.media.last_mut() {
                        Some(m) => m.connection = Some(c),
                        None => sd.connection = Some(c),
                    }
                }
                'a' => {
                    let a = parse_attr(v);
                    match sd.media.last_mut() {
                        Some(m) => m.attributes.push(a),
                        None => sd.attributes.push(a),
                    }
                }
                's' if sd.media.is_empty() => sd.session_name = v.into(),
                't' if sd.media.is_empty() => sd.timing.push(v.into()),
                _ => match sd.media.last_mut() {
                    Some(m) => m.lines.push((t, v.into())),
                    None => sd.lines.push((t, v.into())),
                },
            }
        }
        if !saw_v {
            return Err(SdpError::Missing("v="));
        }
        if !saw_o {
            return Err(SdpError::Missing("o="));
        }
        Ok(sd)
    }

    /// The effective direction of media section `i` (media level, else session level,
    /// else sendrecv).
    pub fn direction(&self, i: usize) -> Direction {
        self.media
            .get(i)
            .and_then(MediaDescription::direction_attr)
            .or_else(|| {
                self.attributes
                    .iter()
                    .rev()
                    .find_map(|a| Direction::from_attr(&a.name))
            })
            .unwrap_or(Direction::SendRecv)
    }

    /// The effective connection of media section `i`.
    pub fn connection_for(&self, i: usize) -> Option<&Connection> {
        self.media
            .get(i)
            .and_then(|m| m.connection.as_ref())
            .or(self.connection.as_ref())
    }
}

fn write_conn(f: &mut fmt::Formatter<'_>, c: &Connection) -> fmt::Result {
    write!(f, "c=IN {} {}\r\n", c.addr_type.as_str(), c.address)
}

fn write_attr(f: &mut fmt::Formatter<'_>, a: &Attribute) -> fmt::Result {
    match &a.value {
        Some(v) => write!(f, "a={}:{}\r\n", a.name, v),
        None => write!(f, "a={}\r\n", a.name),
    }
}

impl fmt::Display for SessionDescription {
    /// Serialises in RFC 4566 line order with CRLF line ends.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(
            f,
            "v=0\r\no={} {} {} IN {} {}\r\ns={}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            o.connection.addr_type.as_str(),
            o.connection.address,
            if self.session_name.is_empty() {
                "-"
            } else {
                &self.session_name
            }
        )?;
        for (t, v) in self
            .lines
            .iter()
            .filter(|(t, _)| matches!(t, 'i' | 'u' | 'e' | 'p'))
        {
            write!(f, "{t}={v}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write_conn(f, c)?;
        }
        for (t, v) in self.lines.iter().filter(|(t, _)| *t == 'b') {
            write!(f, "{t}={v}\r\n")?;
        }
        if self.timing.is_empty() {
            f.write_str("t=0 0\r\n")?;
        }
        for t in &self.timing {
            write!(f, "t={t}\r\n")?;
        }
        for (t, v) in self
            .lines
            .iter()
            .filter(|(t, _)| matches!(t, 'r' | 'z' | 'k'))
        {
            write!(f, "{t}={v}\r\n")?;
        }
        for a in &self.attributes {
            write_attr(f, a)?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.proto)?;
            for fm in &m.formats {
                write!(f, " {fm}")?;
            }
            f.write_str("\r\n")?;
            for (t, v) in m.lines.iter().filter(|(t, _)| *t == 'i') {
                write!(f, "{t}={v}\r\n")?;
            }
            if let Some(c) = &m.connection {
                write_conn(f, c)?;
            }
            for (t, v) in m.lines.iter().filter(|(t, _)| *t != 'i') {
                write!(f, "{t}={v}\r\n")?;
            }
            for a in &m.attributes {
                write_attr(f, a)?;
            }
        }
        Ok(())
    }
}
