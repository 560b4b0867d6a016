//! The `voxgate run` configuration file (TOML): listeners, TLS, numbers, prompt and the
//! integration settings.
//!
//! ```toml
//! [sip]
//! udp = "0.0.0.0:5060"
//! tcp = "0.0.0.0:5060"
//! tls = "0.0.0.0:5061"
//! tls_cert = "/etc/voxgate/cert.pem"
//! tls_key = "/etc/voxgate/key.pem"
//! numbers = ["+19585550123"]
//! prompt_wav = "/usr/share/voxgate/welcome-8k.wav"
//!
//! [integration]
//! disable_ringing = false
//! plan = "plus"
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::GatewayConfig;
use crate::settings::IntegrationSettings;
use crate::sip::admission::e164;

/// The `[sip]` table.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct SipSection {
    /// UDP listen address.
    pub udp: Option<SocketAddr>,
    /// TCP listen address.
    pub tcp: Option<SocketAddr>,
    /// TLS listen address.
    pub tls: Option<SocketAddr>,
    /// PEM certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Phone numbers (E.164).
    pub numbers: Option<Vec<String>>,
    /// Prompt played on answered calls (8 kHz 16-bit mono WAV); a tone when absent.
    pub prompt_wav: Option<PathBuf>,
    /// CPUs for the media cores (one pinned thread each); `[0]` when absent.
    pub media_cores: Option<Vec<usize>>,
    /// Opus in answers: `off`, `accept` (default) or `prefer`.
    pub opus: Option<crate::sip::ua::sdp_glue::OpusPolicy>,
    /// Opus encoder complexity 0–10.
    pub opus_complexity: Option<u8>,
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct RunConfig {
    /// `[sip]`.
    pub sip: SipSection,
    /// `[integration]`.
    pub integration: IntegrationSettings,
}

/// A configuration fault, naming the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    /// TOML syntax or type fault (the message names line and key).
    #[error("{0}")]
    Toml(String),
    /// A value is invalid.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

impl RunConfig {
    /// Reads and validates a file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Read(path.display().to_string(), e))?;
        let cfg: RunConfig = toml::from_str(&text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        if let Err(errs) = cfg.integration.validate() {
            let e = &errs[0];
            return Err(ConfigError::Invalid {
                key: format!("integration.{}", e.field),
                reason: e.reason.clone(),
            });
        }
        if cfg.sip.tls_cert.is_some() != cfg.sip.tls_key.is_some() {
            return Err(ConfigError::Invalid {
                key: "sip.tls_cert".into(),
                reason: "tls_cert and tls_key go together".into(),
            });
        }
        Ok(cfg)
    }

    /// The gateway configuration, on the demo defaults where the file says nothing.
    pub fn gateway(&self) -> Result<GatewayConfig, ConfigError> {
        let mut g = GatewayConfig::demo();
        if let Some(a) = self.sip.udp {
            g.udp = a;
        }
        if let Some(a) = self.sip.tcp {
            g.tcp = a;
        }
        if let Some(a) = self.sip.tls {
            g.tls = a;
        }
        if let (Some(c), Some(k)) = (&self.sip.tls_cert, &self.sip.tls_key) {
            g.tls_cert = Some((c.clone(), k.clone()));
        }
        if let Some(nums) = &self.sip.numbers {
            let mut set = HashSet::new();
            for n in nums {
                if n.contains(['(', ')']) {
                    return Err(ConfigError::Invalid {
                        key: "sip.numbers".into(),
                        reason: format!("{n:?}: no parentheses in E.164"),
                    });
                }
                let e = e164(n).ok_or_else(|| ConfigError::Invalid {
                    key: "sip.numbers".into(),
                    reason: format!("{n:?} is not an E.164 number"),
                })?;
                set.insert(e);
            }
            g.numbers = set;
        }
        if let Some(o) = self.sip.opus {
            g.opus = o;
        }
        if let Some(c) = self.sip.opus_complexity {
            if c > 10 {
                return Err(ConfigError::Invalid {
                    key: "sip.opus_complexity".into(),
                    reason: format!("{c}: must be 0..=10"),
                });
            }
            g.opus_complexity = c;
        }
        g.settings = self.integration.clone();
        Ok(g)
    }
}

#[cfg(test)]
mod opus_tests {
    use super::*;
    use crate::sip::ua::sdp_glue::OpusPolicy;

    #[test]
    fn sip_opus_keys() {
        let c: RunConfig =
            toml::from_str("[sip]\nopus = \"prefer\"\nopus_complexity = 8\n").unwrap();
        let g = c.gateway().unwrap();
        assert_eq!((g.opus, g.opus_complexity), (OpusPolicy::Prefer, 8));
        let c: RunConfig = toml::from_str("[sip]\nopus_complexity = 11\n").unwrap();
        assert!(
            matches!(c.gateway(), Err(ConfigError::Invalid { key, .. }) if key == "sip.opus_complexity")
        );
        assert_eq!(
            RunConfig::default().gateway().unwrap().opus,
            OpusPolicy::Accept
        );
    }
}
