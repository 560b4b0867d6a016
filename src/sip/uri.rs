//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), borrowed from the message text.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::error::ParseError;
use super::params::Params;

/// The scheme of a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other absolute URI scheme (kept opaque).
    Other(&'a str),
}

/// The host part of a SIP URI or a Via sent-by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// A dotted IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 reference `[...]` (brackets removed).
    Ipv6(Ipv6Addr),
    /// A domain name (as written; compare case-insensitively).
    Name(&'a str),
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl Host<'_> {
    /// Parses `host` (IPv4, `[IPv6]` or a domain name).
    pub fn parse(s: &str) -> Result<Host<'_>, ParseError> {
        let b = s.as_bytes();
        if b.first() == Some(&b'[') {
            let inner = s
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .ok_or(ParseError::Uri { at: 0 })?;
            return inner
                .parse()
                .map(Host::Ipv6)
                .map_err(|_| ParseError::Uri { at: 1 });
        }
        if b.is_empty() {
            return Err(ParseError::Uri { at: 0 });
        }
        if let Some(i) = b
            .iter()
            .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_')))
        {
            return Err(ParseError::Uri { at: i });
        }
        if b.iter().all(|c| c.is_ascii_digit() || *c == b'.') {
            if let Ok(a) = s.parse::<Ipv4Addr>() {
                return Ok(Host::Ipv4(a));
            }
        }
        Ok(Host::Name(s))
    }

    fn eq_ignore_case(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

/// Splits `host[:port]` (with `[v6]:port`) into host and port.
pub(crate) fn split_hostport(s: &str) -> Result<(Host<'_>, Option<u16>), ParseError> {
    let (h, p) = if s.starts_with('[') {
        let close = s.find(']').ok_or(ParseError::Uri { at: 0 })?;
        let rest = &s[close + 1..];
        match rest.strip_prefix(':') {
            Some(p) => (&s[..=close], Some((p, close + 2))),
            None if rest.is_empty() => (s, None),
            None => return Err(ParseError::Uri { at: close + 1 }),
        }
    } else {
        match s.find(':') {
            Some(i) => (&s[..i], Some((&s[i + 1..], i + 1))),
            None => (s, None),
        }
    };
    let host = Host::parse(h)?;
    let port = match p {
        None => None,
        Some((p, at)) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(ParseError::Uri { at });
            }
            Some(p.parse::<u16>().map_err(|_| ParseError::Uri { at })?)
        }
    };
    Ok((host, port))
}

/// A parsed URI. Components are borrowed, still %-escaped; use the `*_unescaped`
/// accessors to read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    /// Scheme.
    pub scheme: Scheme<'a>,
    /// User part (sip/sips) or the number of a tel URI, escaped.
    pub user: Option<&'a str>,
    /// Password of a sip/sips userinfo, escaped.
    pub password: Option<&'a str>,
    /// Host (sip/sips only).
    pub host: Option<Host<'a>>,
    /// Explicit port.
    pub port: Option<u16>,
    /// URI parameters (`;name=value`).
    pub params: Params<'a>,
    /// URI headers (`?a=b&c=d`), escaped, without the `?`.
    pub headers: Option<&'a str>,
    /// The whole URI text.
    pub raw: &'a str,
}

fn bad_uri_char(c: u8) -> bool {
    c <= b' ' || matches!(c, b'<' | b'>' | b'"' | 0x7f)
}

impl<'a> Uri<'a> {
    /// Parses an absolute URI: sip/sips/tel in full, other schemes kept opaque.
    pub fn parse(s: &'a str) -> Result<Uri<'a>, ParseError> {
        if let Some(i) = s.bytes().position(bad_uri_char) {
            return Err(ParseError::Uri { at: i });
        }
        let colon = s.find(':').ok_or(ParseError::Uri { at: 0 })?;
        let scheme_s = &s[..colon];
        let sb = scheme_s.as_bytes();
        if sb.is_empty()
            || !sb[0].is_ascii_alphabetic()
            || !sb
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        {
            return Err(ParseError::Uri { at: 0 });
        }
        let rest = &s[colon + 1..];
        if rest.is_empty() {
            return Err(ParseError::Uri { at: colon + 1 });
        }
        let base = colon + 1;
        let scheme = if scheme_s.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme_s.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else if scheme_s.eq_ignore_ascii_case("tel") {
            Scheme::Tel
        } else {
            return Ok(Uri {
                scheme: Scheme::Other(scheme_s),
                user: None,
                password: None,
                host: None,
                port: None,
                params: Params::empty(),
                headers: None,
                raw: s,
            });
        };
        if scheme == Scheme::Tel {
            let end = rest.find(';').unwrap_or(rest.len());
            let number = &rest[..end];
            check_escapes(number).map_err(|e| e.shifted(base))?;
            let params = Params::parse(&rest[end..]).map_err(|e| e.shifted(base + end))?;
            return Ok(Uri {
                scheme,
                user: Some(number),
                password: None,
                host: None,
                port: None,
                params,
                headers: None,
                raw: s,
            });
        }
        let (userinfo, hostpart, hbase) = match rest.find('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..], base + at + 1),
            None => (None, rest, base),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                check_escapes(ui).map_err(|e| e.shifted(base))?;
                match ui.find(':') {
                    Some(i) => (Some(&ui[..i]), Some(&ui[i + 1..])),
                    None => (Some(ui), None),
                }
            }
        };
        if user == Some("") {
            return Err(ParseError::Uri { at: base });
        }
        let hp_end = hostpart.find([';', '?']).unwrap_or(hostpart.len());
        let (host, port) = split_hostport(&hostpart[..hp_end]).map_err(|e| e.shifted(hbase))?;
        let tail = &hostpart[hp_end..];
        let (ptxt, headers) = match tail.find('?') {
            Some(q) => (&tail[..q], Some(&tail[q + 1..])),
            None => (tail, None),
        };
        let params = Params::parse(ptxt).map_err(|e| e.shifted(hbase + hp_end))?;
        if let Some(h) = headers {
            check_escapes(h).map_err(|e| e.shifted(hbase + hp_end + ptxt.len() + 1))?;
        }
        Ok(Uri {
            scheme,
            user,
            password,
            host: Some(host),
            port,
            params,
            headers,
            raw: s,
        })
    }

    /// True for sip: and sips: URIs.
    pub fn is_sip(&self) -> bool {
        matches!(self.scheme, Scheme::Sip | Scheme::Sips)
    }

    /// The user part with %-escapes decoded (`%00` becomes NUL).
    pub fn user_unescaped(&self) -> Option<Cow<'a, str>> {
        self.user.map(unescape)
    }

    /// The password with %-escapes decoded.
    pub fn password_unescaped(&self) -> Option<Cow<'a, str>> {
        self.password.map(unescape)
    }

    /// A URI parameter by name (case-insensitive): `Some(None)` for a flag.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params.get(name)
    }

    /// `transport=` parameter.
    pub fn transport(&self) -> Option<&'a str> {
        self.param("transport").flatten()
    }

    /// Iterates the URI headers as (name, escaped value).
    pub fn header_fields(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.headers
            .unwrap_or("")
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.find('=') {
                Some(i) => (&kv[..i], &kv[i + 1..]),
                None => (kv, ""),
            })
    }

    /// The telephone number this URI addresses, normalised: visual separators
    /// (`-`, `.`, `(`, `)`, space) removed, a leading `+` kept, digits only otherwise.
    ///
    /// For tel: URIs the number; for sip/sips the user part when it is a phone number
    /// (`user=phone`, or only digits and separators). `None` otherwise.
    pub fn telephone_number(&self) -> Option<String> {
        let user = self.user_unescaped()?;
        let number = user.split(';').next().unwrap_or("");
        normalise_number(number)
    }

    /// URI equivalence per RFC 3261 §19.1.4 (sip/sips), RFC 3966 §4 (tel), byte
    /// equality for other schemes.
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        match (self.scheme, other.scheme) {
            (Scheme::Other(a), Scheme::Other(b)) => {
                return a.eq_ignore_ascii_case(b) && self.raw[a.len()..] == other.raw[b.len()..]
            }
            (a, b) if a != b => return false,
            _ => {}
        }
        if self.scheme == Scheme::Tel {
            return self.telephone_number() == other.telephone_number()
                && params_equal_all(self.params, other.params);
        }
        if self.user_unescaped() != other.user_unescaped()
            || self.password_unescaped() != other.password_unescaped()
            || self.port != other.port
        {
            return false;
        }
        match (&self.host, &other.host) {
            (Some(a), Some(b)) if a.eq_ignore_case(b) => {}
            _ => return false,
        }
        // user, ttl, method, maddr, transport: must match when present in either.
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            let a = self.params.get(name);
            let b = other.params.get(name);
            match (a, b) {
                (None, None) => {}
                (Some(x), Some(y)) if opt_eq_ci(x, y) => {}
                _ => return false,
            }
        }
        // Other parameters: compared only when present in both.
        for (name, value) in self.params.iter() {
            if let Some(v2) = other.params.get(name) {
                if !opt_eq_ci(value, v2) {
                    return false;
                }
            }
        }
        // Headers: must match when present in either (order-insensitive).
        let mut a: Vec<(String, String)> = self
            .header_fields()
            .map(|(k, v)| (unescape(k).to_ascii_lowercase(), unescape(v).into_owned()))
            .collect();
        let mut b: Vec<(String, String)> = other
            .header_fields()
            .map(|(k, v)| (unescape(k).to_ascii_lowercase(), unescape(v).into_owned()))
            .collect();
        a.sort();
        b.sort();
        a == b
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.raw)
    }
}

fn opt_eq_ci(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => unescape(x).eq_ignore_ascii_case(&unescape(y)),
        _ => false,
    }
}

fn params_equal_all(a: Params<'_>, b: Params<'_>) -> bool {
    a.iter().count() == b.iter().count()
        && a.iter()
            .all(|(n, v)| b.get(n).is_some_and(|w| opt_eq_ci(v, w)))
}

/// Strips visual separators from a dialable number; `+` only in front, digits otherwise.
pub fn normalise_number(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '+' if i == 0 => out.push('+'),
            '0'..='9' => out.push(c),
            '-' | '.' | '(' | ')' | ' ' => {}
            _ => return None,
        }
    }
    let digits = out.trim_start_matches('+').len();
    (digits > 0 && digits <= 15).then_some(out)
}

/// Checks that every `%` starts a valid `%HH` escape.
pub(crate) fn check_escapes(s: &str) -> Result<(), ParseError> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return Err(ParseError::Uri { at: i });
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return Err(ParseError::Uri { at: i });
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Decodes `%HH` escapes; an invalid escape is kept literally; invalid UTF-8 after
/// decoding is replaced (U+FFFD).
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod rfc3261 {
    use super::*;

    fn eq(a: &str, b: &str) -> bool {
        Uri::parse(a).unwrap().equivalent(&Uri::parse(b).unwrap())
    }

    /// RFC 3261 §19.1.4: equivalent pairs.
    #[test]
    fn equivalent_examples() {
        assert!(eq(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;newparam=5"
        ));
        assert!(eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:carol@chicago.com;newparam=5",
            "sip:carol@chicago.com;security=on"
        ));
        assert!(eq(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"
        ));
        assert!(eq(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x"
        ));
    }

    /// RFC 3261 §19.1.4: the non-equivalent pairs (the tampered twins).
    #[test]
    fn non_equivalent_examples() {
        assert!(!eq(
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP"
        ));
        assert!(!eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com;transport=udp"
        ));
        assert!(!eq(
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp"
        ));
        assert!(!eq(
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting"
        ));
        assert!(!eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
        assert!(!eq(
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off"
        ));
    }

    #[test]
    fn components() {
        let u = Uri::parse("sips:+1-555-0100;phone-context=x@[2001:db8::1]:5061;user=phone?h=v")
            .unwrap();
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.host, Some(Host::Ipv6("2001:db8::1".parse().unwrap())));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.param("user"), Some(Some("phone")));
        assert_eq!(u.headers, Some("h=v"));
        assert_eq!(u.telephone_number().as_deref(), Some("+15550100"));
        let t = Uri::parse("tel:+1-958-555-0123;phone-context=+1").unwrap();
        assert_eq!(t.scheme, Scheme::Tel);
        assert_eq!(t.telephone_number().as_deref(), Some("+19585550123"));
        assert!(eq("tel:+1-958-555-0123", "tel:+19585550123"));
        assert_eq!(
            normalise_number("(958) 555.0123").as_deref(),
            Some("9585550123")
        );
        assert_eq!(normalise_number("12+3"), None);
        assert_eq!(normalise_number("alice"), None);
        for bad in [
            "sip:",
            "sip:a@",
            "sip:a@[::1",
            "sip:a@h:99999",
            "sip:a b@h",
            "<sip:a@h>",
            "sip:%4@h",
        ] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
