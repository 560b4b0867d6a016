//! Header names (with compact forms) and the typed header values of RFC 3261 §20.

use std::borrow::Cow;

use super::error::ParseError;
use super::message::Method;
use super::params::{is_lws, is_token, quoted_end, skip_lws, trim_lws, Params};
use super::uri::{split_hostport, Host, Uri};

macro_rules! header_names {
    ($( $variant:ident => $canon:literal $(| $alias:literal)+ ;)*) => {
        /// A header name, recognised case-insensitively including compact forms.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $(
                #[doc = concat!("`", $canon, "`")]
                $variant,
            )*
            /// Any other header (compare its raw name).
            Other,
        }

        impl HeaderName {
            /// Canonical spelling (`Other` gives an empty string).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(HeaderName::$variant => $canon,)*
                    HeaderName::Other => "",
                }
            }

            /// Classifies a raw header name (long or compact form, any case).
            pub fn from_bytes(name: &[u8]) -> HeaderName {
                let mut low = [0u8; 24];
                if name.len() > low.len() {
                    return HeaderName::Other;
                }
                for (d, s) in low.iter_mut().zip(name) {
                    *d = s.to_ascii_lowercase();
                }
                match &low[..name.len()] {
                    $($(| $alias)+ => HeaderName::$variant,)*
                    _ => HeaderName::Other,
                }
            }
        }
    };
}

header_names! {
    Via => "Via" | b"via" | b"v";
    From => "From" | b"from" | b"f";
    To => "To" | b"to" | b"t";
    CallId => "Call-ID" | b"call-id" | b"i";
    CSeq => "CSeq" | b"cseq";
    MaxForwards => "Max-Forwards" | b"max-forwards";
    Contact => "Contact" | b"contact" | b"m";
    Route => "Route" | b"route";
    RecordRoute => "Record-Route" | b"record-route";
    ContentLength => "Content-Length" | b"content-length" | b"l";
    ContentType => "Content-Type" | b"content-type" | b"c";
    ContentEncoding => "Content-Encoding" | b"content-encoding" | b"e";
    Require => "Require" | b"require";
    ProxyRequire => "Proxy-Require" | b"proxy-require";
    Supported => "Supported" | b"supported" | b"k";
    Unsupported => "Unsupported" | b"unsupported";
    ReferTo => "Refer-To" | b"refer-to" | b"r";
    ReferredBy => "Referred-By" | b"referred-by" | b"b";
    Event => "Event" | b"event" | b"o";
    SubscriptionState => "Subscription-State" | b"subscription-state";
    Allow => "Allow" | b"allow";
    Accept => "Accept" | b"accept";
    SessionExpires => "Session-Expires" | b"session-expires" | b"x";
    MinSe => "Min-SE" | b"min-se";
    Authorization => "Authorization" | b"authorization";
    WwwAuthenticate => "WWW-Authenticate" | b"www-authenticate";
    ProxyAuthorization => "Proxy-Authorization" | b"proxy-authorization";
    ProxyAuthenticate => "Proxy-Authenticate" | b"proxy-authenticate";
    Subject => "Subject" | b"subject" | b"s";
    Expires => "Expires" | b"expires";
    Date => "Date" | b"date";
    Warning => "Warning" | b"warning";
    RetryAfter => "Retry-After" | b"retry-after";
    UserAgent => "User-Agent" | b"user-agent";
    Server => "Server" | b"server";
    Reason => "Reason" | b"reason";
    AllowEvents => "Allow-Events" | b"allow-events" | b"u";
}

fn herr(header: HeaderName, at: usize) -> ParseError {
    ParseError::Header {
        header: header.as_str(),
        at,
    }
}

/// One Via value (RFC 3261 §20.42, RFC 3581).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name and version as written (`SIP/2.0` normally), LWS removed by
    /// the accessors.
    pub protocol_version: &'a str,
    /// Transport token (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`, ...).
    pub transport: &'a str,
    /// sent-by host.
    pub host: Host<'a>,
    /// sent-by port.
    pub port: Option<u16>,
    /// Via parameters.
    pub params: Params<'a>,
}

impl<'a> Via<'a> {
    /// Parses one Via value (not a comma list).
    pub fn parse(s: &'a str) -> Result<Via<'a>, ParseError> {
        let e = |at| herr(HeaderName::Via, at);
        let b = s.as_bytes();
        let mut i = skip_lws(b, 0);
        let mut parts = [(0usize, 0usize); 3];
        for (k, part) in parts.iter_mut().enumerate() {
            if k > 0 {
                i = skip_lws(b, i);
                if b.get(i) != Some(&b'/') {
                    return Err(e(i));
                }
                i = skip_lws(b, i + 1);
            }
            let st = i;
            while i < b.len() && is_token(b[i]) {
                i += 1;
            }
            if i == st {
                return Err(e(i));
            }
            *part = (st, i);
        }
        if !s[parts[0].0..parts[0].1].eq_ignore_ascii_case("SIP") {
            return Err(e(parts[0].0));
        }
        let protocol_version = &s[parts[1].0..parts[1].1];
        let transport = &s[parts[2].0..parts[2].1];
        let hs = skip_lws(b, i);
        if hs == i {
            return Err(e(i));
        }
        let mut j = hs;
        while j < b.len() && !is_lws(b[j]) && b[j] != b';' {
            j += 1;
        }
        let (host, port) = split_hostport(&s[hs..j])
            .map_err(|x| herr(HeaderName::Via, x.position().unwrap_or(0) + hs))?;
        let params = Params::parse(&s[j..]).map_err(|x| e(x.position().unwrap_or(0) + j))?;
        Ok(Via {
            protocol_version,
            transport,
            host,
            port,
            params,
        })
    }

    /// `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.params.get("branch").flatten()
    }

    /// The branch when it carries the RFC 3261 magic cookie and something after it;
    /// `None` means RFC 2543 transaction matching applies (RFC 4475 §3.2.1).
    pub fn rfc3261_branch(&self) -> Option<&'a str> {
        self.branch()
            // Bytes, not a str slice: the branch may hold a multi-byte character
            // across byte 7 (a fuzz finding, tests/data/sip_message).
            .filter(|b| b.len() > 7 && b.as_bytes()[..7].eq_ignore_ascii_case(b"z9hG4bK"))
    }

    /// `received` parameter.
    pub fn received(&self) -> Option<&'a str> {
        self.params.get("received").flatten()
    }

    /// `rport`: `None` absent, `Some(None)` requested (no value), `Some(Some(p))` filled.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// `maddr` parameter.
    pub fn maddr(&self) -> Option<&'a str> {
        self.params.get("maddr").flatten()
    }
}

/// A name-addr or addr-spec with header parameters: From, To, Contact, Route,
/// Record-Route, Refer-To, Referred-By.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// Display name as written (quoted string with quotes, or tokens).
    pub display_raw: Option<&'a str>,
    /// The address.
    pub uri: Uri<'a>,
    /// Header parameters (after the address).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses one name-addr/addr-spec value; `header` names the header in errors.
    pub fn parse(s: &'a str, header: HeaderName) -> Result<NameAddr<'a>, ParseError> {
        let e = |at| herr(header, at);
        let b = s.as_bytes();
        let i = skip_lws(b, 0);
        if i >= b.len() {
            return Err(e(i));
        }
        let (display_raw, lt) = if b[i] == b'"' {
            let end = quoted_end(b, i).ok_or_else(|| e(i))?;
            let lt = skip_lws(b, end);
            if b.get(lt) != Some(&b'<') {
                return Err(e(lt));
            }
            (Some(&s[i..end]), Some(lt))
        } else {
            match s.find('<') {
                Some(lt) => {
                    let d = trim_lws(&s[i..lt]);
                    if let Some(k) = d.bytes().position(|c| !(is_token(c) || is_lws(c))) {
                        return Err(e(i + k));
                    }
                    (if d.is_empty() { None } else { Some(d) }, Some(lt))
                }
                None => (None, None),
            }
        };
        let (uri_s, ubase, rest, rbase) = match lt {
            Some(lt) => {
                let gt = s[lt..].find('>').map(|g| g + lt).ok_or_else(|| e(lt))?;
                (&s[lt + 1..gt], lt + 1, &s[gt + 1..], gt + 1)
            }
            None => {
                let mut j = i;
                while j < b.len() && !is_lws(b[j]) && b[j] != b';' {
                    j += 1;
                }
                let u = &s[i..j];
                // RFC 3261 §20: an addr-spec with `,` `?` or `;` must be enclosed in <>.
                if let Some(k) = u.find([',', '?']) {
                    return Err(e(i + k));
                }
                (u, i, &s[j..], j)
            }
        };
        let uri = Uri::parse(uri_s).map_err(|x| e(x.position().unwrap_or(0) + ubase))?;
        let params = Params::parse(rest).map_err(|x| e(x.position().unwrap_or(0) + rbase))?;
        Ok(NameAddr {
            display_raw,
            uri,
            params,
        })
    }

    /// Display name without quotes and with `\` escapes resolved.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        let d = self.display_raw?;
        match d.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
            Some(inner) if inner.contains('\\') => {
                let mut out = String::with_capacity(inner.len());
                let mut esc = false;
                for c in inner.chars() {
                    if esc || c != '\\' {
                        out.push(c);
                        esc = false;
                    } else {
                        esc = true;
                    }
                }
                Some(Cow::Owned(out))
            }
            Some(inner) => Some(Cow::Borrowed(inner)),
            None => Some(Cow::Borrowed(d)),
        }
    }

    /// `tag` parameter.
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }

    /// A header parameter by name.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params.get(name)
    }
}

/// CSeq value (RFC 3261 §20.16): sequence number ≤ 2^32-1 and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number.
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(s: &str) -> Result<CSeq, ParseError> {
        let e = |at| herr(HeaderName::CSeq, at);
        let b = s.as_bytes();
        let i = skip_lws(b, 0);
        let mut j = i;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        let seq = parse_u32(&s[i..j]).ok_or_else(|| e(i))?;
        let k = skip_lws(b, j);
        if k == j {
            return Err(e(j));
        }
        let m = trim_lws(&s[k..]);
        if m.is_empty() || !m.bytes().all(is_token) {
            return Err(e(k));
        }
        Ok(CSeq {
            seq,
            method: Method::from_token(m),
        })
    }
}

/// Parses a decimal of at most 2^32-1 (leading zeros allowed).
pub(crate) fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let t = s.trim_start_matches('0');
    if t.len() > 10 {
        return None;
    }
    if t.is_empty() {
        return Some(0);
    }
    t.parse::<u64>().ok().and_then(|v| u32::try_from(v).ok())
}

/// A media type with parameters (Content-Type, Accept elements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// Type (`application`).
    pub kind: &'a str,
    /// Subtype (`sdp`).
    pub subtype: &'a str,
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// Parses `type/subtype *(;param)`.
    pub fn parse(s: &'a str, header: HeaderName) -> Result<MediaType<'a>, ParseError> {
        let e = |at| herr(header, at);
        let b = s.as_bytes();
        let i = skip_lws(b, 0);
        let mut j = i;
        while j < b.len() && is_token(b[j]) {
            j += 1;
        }
        let kind = &s[i..j];
        let k = skip_lws(b, j);
        if kind.is_empty() || b.get(k) != Some(&b'/') {
            return Err(e(k));
        }
        let m = skip_lws(b, k + 1);
        let mut n = m;
        while n < b.len() && is_token(b[n]) {
            n += 1;
        }
        let subtype = &s[m..n];
        if subtype.is_empty() {
            return Err(e(m));
        }
        let params = Params::parse(&s[n..]).map_err(|x| e(x.position().unwrap_or(0) + n))?;
        Ok(MediaType {
            kind,
            subtype,
            params,
        })
    }

    /// True when this is `kind/subtype` (case-insensitive).
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }
}

/// Event / Subscription-State style value: a token and parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenParams<'a> {
    /// The leading token (`refer`, `active`, `1800`...).
    pub value: &'a str,
    /// Parameters after it.
    pub params: Params<'a>,
}

impl<'a> TokenParams<'a> {
    /// Parses `token *(;param)`.
    pub fn parse(s: &'a str, header: HeaderName) -> Result<TokenParams<'a>, ParseError> {
        let b = s.as_bytes();
        let i = skip_lws(b, 0);
        let mut j = i;
        while j < b.len() && is_token(b[j]) {
            j += 1;
        }
        if j == i {
            return Err(herr(header, i));
        }
        let params =
            Params::parse(&s[j..]).map_err(|x| herr(header, x.position().unwrap_or(0) + j))?;
        Ok(TokenParams {
            value: &s[i..j],
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_compact_forms() {
        for (raw, want) in [
            ("VIA", HeaderName::Via),
            ("v", HeaderName::Via),
            ("I", HeaderName::CallId),
            ("call-id", HeaderName::CallId),
            ("m", HeaderName::Contact),
            ("l", HeaderName::ContentLength),
            ("c", HeaderName::ContentType),
            ("e", HeaderName::ContentEncoding),
            ("k", HeaderName::Supported),
            ("s", HeaderName::Subject),
            ("o", HeaderName::Event),
            ("r", HeaderName::ReferTo),
            ("b", HeaderName::ReferredBy),
            ("u", HeaderName::AllowEvents),
            ("x", HeaderName::SessionExpires),
            ("www-authenticate", HeaderName::WwwAuthenticate),
            ("C%6Fntact", HeaderName::Other),
            ("q", HeaderName::Other),
        ] {
            assert_eq!(HeaderName::from_bytes(raw.as_bytes()), want, "{raw}");
            if want != HeaderName::Other {
                assert_eq!(HeaderName::from_bytes(want.as_str().as_bytes()), want);
            }
        }
    }

    #[test]
    fn rfc3261_branch_with_a_multibyte_character_across_the_cookie() {
        // Byte 7 falls inside 'е' (2 bytes): a str slice there panicked (fuzz finding).
        let via = Via::parse("SIP/2.0/UDP h;branch=39\u{442}\u{43e}\u{435}x").unwrap();
        assert_eq!(via.rfc3261_branch(), None);
        let via = Via::parse("SIP/2.0/UDP h;branch=z9hG4bK\u{442}").unwrap();
        assert_eq!(via.rfc3261_branch(), Some("z9hG4bK\u{442}"));
        let via = Via::parse("SIP/2.0/UDP h;branch=Z9HG4BKabc").unwrap();
        assert_eq!(via.rfc3261_branch(), Some("Z9HG4BKabc"));
    }

    #[test]
    fn cseq_bounds() {
        assert_eq!(CSeq::parse("4294967295 INVITE").unwrap().seq, u32::MAX);
        assert!(CSeq::parse("4294967296 INVITE").is_err());
        assert!(CSeq::parse("00000000000000000001 BYE").is_ok());
        assert!(CSeq::parse("-1 INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        assert!(CSeq::parse("1 ").is_err());
    }

    #[test]
    fn via_forms() {
        let v =
            Via::parse("SIP/2.0/TLS [2001:db8::1]:5061;received=2001:db8::9;rport=5062").unwrap();
        assert_eq!(
            (v.transport, v.port, v.rport()),
            ("TLS", Some(5061), Some(Some(5062)))
        );
        assert_eq!(v.received(), Some("2001:db8::9"));
        assert!(Via::parse("SIP/2.0/UDP").is_err());
        assert!(Via::parse("SIP/2.0 UDP host").is_err());
        assert!(Via::parse("SIP/2.0/UDP host;;").is_err());
        assert!(Via::parse("HTTP/2.0/UDP host").is_err());
    }
}
