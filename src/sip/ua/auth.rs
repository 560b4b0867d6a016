//! Digest authentication of inbound requests (RFC 3261 §22.4, RFC 8760): MD5 and
//! SHA-256, qop=auth, nonce-count checked against the [`NonceStore`].

use std::time::Instant;

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::view::RequestView;
use crate::settings::SipCredentials;
use crate::sip::nonce::{NonceError, NonceStore};

/// The result of checking a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Credentials valid, nonce fresh, count rising.
    Accepted,
    /// Answer 401 with these WWW-Authenticate values.
    Challenge {
        /// Header values, preferred algorithm first.
        headers: Vec<String>,
    },
    /// Wrong user name or password: 403.
    Refused,
}

/// Requests that are never challenged (§22.1: ACK and CANCEL cannot be resubmitted).
pub fn exempt(method: &str) -> bool {
    method == "ACK" || method == "CANCEL"
}

/// Builds the challenge with the same nonce for SHA-256 and MD5: SHA-256 first (RFC 8760
/// §2.4 preference order) unless `md5_first` (for clients that only read the first
/// challenge, such as SIPp 3.6).
pub fn challenge(
    nonces: &mut NonceStore,
    realm: &str,
    stale: bool,
    md5_first: bool,
    now: Instant,
) -> Vec<String> {
    let nonce = nonces.issue(now);
    let stale = if stale { ", stale=true" } else { "" };
    let order = if md5_first {
        ["MD5", "SHA-256"]
    } else {
        ["SHA-256", "MD5"]
    };
    order
        .iter()
        .map(|alg| {
            format!(
                "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={alg}, qop=\"auth\"{stale}"
            )
        })
        .collect()
}

/// Splits `Digest a="b", c=d` into pairs (quoted values may hold commas).
pub fn digest_params(value: &str) -> Option<Vec<(String, String)>> {
    let v = value.trim_start();
    let rest = v
        .get(..6)
        .filter(|s| s.eq_ignore_ascii_case("digest"))
        .map(|_| &v[6..])?;
    let mut out = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ns = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let name = rest[ns..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            return None;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let val = if b.get(i) == Some(&b'"') {
            i += 1;
            let vs = i;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            let v = rest.get(vs..i.min(b.len()))?.to_owned();
            i += 1;
            v
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            rest[vs..i].trim().to_owned()
        };
        out.push((name, val));
    }
    Some(out)
}

fn hex_hash(alg: &str, data: &str) -> String {
    if alg.eq_ignore_ascii_case("SHA-256") {
        hex::encode(Sha256::digest(data.as_bytes()))
    } else {
        hex::encode(Md5::digest(data.as_bytes()))
    }
}

/// The expected `response` for qop=auth.
#[allow(clippy::too_many_arguments)]
pub fn expected_response(
    alg: &str,
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
) -> String {
    let ha1 = hex_hash(alg, &format!("{user}:{realm}:{password}"));
    let ha2 = hex_hash(alg, &format!("{method}:{uri}"));
    hex_hash(alg, &format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks `req` against `creds`.
pub fn check(
    nonces: &mut NonceStore,
    realm: &str,
    md5_first: bool,
    creds: &SipCredentials,
    req: &RequestView,
    now: Instant,
) -> AuthOutcome {
    if exempt(&req.method) {
        return AuthOutcome::Accepted;
    }
    let fresh = |nonces: &mut NonceStore, stale| AuthOutcome::Challenge {
        headers: challenge(nonces, realm, stale, md5_first, now),
    };
    let Some(header) = req.header("Authorization", None) else {
        return fresh(nonces, false);
    };
    let Some(params) = digest_params(header) else {
        return fresh(nonces, false);
    };
    let get = |n: &str| params.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let alg = get("algorithm").unwrap_or("MD5");
    if !(alg.eq_ignore_ascii_case("MD5") || alg.eq_ignore_ascii_case("SHA-256")) {
        return fresh(nonces, false);
    }
    let (Some(user), Some(r), Some(nonce), Some(uri), Some(response)) = (
        get("username"),
        get("realm"),
        get("nonce"),
        get("uri"),
        get("response"),
    ) else {
        return fresh(nonces, false);
    };
    let (Some("auth"), Some(nc_hex), Some(cnonce)) = (get("qop"), get("nc"), get("cnonce")) else {
        return fresh(nonces, false);
    };
    let Ok(nc) = u32::from_str_radix(nc_hex, 16) else {
        return fresh(nonces, false);
    };
    if r != realm {
        return fresh(nonces, false);
    }
    let want = expected_response(
        alg,
        &creds.username,
        realm,
        &creds.password,
        &req.method,
        uri,
        nonce,
        nc_hex,
        cnonce,
    );
    if user != creds.username || !ct_eq(want.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
        return AuthOutcome::Refused;
    }
    match nonces.accept(nonce, nc, now) {
        Ok(()) => AuthOutcome::Accepted,
        Err(NonceError::Stale) | Err(NonceError::Unknown) => fresh(nonces, true),
        Err(_) => fresh(nonces, false),
    }
}

#[cfg(test)]
mod rfc8760 {
    use super::*;
    use std::time::Duration;

    fn req_with(auth: Option<String>) -> RequestView {
        RequestView {
            method: "INVITE".into(),
            headers: auth
                .map(|a| vec![("Authorization".to_owned(), a)])
                .unwrap_or_default(),
            ..Default::default()
        }
    }

    fn creds() -> SipCredentials {
        SipCredentials {
            username: "trunk".into(),
            password: "s3cret".into(),
        }
    }

    fn authorization(alg: &str, nonce: &str, nc: &str, password: &str) -> String {
        let r = expected_response(
            alg,
            "trunk",
            "voxgate",
            password,
            "INVITE",
            "sip:+19585550123@gw",
            nonce,
            nc,
            "c0ffee",
        );
        format!("Digest username=\"trunk\", realm=\"voxgate\", nonce=\"{nonce}\", uri=\"sip:+19585550123@gw\", response=\"{r}\", algorithm={alg}, cnonce=\"c0ffee\", qop=auth, nc={nc}")
    }

    #[test]
    fn rfc2617_md5_vector_and_tampered_twin() {
        // RFC 2617 §3.5 example (qop=auth, MD5).
        let r = expected_response(
            "MD5",
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        let t = expected_response(
            "MD5",
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c094",
            "00000001",
            "0a4f113b",
        );
        assert_ne!(t, r);
    }

    #[test]
    fn rfc7616_sha256_vector() {
        // RFC 7616 §3.9.1 (SHA-256).
        let r = expected_response(
            "SHA-256",
            "Mufasa",
            "http-auth@example.org",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            "00000001",
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn challenge_accept_replay_wrong_password_and_stale() {
        let t0 = Instant::now();
        let mut store = NonceStore::new(Duration::from_secs(300), 100);
        let AuthOutcome::Challenge { headers } =
            check(&mut store, "voxgate", false, &creds(), &req_with(None), t0)
        else {
            panic!("expected a challenge")
        };
        assert!(headers[0].contains("algorithm=SHA-256") && headers[1].contains("algorithm=MD5"));
        let nonce = headers[0]
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        for alg in ["SHA-256", "MD5"] {
            let nc = if alg == "MD5" { "00000002" } else { "00000001" };
            let req = req_with(Some(authorization(alg, &nonce, nc, "s3cret")));
            assert_eq!(
                check(&mut store, "voxgate", false, &creds(), &req, t0),
                AuthOutcome::Accepted,
                "{alg}"
            );
            // The same request again is a replay: challenged, not accepted.
            assert!(matches!(
                check(&mut store, "voxgate", false, &creds(), &req, t0),
                AuthOutcome::Challenge { .. }
            ));
        }
        let bad = req_with(Some(authorization("MD5", &nonce, "00000009", "wrong")));
        assert_eq!(
            check(&mut store, "voxgate", false, &creds(), &bad, t0),
            AuthOutcome::Refused
        );
        let late = req_with(Some(authorization("MD5", &nonce, "0000000a", "s3cret")));
        let AuthOutcome::Challenge { headers } = check(
            &mut store,
            "voxgate",
            false,
            &creds(),
            &late,
            t0 + Duration::from_secs(301),
        ) else {
            panic!("expected stale")
        };
        assert!(headers[0].ends_with("stale=true"));
    }
}
