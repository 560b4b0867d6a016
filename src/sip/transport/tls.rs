//! TLS server configuration (rustls on ring): the certificate and key from the
//! configuration, or a self-signed certificate generated at start-up, with a warning.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The PEM held no certificate or no private key.
    #[error("{0}: no {1} found in PEM")]
    Missing(String, &'static str),
    /// Self-signed generation failed.
    #[error("certificate generation: {0}")]
    Generate(String),
    /// rustls refused the certificate/key pair.
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate chain and its key.
#[derive(Debug)]
pub struct CertifiedKey {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key.
    pub key: PrivateKeyDer<'static>,
    /// True if it was generated here.
    pub self_signed: bool,
}

/// Where the TLS listener's certificate came from, and what it says (for the console).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertificateInfo {
    /// Generated at start-up (no `sip.tls_cert` configured): trunks cannot verify it.
    pub self_signed: bool,
    /// The configured certificate file.
    pub path: Option<String>,
    /// Subject of the leaf certificate (`CN=…, O=…`), when it could be read.
    pub subject: Option<String>,
    /// Issuer of the leaf certificate.
    pub issuer: Option<String>,
    /// End of validity, `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_after: Option<String>,
}

impl CertifiedKey {
    /// Describes the leaf certificate; `path` is the configured file, if any.
    pub fn info(&self, path: Option<&Path>) -> CertificateInfo {
        let s = self
            .chain
            .first()
            .and_then(|c| super::x509::summary(c.as_ref()));
        CertificateInfo {
            self_signed: self.self_signed,
            path: path.map(|p| p.display().to_string()),
            subject: s.as_ref().map(|s| s.subject.clone()),
            issuer: s.as_ref().map(|s| s.issuer.clone()),
            not_after: s.map(|s| s.not_after),
        }
    }
}

/// Loads a PEM certificate chain and key.
pub fn load_pem(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsConfigError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsConfigError::Read {
            path: p.display().to_string(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsConfigError::Missing(
            cert.display().to_string(),
            "certificate",
        ));
    }
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsConfigError::Missing(key.display().to_string(), "private key"))?;
    Ok(CertifiedKey {
        chain,
        key: key_der,
        self_signed: false,
    })
}

/// Generates a self-signed certificate for `names` (e.g. `localhost`, `127.0.0.1`).
pub fn self_signed(names: &[&str]) -> Result<CertifiedKey, TlsConfigError> {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| TlsConfigError::Generate(e.to_string()))?;
    Ok(CertifiedKey {
        chain: vec![ck.cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der())),
        self_signed: true,
    })
}

/// The certificate from the configuration, or a self-signed one (logged as a warning).
pub fn load_or_generate(
    cert: Option<&Path>,
    key: Option<&Path>,
) -> Result<CertifiedKey, TlsConfigError> {
    match (cert, key) {
        (Some(c), Some(k)) => load_pem(c, k),
        _ => {
            tracing::warn!(
                "no TLS certificate configured: using a self-signed certificate for localhost; \
                 trunks will not be able to verify it"
            );
            self_signed(&["localhost", "127.0.0.1"])
        }
    }
}

/// A rustls server configuration (ring provider, TLS 1.2 and 1.3, no client auth).
pub fn server_config(ck: CertifiedKey) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(ck.chain, ck.key)?;
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_builds_a_server_config_and_pem_round_trips() {
        let ck = self_signed(&["localhost"]).expect("generate");
        assert!(ck.self_signed);
        assert!(server_config(ck).is_ok());

        let gen = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("gen");
        let dir = std::env::temp_dir().join(format!("voxgate-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (c, k) = (dir.join("c.pem"), dir.join("k.pem"));
        std::fs::write(&c, gen.cert.pem()).expect("write");
        std::fs::write(&k, gen.key_pair.serialize_pem()).expect("write");
        let loaded = load_or_generate(Some(&c), Some(&k)).expect("load");
        assert!(!loaded.self_signed);
        let info = loaded.info(Some(&c));
        assert!(!info.self_signed);
        assert_eq!(info.path.as_deref(), Some(c.display().to_string().as_str()));
        assert_eq!(info.subject.as_deref(), Some("CN=rcgen self signed cert"));
        assert!(info.not_after.is_some());
        assert!(server_config(loaded).is_ok());
        // A key file holding only a certificate is refused, naming the file.
        let err = load_pem(&c, &c).unwrap_err().to_string();
        assert!(err.contains("private key"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
