//! Digest authentication of inbound requests (RFC 3261 §22.4, RFC 8760): MD5 and
//! SHA-256, qop=auth, nonce-count checked against the [`NonceStore`].

use std::time::Instant;

#[cfg(test)]
use md5::{Digest as _, Md5};
#[cfg(test)]
use sha2::Sha256;

use super::view::RequestView;
use crate::settings::SipCredentials;
use crate::sip::auth::DigestCredentials;
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

#[cfg(test)]
fn hex_hash(alg: &str, data: &str) -> String {
    if alg.eq_ignore_ascii_case("SHA-256") {
        hex::encode(Sha256::digest(data.as_bytes()))
    } else {
        hex::encode(Md5::digest(data.as_bytes()))
    }
}

/// The expected `response` for qop=auth (test peers use it to build credentials).
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
fn expected_response(
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
    // Parsing and the response check are the SIP layer's (`crate::sip::auth`); the
    // nonce state and the policy (qop=auth, our realm, our user) are ours.
    let Ok(cred) = DigestCredentials::parse(header) else {
        return fresh(nonces, false);
    };
    let (Some("auth"), Some(nc), Some(_)) = (cred.qop, cred.nonce_count(), cred.cnonce) else {
        return fresh(nonces, false);
    };
    if cred.realm != realm {
        return fresh(nonces, false);
    }
    if cred.username != creds.username || !cred.verify(&req.method, &creds.password) {
        return AuthOutcome::Refused;
    }
    let nonce = cred.nonce;
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
