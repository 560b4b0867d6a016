//! The SIP message model: a request or response that owns its datagram (`Bytes`) and
//! records spans into it; typed header values are parsed on access, borrowing from it.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;

use super::error::ParseError;
use super::header::{CSeq, HeaderName, MediaType, NameAddr, TokenParams, Via};
use super::params::trim_lws;
use super::uri::Uri;

/// A SIP method. Unknown methods are kept by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE
    Invite,
    /// ACK
    Ack,
    /// BYE
    Bye,
    /// CANCEL
    Cancel,
    /// OPTIONS
    Options,
    /// REGISTER
    Register,
    /// REFER (RFC 3515)
    Refer,
    /// NOTIFY (RFC 6665)
    Notify,
    /// SUBSCRIBE
    Subscribe,
    /// INFO (RFC 6086)
    Info,
    /// UPDATE (RFC 3311)
    Update,
    /// PRACK (RFC 3262)
    Prack,
    /// MESSAGE (RFC 3428)
    Message,
    /// PUBLISH (RFC 3903)
    Publish,
    /// Any other method token (case-sensitive, RFC 3261 §7.1).
    Extension(Box<str>),
}

impl Method {
    /// Classifies a method token (methods are case-sensitive).
    pub fn from_token(t: &str) -> Method {
        match t {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other.into()),
        }
    }

    /// The method token.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Byte range into the message buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One header line (possibly folded) as received.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderField {
    pub(crate) name: HeaderName,
    pub(crate) raw_name: Span,
    pub(crate) value: Span,
}

/// A framing problem with Content-Length (the message still parsed, so a 400 can be
/// built from its headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FramingFault {
    /// Content-Length is not a non-negative 32-bit decimal.
    Invalid,
    /// Several Content-Length headers disagree.
    Conflict,
    /// Content-Length is larger than the bytes received.
    Truncated,
}

/// The header section of a message: fields in received order over the shared buffer.
#[derive(Clone)]
pub struct Headers {
    pub(crate) buf: Bytes,
    pub(crate) fields: Vec<HeaderField>,
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Headers {
    pub(crate) fn text(&self, s: Span) -> &str {
        // The header section was validated as UTF-8 and spans end on ASCII delimiters.
        std::str::from_utf8(&self.buf[s.range()]).unwrap_or("")
    }

    /// All fields as (raw name, raw value). Values of folded lines still contain their
    /// CR LF; typed accessors treat it as white space.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.fields
            .iter()
            .map(|f| (self.text(f.raw_name), self.text(f.value)))
    }

    /// Byte offset of the first value of `name` (0 when absent), for error positions.
    pub(crate) fn position(&self, name: HeaderName) -> usize {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map_or(0, |f| f.value.start as usize)
    }

    /// Number of header fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when there are no header fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Raw values of a known header, in order.
    pub fn get_all(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.fields
            .iter()
            .filter(move |f| f.name == name)
            .map(|f| self.text(f.value))
    }

    fn get_all_at(&self, name: HeaderName) -> impl Iterator<Item = (usize, &str)> + '_ {
        self.fields
            .iter()
            .filter(move |f| f.name == name)
            .map(|f| (f.value.start as usize, self.text(f.value)))
    }

    /// First raw value of a known header.
    pub fn get(&self, name: HeaderName) -> Option<&str> {
        self.get_all(name).next()
    }

    /// Raw values of any header by name (case-insensitive; compact forms resolved for
    /// known headers).
    pub fn get_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        let known = HeaderName::from_bytes(name.as_bytes());
        self.fields
            .iter()
            .filter(move |f| {
                if known == HeaderName::Other {
                    f.name == HeaderName::Other && self.text(f.raw_name).eq_ignore_ascii_case(name)
                } else {
                    f.name == known
                }
            })
            .map(|f| self.text(f.value))
    }

    /// The single value of a header that must appear at most once.
    pub fn single(&self, name: HeaderName) -> Result<Option<(usize, &str)>, ParseError> {
        let mut it = self.get_all_at(name);
        let first = it.next();
        if let Some((at, _)) = it.next() {
            return Err(ParseError::Duplicate {
                header: name.as_str(),
                at,
            });
        }
        Ok(first)
    }

    fn required(&self, name: HeaderName) -> Result<(usize, &str), ParseError> {
        self.single(name)?.ok_or(ParseError::Missing {
            header: name.as_str(),
        })
    }

    /// Every Via value in order (comma lists expanded).
    pub fn vias(&self) -> Result<Vec<Via<'_>>, ParseError> {
        let mut out = Vec::with_capacity(2);
        for (base, v) in self.get_all_at(HeaderName::Via) {
            let items = split_list(v, HeaderName::Via, base)?;
            for (off, item) in items {
                out.push(Via::parse(item).map_err(|e| e.shifted(base + off))?);
            }
        }
        Ok(out)
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
        let (base, v) = self
            .get_all_at(HeaderName::Via)
            .next()
            .ok_or(ParseError::Missing { header: "Via" })?;
        let (off, item) = split_list(v, HeaderName::Via, base)?
            .into_iter()
            .next()
            .ok_or(ParseError::Header {
                header: "Via",
                at: base,
            })?;
        Via::parse(item).map_err(|e| e.shifted(base + off))
    }

    fn name_addr(&self, name: HeaderName) -> Result<NameAddr<'_>, ParseError> {
        let (at, v) = self.required(name)?;
        NameAddr::parse(v, name).map_err(|e| e.shifted(at))
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
        self.name_addr(HeaderName::From)
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
        self.name_addr(HeaderName::To)
    }

    /// Refer-To (RFC 3515).
    pub fn refer_to(&self) -> Result<NameAddr<'_>, ParseError> {
        self.name_addr(HeaderName::ReferTo)
    }

    /// Referred-By (RFC 3892), if present.
    pub fn referred_by(&self) -> Result<Option<NameAddr<'_>>, ParseError> {
        match self.single(HeaderName::ReferredBy)? {
            None => Ok(None),
            Some((at, v)) => NameAddr::parse(v, HeaderName::ReferredBy)
                .map(Some)
                .map_err(|e| e.shifted(at)),
        }
    }

    /// Call-ID (trimmed, opaque).
    pub fn call_id(&self) -> Result<&str, ParseError> {
        let (at, v) = self.required(HeaderName::CallId)?;
        let t = trim_lws(v);
        if t.is_empty() || t.bytes().any(|c| c <= b' ') {
            return Err(ParseError::Header {
                header: "Call-ID",
                at,
            });
        }
        Ok(t)
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq, ParseError> {
        let (at, v) = self.required(HeaderName::CSeq)?;
        CSeq::parse(v).map_err(|e| e.shifted(at))
    }

    /// Max-Forwards (0..=255), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, ParseError> {
        match self.single(HeaderName::MaxForwards)? {
            None => Ok(None),
            Some((at, v)) => super::header::parse_u32(trim_lws(v))
                .and_then(|n| u8::try_from(n).ok())
                .map(Some)
                .ok_or(ParseError::Header {
                    header: "Max-Forwards",
                    at,
                }),
        }
    }

    fn name_addr_list(&self, name: HeaderName) -> Result<Vec<NameAddr<'_>>, ParseError> {
        let mut out = Vec::new();
        for (base, v) in self.get_all_at(name) {
            for (off, item) in split_list(v, name, base)? {
                out.push(NameAddr::parse(item, name).map_err(|e| e.shifted(base + off))?);
            }
        }
        Ok(out)
    }

    /// Contact values in order (`Contact: *` gives an empty list; see [`Headers::contact_star`]).
    pub fn contacts(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        if self.contact_star() {
            return Ok(Vec::new());
        }
        self.name_addr_list(HeaderName::Contact)
    }

    /// True for `Contact: *`.
    pub fn contact_star(&self) -> bool {
        self.get_all(HeaderName::Contact)
            .any(|v| trim_lws(v) == "*")
    }

    /// Route values in order.
    pub fn routes(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.name_addr_list(HeaderName::Route)
    }

    /// Record-Route values in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr<'_>>, ParseError> {
        self.name_addr_list(HeaderName::RecordRoute)
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType<'_>>, ParseError> {
        match self.single(HeaderName::ContentType)? {
            None => Ok(None),
            Some((at, v)) => MediaType::parse(v, HeaderName::ContentType)
                .map(Some)
                .map_err(|e| e.shifted(at)),
        }
    }

    /// Tokens of a comma-list header (Require, Supported, Allow, Content-Encoding,
    /// Unsupported, Proxy-Require, Allow-Events), all occurrences.
    pub fn tokens(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        self.get_all(name)
            .flat_map(|v| v.split(',').map(trim_lws).filter(|t| !t.is_empty()))
    }

    /// Accept elements, if the header is present.
    pub fn accept(&self) -> Option<Result<Vec<MediaType<'_>>, ParseError>> {
        self.get(HeaderName::Accept)?;
        let mut out = Vec::new();
        for (base, v) in self.get_all_at(HeaderName::Accept) {
            let items = match split_list(v, HeaderName::Accept, base) {
                Ok(i) => i,
                Err(e) => return Some(Err(e)),
            };
            for (off, item) in items {
                match MediaType::parse(item, HeaderName::Accept) {
                    Ok(m) => out.push(m),
                    Err(e) => return Some(Err(e.shifted(base + off))),
                }
            }
        }
        Some(Ok(out))
    }

    /// Event (RFC 6665), if present.
    pub fn event(&self) -> Result<Option<TokenParams<'_>>, ParseError> {
        self.token_params(HeaderName::Event)
    }

    /// Subscription-State, if present.
    pub fn subscription_state(&self) -> Result<Option<TokenParams<'_>>, ParseError> {
        self.token_params(HeaderName::SubscriptionState)
    }

    /// Session-Expires (RFC 4028) as (seconds, `refresher` param), if present.
    pub fn session_expires(&self) -> Result<Option<(u32, Option<&str>)>, ParseError> {
        let Some(tp) = self.token_params(HeaderName::SessionExpires)? else {
            return Ok(None);
        };
        let secs = super::header::parse_u32(tp.value).ok_or(ParseError::Header {
            header: "Session-Expires",
            at: self.position(HeaderName::SessionExpires),
        })?;
        Ok(Some((secs, tp.params.get("refresher").flatten())))
    }

    fn token_params(&self, name: HeaderName) -> Result<Option<TokenParams<'_>>, ParseError> {
        match self.single(name)? {
            None => Ok(None),
            Some((at, v)) => TokenParams::parse(v, name)
                .map(Some)
                .map_err(|e| e.shifted(at)),
        }
    }

    /// Content-Length, if present and valid.
    pub fn content_length(&self) -> Option<u32> {
        self.get(HeaderName::ContentLength)
            .and_then(|v| super::header::parse_u32(trim_lws(v)))
    }

    /// A header value with folding (CR LF + white space) collapsed to single spaces.
    pub fn unfolded(value: &str) -> Cow<'_, str> {
        if !value.contains(['\r', '\n']) {
            return Cow::Borrowed(value);
        }
        let mut out = String::with_capacity(value.len());
        let mut ws = false;
        for c in value.chars() {
            if matches!(c, ' ' | '\t' | '\r' | '\n') {
                ws = true;
            } else {
                if ws && !out.is_empty() {
                    out.push(' ');
                }
                ws = false;
                out.push(c);
            }
        }
        Cow::Owned(out)
    }
}

fn split_list(v: &str, name: HeaderName, base: usize) -> Result<Vec<(usize, &str)>, ParseError> {
    let parts = super::params::split_commas(v).map_err(|at| ParseError::Header {
        header: name.as_str(),
        at: base + at,
    })?;
    let mut out = Vec::with_capacity(parts.len());
    for (off, p) in parts {
        let t = trim_lws(p);
        if t.is_empty() {
            return Err(ParseError::Header {
                header: name.as_str(),
                at: base + off,
            });
        }
        let lead = p.len() - p.trim_start_matches([' ', '\t', '\r', '\n']).len();
        out.push((off + lead, t));
    }
    Ok(out)
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    pub(crate) uri: Span,
    pub(crate) version: Span,
    /// Header fields.
    pub headers: Headers,
    /// Body (zero-copy slice of the datagram), limited to Content-Length.
    pub body: Bytes,
    /// Content-Length problem found while framing, if any.
    pub framing: Option<FramingFault>,
}

impl Request {
    /// Request-URI text as received (trimmed).
    pub fn uri_str(&self) -> &str {
        self.headers.text(self.uri)
    }

    /// Parsed Request-URI.
    pub fn uri(&self) -> Result<Uri<'_>, ParseError> {
        Uri::parse(self.uri_str()).map_err(|e| e.shifted(self.uri.start as usize))
    }

    /// Protocol version token (`SIP/2.0`).
    pub fn version(&self) -> &str {
        self.headers.text(self.version)
    }

    /// The called number: the Request-URI user (sip/sips) or number (tel), else the To
    /// URI's, normalised ([`super::uri::normalise_number`]): `+` and digits only.
    pub fn called_number(&self) -> Option<String> {
        if let Some(n) = self.uri().ok().and_then(|u| u.telephone_number()) {
            return Some(n);
        }
        self.headers
            .to()
            .ok()
            .and_then(|t| t.uri.telephone_number())
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code (100..=699).
    pub status: u16,
    pub(crate) reason: Span,
    pub(crate) version: Span,
    /// Header fields.
    pub headers: Headers,
    /// Body (zero-copy slice of the datagram), limited to Content-Length.
    pub body: Bytes,
    /// Content-Length problem found while framing, if any.
    pub framing: Option<FramingFault>,
}

impl Response {
    /// Reason phrase (may be empty, may be any UTF-8).
    pub fn reason(&self) -> &str {
        self.headers.text(self.reason)
    }

    /// Protocol version token.
    pub fn version(&self) -> &str {
        self.headers.text(self.version)
    }
}

/// A SIP message.
#[derive(Debug, Clone)]
pub enum SipMessage {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

impl SipMessage {
    /// Parses one message from a datagram or a framed stream chunk. See
    /// [`super::parse::parse`].
    pub fn parse(buf: Bytes) -> Result<SipMessage, ParseError> {
        super::parse::parse(buf)
    }

    /// Header fields.
    pub fn headers(&self) -> &Headers {
        match self {
            SipMessage::Request(r) => &r.headers,
            SipMessage::Response(r) => &r.headers,
        }
    }

    /// Body.
    pub fn body(&self) -> &Bytes {
        match self {
            SipMessage::Request(r) => &r.body,
            SipMessage::Response(r) => &r.body,
        }
    }
}
