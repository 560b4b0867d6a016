//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 8760): MD5, SHA-256 and
//! SHA-512/256, `qop=auth`. Parsing of Authorization values, computation and
//! constant-time verification of responses, WWW-Authenticate values.
//!
//! Nonce issuing, expiry, nonce-count tracking and replay state belong to the caller
//! (the UAS): [`DigestCredentials::verify`] only checks the arithmetic.

use std::fmt;

use md5::Md5;
use sha2::{Sha256, Sha512_256};
use subtle::ConstantTimeEq;

use super::error::ParseError;
use super::header::HeaderName;
use super::message::Headers;
use super::params::{split_commas, trim_lws};

/// Digest algorithm (RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `MD5` (the default when absent).
    Md5,
    /// `MD5-sess`
    Md5Sess,
    /// `SHA-256`
    Sha256,
    /// `SHA-256-sess`
    Sha256Sess,
    /// `SHA-512-256`
    Sha512_256,
    /// `SHA-512-256-sess`
    Sha512_256Sess,
}

impl Algorithm {
    /// Parses an `algorithm=` token (case-insensitive).
    pub fn from_token(t: &str) -> Option<Algorithm> {
        const ALL: [(&str, Algorithm); 6] = [
            ("MD5", Algorithm::Md5),
            ("MD5-sess", Algorithm::Md5Sess),
            ("SHA-256", Algorithm::Sha256),
            ("SHA-256-sess", Algorithm::Sha256Sess),
            ("SHA-512-256", Algorithm::Sha512_256),
            ("SHA-512-256-sess", Algorithm::Sha512_256Sess),
        ];
        ALL.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(t))
            .map(|(_, a)| *a)
    }

    /// The token as sent in challenges.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Lower-case hex digest of the `:`-joined parts.
    pub fn hash(self, parts: &[&str]) -> String {
        fn run<D: sha2::Digest>(parts: &[&str]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p.as_bytes());
            }
            hex::encode(d.finalize())
        }
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => run::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => run::<Sha256>(parts),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => run::<Sha512_256>(parts),
        }
    }
}

/// The fields of a `Digest` Authorization / Proxy-Authorization value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials<'a> {
    /// `username`
    pub username: &'a str,
    /// `realm`
    pub realm: &'a str,
    /// `nonce`
    pub nonce: &'a str,
    /// `uri` (digest-uri)
    pub uri: &'a str,
    /// `response` (hex)
    pub response: &'a str,
    /// `algorithm` (MD5 when absent)
    pub algorithm: Algorithm,
    /// `cnonce`
    pub cnonce: Option<&'a str>,
    /// `nc` as sent (8 hex digits)
    pub nc: Option<&'a str>,
    /// `qop`
    pub qop: Option<&'a str>,
    /// `opaque`
    pub opaque: Option<&'a str>,
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(v)
}

impl<'a> DigestCredentials<'a> {
    /// Parses `Digest k=v, k="v", ...`. Other schemes, unknown algorithms and missing
    /// mandatory fields are errors (the caller answers with a fresh challenge).
    pub fn parse(value: &'a str) -> Result<DigestCredentials<'a>, ParseError> {
        let e = |at| ParseError::Header {
            header: HeaderName::Authorization.as_str(),
            at,
        };
        let v = trim_lws(value);
        let lead = value.len() - value.trim_start().len();
        let sp = v.find([' ', '\t', '\r', '\n']).ok_or(e(lead))?;
        if !v[..sp].eq_ignore_ascii_case("Digest") {
            return Err(e(lead));
        }
        let rest = &v[sp..];
        let mut c = DigestCredentials {
            username: "",
            realm: "",
            nonce: "",
            uri: "",
            response: "",
            algorithm: Algorithm::Md5,
            cnonce: None,
            nc: None,
            qop: None,
            opaque: None,
        };
        let mut seen = 0u8;
        for (off, item) in split_commas(rest).map_err(|at| e(lead + sp + at))? {
            let item = trim_lws(item);
            if item.is_empty() {
                continue;
            }
            let eq = item.find('=').ok_or(e(lead + sp + off))?;
            let name = trim_lws(&item[..eq]);
            let val = unquote(trim_lws(&item[eq + 1..]));
            match name.to_ascii_lowercase().as_str() {
                "username" => (c.username, seen) = (val, seen | 1),
                "realm" => (c.realm, seen) = (val, seen | 2),
                "nonce" => (c.nonce, seen) = (val, seen | 4),
                "uri" => (c.uri, seen) = (val, seen | 8),
                "response" => (c.response, seen) = (val, seen | 16),
                "algorithm" => {
                    c.algorithm = Algorithm::from_token(val).ok_or(e(lead + sp + off))?
                }
                "cnonce" => c.cnonce = Some(val),
                "nc" => c.nc = Some(val),
                "qop" => c.qop = Some(val),
                "opaque" => c.opaque = Some(val),
                _ => {}
            }
        }
        if seen != 31 {
            return Err(ParseError::Missing {
                header: "Authorization",
            });
        }
        if c.qop.is_some() && (c.cnonce.is_none() || c.nonce_count().is_none()) {
            return Err(e(lead));
        }
        Ok(c)
    }

    /// The nonce count as a number (`nc` is 8 hex digits).
    pub fn nonce_count(&self) -> Option<u32> {
        let nc = self.nc?;
        if nc.len() != 8 {
            return None;
        }
        u32::from_str_radix(nc, 16).ok()
    }

    /// The response expected for `method` given H(A1) (hex, as from [`ha1`]).
    pub fn expected_response(&self, method: &str, ha1_hex: &str) -> String {
        let alg = self.algorithm;
        let ha1 = if alg.is_sess() {
            alg.hash(&[ha1_hex, self.nonce, self.cnonce.unwrap_or("")])
        } else {
            ha1_hex.to_owned()
        };
        let ha2 = alg.hash(&[method, self.uri]);
        match self.qop {
            Some(q) => alg.hash(&[
                &ha1,
                self.nonce,
                self.nc.unwrap_or(""),
                self.cnonce.unwrap_or(""),
                q,
                &ha2,
            ]),
            None => alg.hash(&[&ha1, self.nonce, &ha2]),
        }
    }

    /// Verifies the response against a stored H(A1) in constant time. Only `qop=auth`
    /// or no qop (RFC 2069 compatibility) are accepted.
    pub fn verify_ha1(&self, method: &str, ha1_hex: &str) -> bool {
        if !matches!(self.qop, None | Some("auth")) {
            return false;
        }
        let want = self.expected_response(method, ha1_hex);
        let got = self.response.to_ascii_lowercase();
        want.len() == got.len() && bool::from(want.as_bytes().ct_eq(got.as_bytes()))
    }

    /// Verifies the response with the clear-text password.
    pub fn verify(&self, method: &str, password: &str) -> bool {
        self.verify_ha1(
            method,
            &ha1(self.algorithm, self.username, self.realm, password),
        )
    }
}

/// H(A1) = H(username:realm:password) in hex (the non-session part).
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.hash(&[username, realm, password])
}

/// The credentials in an Authorization (or Proxy-Authorization when `proxy`) header,
/// when present.
pub fn credentials(
    headers: &Headers,
    proxy: bool,
) -> Result<Option<DigestCredentials<'_>>, ParseError> {
    let name = if proxy {
        HeaderName::ProxyAuthorization
    } else {
        HeaderName::Authorization
    };
    match headers.single(name)? {
        None => Ok(None),
        Some((at, v)) => DigestCredentials::parse(v)
            .map(Some)
            .map_err(|e| e.shifted(at)),
    }
}

/// A WWW-Authenticate / Proxy-Authenticate challenge; `Display` gives the header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// `realm`
    pub realm: &'a str,
    /// `nonce`
    pub nonce: &'a str,
    /// `algorithm`
    pub algorithm: Algorithm,
    /// `opaque`, if used.
    pub opaque: Option<&'a str>,
    /// `stale=true` (the nonce expired but the credentials were right).
    pub stale: bool,
}

impl fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let clean = |s: &str| s.replace(['"', '\\', '\r', '\n'], "");
        write!(
            f,
            "Digest realm=\"{}\", nonce=\"{}\", algorithm={}, qop=\"auth\"",
            clean(self.realm),
            clean(self.nonce),
            self.algorithm.as_str()
        )?;
        if let Some(o) = self.opaque {
            write!(f, ", opaque=\"{}\"", clean(o))?;
        }
        if self.stale {
            f.write_str(", stale=true")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod rfc7616 {
    use super::*;

    const SHA256: &str = "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", \
        uri=\"/dir/index.html\", algorithm=SHA-256, \
        nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
        cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
        response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\", \
        opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

    #[test]
    fn sha256_vector_verifies_and_tampered_fails() {
        let c = DigestCredentials::parse(SHA256).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        assert_eq!(c.nonce_count(), Some(1));
        assert!(c.verify("GET", "Circle of Life"));
        assert!(!c.verify("GET", "Circle of Lifd"));
        assert!(!c.verify("PUT", "Circle of Life"));
        let tampered = SHA256.replace("753927fa", "753927fb");
        assert!(!DigestCredentials::parse(&tampered)
            .unwrap()
            .verify("GET", "Circle of Life"));
    }

    #[test]
    fn md5_vector_verifies_and_tampered_fails() {
        let md5 = SHA256
            .replace("algorithm=SHA-256", "algorithm=MD5")
            .replace(
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
                "8ca523f5e9506fed4657c9700eebdbec",
            );
        let c = DigestCredentials::parse(&md5).unwrap();
        assert!(c.verify("GET", "Circle of Life"));
        let tampered = md5.replace("nc=00000001", "nc=00000002");
        assert!(!DigestCredentials::parse(&tampered)
            .unwrap()
            .verify("GET", "Circle of Life"));
    }
}

#[cfg(test)]
mod rfc2617 {
    use super::*;

    #[test]
    fn md5_qop_auth_vector() {
        let v = "Digest username=\"Mufasa\",\r\n realm=\"testrealm@host.com\", \
            nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
            qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
            response=\"6629fae49393a05397450978507c4ef1\", \
            opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let c = DigestCredentials::parse(v).unwrap();
        assert!(c.verify("GET", "Circle Of Life"));
        assert!(!c.verify("GET", "Circle of Life"));
        let h = ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        assert!(c.verify_ha1("GET", &h));
    }

    #[test]
    fn other_schemes_and_missing_fields_are_errors() {
        assert!(DigestCredentials::parse("NoOneKnowsThisScheme opaque-data=here").is_err());
        assert!(DigestCredentials::parse("Digest username=\"a\", realm=\"b\"").is_err());
        assert!(DigestCredentials::parse("Digest").is_err());
    }

    #[test]
    fn challenge_value() {
        let c = Challenge {
            realm: "voxgate",
            nonce: "abc",
            algorithm: Algorithm::Sha256,
            opaque: None,
            stale: true,
        };
        assert_eq!(
            c.to_string(),
            "Digest realm=\"voxgate\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\", stale=true"
        );
    }
}
