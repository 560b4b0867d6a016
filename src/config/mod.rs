//! The TOML configuration file. Every key has a default: an empty file (or none) is the
//! embedded defaults of DESIGN.md — SIP on 127.0.0.1:5060 UDP+TCP and 5061 TLS
//! (self-signed), embedded speech and assistant, admin API on 127.0.0.1:8080, data in
//! `./data`, the demo number +19585550123.
//!
//! Secrets may come from the environment instead of the file (the environment wins):
//! `VOXGATE_ADMIN_TOKEN`, `VOXGATE_DATA_DIR`, `VOXGATE_DATABASE_URL`,
//! `VOXGATE_{STT,TTS,ASSISTANT}_{APIKEY,BEARER_TOKEN,PASSWORD}`, `VOXGATE_SIP_AUTH_PASSWORD`.
//!
//! ```toml
//! instance_id = "node-1"
//! [sip]
//! udp = ["0.0.0.0:5060"]
//! tcp = ["0.0.0.0:5060"]
//! tls = ["0.0.0.0:5061"]
//! tls_cert = "/etc/voxgate/cert.pem"
//! tls_key = "/etc/voxgate/key.pem"
//! [media]
//! cores = 2
//! rtp_port_min = 20000
//! rtp_port_max = 30000
//! bind_address = "0.0.0.0"
//! advertised_address = "203.0.113.7"
//! opus = "prefer"
//! opus_complexity = 5
//! [providers.stt]
//! kind = "watson"
//! url = "https://api.us-south.speech-to-text.watson.cloud.ibm.com"
//! [admin]
//! listen = "127.0.0.1:8080"
//! [logging]
//! redaction = "partial"
//! [integration]
//! plan = "enterprise"
//! disable_ringing = true
//! ```

mod faults;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use faults::ConfigFault;

use crate::pii::Redaction;
use crate::settings::IntegrationSettings;

/// A secret string: deserialised from the file or environment, never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node's id, carried in logs and call records as `instance_id`.
    pub instance_id: String,
    /// SIP listeners and TLS.
    pub sip: SipConfig,
    /// Media cores and RTP.
    pub media: MediaConfig,
    /// Speech and assistant providers.
    pub providers: ProvidersConfig,
    /// Admin API.
    pub admin: AdminConfig,
    /// State directory.
    pub data: DataConfig,
    /// Logs and records privacy.
    pub logging: LoggingConfig,
    /// Shutdown.
    pub lifecycle: LifecycleConfig,
    /// Numbers put on the list at first start (an empty store).
    pub numbers: NumbersConfig,
    /// Integration settings (the seed's advanced options and the plan). Seeds the store
    /// at first start; SIGHUP re-applies this section.
    pub integration: IntegrationSettings,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            instance_id: "voxgate-1".to_owned(),
            sip: SipConfig::default(),
            media: MediaConfig::default(),
            providers: ProvidersConfig::default(),
            admin: AdminConfig::default(),
            data: DataConfig::default(),
            logging: LoggingConfig::default(),
            lifecycle: LifecycleConfig::default(),
            numbers: NumbersConfig::default(),
            integration: IntegrationSettings::default(),
        }
    }
}

/// SIP listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listen addresses.
    pub udp: Vec<SocketAddr>,
    /// TCP listen addresses.
    pub tcp: Vec<SocketAddr>,
    /// TLS listen addresses.
    pub tls: Vec<SocketAddr>,
    /// PEM certificate chain for TLS; with `tls_key`. Absent = a self-signed certificate.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    pub tls_key: Option<PathBuf>,
}

impl Default for SipConfig {
    fn default() -> Self {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self {
            udp: vec![SocketAddr::new(lo, 5060)],
            tcp: vec![SocketAddr::new(lo, 5060)],
            tls: vec![SocketAddr::new(lo, 5061)],
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// Which socket backend media cores use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IoBackend {
    /// io_uring when the kernel allows it, else portable (with a log line).
    #[default]
    Auto,
    /// io_uring only (fail at start if unavailable).
    IoUring,
    /// recvmmsg/sendmmsg.
    Portable,
}

/// Media cores and RTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Media cores (threads pinned one per CPU); absent = one per online CPU.
    pub cores: Option<usize>,
    /// First RTP port (even).
    pub rtp_port_min: u16,
    /// Last RTP port.
    pub rtp_port_max: u16,
    /// Address RTP sockets bind to.
    pub bind_address: IpAddr,
    /// Address written into SDP (behind NAT); absent = `bind_address`.
    pub advertised_address: Option<IpAddr>,
    /// Socket backend.
    pub io_backend: IoBackend,
    /// Opus in answers: `off`, `accept` (when the offer has no G.711; default) or
    /// `prefer` (over G.711 whenever offered).
    pub opus: crate::sip::ua::sdp_glue::OpusPolicy,
    /// Opus encoder complexity 0–10 (default 5, chosen by measurement: bench/README.md).
    pub opus_complexity: u8,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            cores: None,
            rtp_port_min: 20_000,
            rtp_port_max: 30_000,
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertised_address: None,
            io_backend: IoBackend::Auto,
            opus: crate::sip::ua::sdp_glue::OpusPolicy::Accept,
            opus_complexity: voxgate_engine::codec::opus::DEFAULT_COMPLEXITY,
        }
    }
}

/// Embedded engine or a Watson-compatible network service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// In-process engine (offline).
    #[default]
    Embedded,
    /// Watson (or `voxgate speech-server` / `assistant-server`) over HTTP/WebSocket.
    Watson,
}

/// One provider.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// Embedded or network.
    pub kind: ProviderKind,
    /// Service URL (`http(s)://…`), required for `watson`.
    pub url: Option<String>,
    /// IBM Cloud API key (or `VOXGATE_<ROLE>_APIKEY`), exchanged for IAM tokens.
    pub apikey: Option<Secret>,
    /// IAM token endpoint for `apikey` (absent = IBM Cloud's).
    pub iam_url: Option<String>,
    /// A fixed bearer token instead (or `VOXGATE_<ROLE>_BEARER_TOKEN`).
    pub bearer_token: Option<Secret>,
    /// HTTP basic user name instead (`apikey` for a Watson API key used directly).
    pub username: Option<String>,
    /// HTTP basic password (or `VOXGATE_<ROLE>_PASSWORD`).
    pub password: Option<Secret>,
    /// Connection (TCP, TLS, WebSocket) timeout, ms (default 3000; assistant 2000).
    pub connect_timeout_ms: Option<u64>,
    /// Request sent → first byte of the answer, ms (default 5000).
    pub first_byte_timeout_ms: Option<u64>,
    /// Between two pieces of an answer, and for results after the end of audio, ms
    /// (default 5000). The assistant's whole-request bound is first byte + idle.
    pub idle_timeout_ms: Option<u64>,
    /// Assistant API version date (`?version=`; absent = the client's default).
    pub version: Option<String>,
    /// Assistant id (assistant only).
    pub assistant_id: Option<String>,
    /// Assistant environment id (assistant only).
    pub environment_id: Option<String>,
    /// Dialog-skill JSON export for the embedded assistant (absent = the demo skill).
    pub skill: Option<PathBuf>,
}

impl ProviderConfig {
    /// The credentials the keys give: an API key (IAM), a bearer token, basic, or none.
    /// `check-config` refuses more than one.
    pub fn credentials(&self) -> crate::credentials::Credentials {
        use crate::credentials::{Credentials, IBM_IAM_URL};
        if let Some(k) = &self.apikey {
            Credentials::IamApiKey {
                api_key: k.0.clone(),
                iam_url: self
                    .iam_url
                    .clone()
                    .unwrap_or_else(|| IBM_IAM_URL.to_owned()),
            }
        } else if let Some(t) = &self.bearer_token {
            Credentials::Bearer(t.0.clone())
        } else if let (Some(u), Some(p)) = (&self.username, &self.password) {
            Credentials::Basic {
                username: u.clone(),
                password: p.0.clone(),
            }
        } else {
            Credentials::None
        }
    }

    /// The network timeouts, defaults where a key is absent.
    pub fn timeouts(&self) -> crate::speech::Timeouts {
        let d = crate::speech::Timeouts::default();
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        crate::speech::Timeouts {
            connect: ms(self.connect_timeout_ms, d.connect),
            first_byte: ms(self.first_byte_timeout_ms, d.first_byte),
            idle: ms(self.idle_timeout_ms, d.idle),
        }
    }
}

/// Speech and assistant providers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProvidersConfig {
    /// Speech to text.
    pub stt: ProviderConfig,
    /// Text to speech.
    pub tts: ProviderConfig,
    /// Assistant.
    pub assistant: ProviderConfig,
}

/// Admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Listen address (loopback by default).
    pub listen: SocketAddr,
    /// Bearer token (or `VOXGATE_ADMIN_TOKEN`); absent = generated at start and written
    /// to `<data dir>/admin-token` (mode 0600).
    pub token: Option<Secret>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            token: None,
        }
    }
}

/// State directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Directory of the SQLite database (or `VOXGATE_DATA_DIR`).
    pub dir: PathBuf,
    /// Shared database for a cluster: `postgres://user@host:port/db` (or
    /// `VOXGATE_DATABASE_URL`). Absent = SQLite in `dir` (single node).
    pub database_url: Option<Secret>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./data"),
            database_url: None,
        }
    }
}

/// Logs and records privacy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// Level filter directive (`info`, `voxgate=debug`, …); `RUST_LOG` wins when set.
    pub level: String,
    /// How phone numbers and SIP URIs appear in logs.
    pub redaction: Redaction,
    /// Lines kept in memory for `GET /v1/logs`.
    pub ring_lines: usize,
    /// Keep the caller's number in call records (the hash is always kept).
    pub store_caller_numbers: bool,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            redaction: Redaction::None,
            ring_lines: 10_000,
            store_caller_numbers: true,
        }
    }
}

/// Shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// After SIGTERM, active calls may continue this long before they are ended with BYE.
    pub drain_timeout_secs: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            drain_timeout_secs: 30,
        }
    }
}

/// Numbers put on the list at first start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumbersConfig {
    /// E.164 numbers.
    pub initial: Vec<String>,
}

impl Default for NumbersConfig {
    fn default() -> Self {
        Self {
            initial: vec!["+19585550123".to_owned()],
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file has faults.
    #[error("{} fault(s) in the configuration:\n{}", .0.len(), faults_text(.0))]
    Invalid(Vec<ConfigFault>),
}

fn faults_text(f: &[ConfigFault]) -> String {
    f.iter()
        .map(|x| format!("  {x}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    /// Parses and validates TOML text (without environment overrides); every fault is
    /// named by key and line. `base` resolves relative paths checked for existence.
    pub fn from_toml(text: &str, base: Option<&Path>) -> Result<Config, Vec<ConfigFault>> {
        let config = faults::parse(text)?;
        let faults = faults::validate(&config, text, base);
        if faults.is_empty() {
            Ok(config)
        } else {
            Err(faults)
        }
    }

    /// Reads `path` (or the defaults when `None`), applies the process environment and
    /// validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            None => Config::default(),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                Config::from_toml(&text, p.parent()).map_err(ConfigError::Invalid)?
            }
        };
        config.apply_env(|k| std::env::var(k).ok());
        Ok(config)
    }

    /// Applies environment overrides through `get` (the process environment in
    /// [`Config::load`]; a map in tests).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        if let Some(t) = get("VOXGATE_ADMIN_TOKEN") {
            self.admin.token = Some(Secret(t));
        }
        if let Some(d) = get("VOXGATE_DATA_DIR") {
            self.data.dir = PathBuf::from(d);
        }
        if let Some(u) = get("VOXGATE_DATABASE_URL") {
            self.data.database_url = Some(Secret(u));
        }
        for (role, p) in [
            ("STT", &mut self.providers.stt),
            ("TTS", &mut self.providers.tts),
            ("ASSISTANT", &mut self.providers.assistant),
        ] {
            if let Some(k) = get(&format!("VOXGATE_{role}_APIKEY")) {
                p.apikey = Some(Secret(k));
            }
            if let Some(t) = get(&format!("VOXGATE_{role}_BEARER_TOKEN")) {
                p.bearer_token = Some(Secret(t));
            }
            if let Some(pw) = get(&format!("VOXGATE_{role}_PASSWORD")) {
                p.password = Some(Secret(pw));
            }
        }
        if let Some(p) = get("VOXGATE_SIP_AUTH_PASSWORD") {
            if let Some(auth) = self.integration.sip_auth.as_mut() {
                auth.password = p;
            }
        }
    }

    /// Media cores to run: the configured count or one per online CPU.
    pub fn media_cores(&self) -> usize {
        self.media.cores.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

#[cfg(test)]
mod tests;
