//! `voxgate run`: the gateway from a configuration file (or the embedded defaults).
//!
//! Order of start: config → logs → store and live state (`lifecycle::bootstrap`) →
//! providers → media engine + SIP gateway + call service ([`App`]) → admin API →
//! signal handlers. SIGTERM drains (new INVITEs get 503, calls finish until the drain
//! deadline, then BYE); SIGHUP reloads the integration settings.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use voxgate_engine::worker::{Backend, EngineConfig};

use crate::app::{App, AppOptions, Providers};
use crate::assistant::client::{ClientConfig, WatsonClient};
use crate::assistant::DialogSkill;
use crate::config::{Config, IoBackend, ProviderConfig, ProviderKind};
use crate::gateway::GatewayConfig;
use crate::speech::{
    EspeakTts, Grammar, PocketSphinxStt, WatsonStt, WatsonSttConfig, WatsonTts, WatsonTtsConfig,
};

/// A start-up fault of `voxgate run`, naming what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The configuration file.
    #[error("configuration: {0}")]
    Config(String),
    /// A provider.
    #[error("provider {which}: {reason}")]
    Provider {
        /// stt, tts or assistant.
        which: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Store, engine, listeners.
    #[error("{0}")]
    Start(String),
}

fn provider_err(which: &'static str) -> impl Fn(String) -> RunError {
    move |reason| RunError::Provider { which, reason }
}

fn require_url(p: &ProviderConfig, which: &'static str) -> Result<String, RunError> {
    p.url.clone().ok_or_else(|| RunError::Provider {
        which,
        reason: "kind = \"watson\" needs url".into(),
    })
}

/// Builds the providers the configuration names.
pub fn providers(cfg: &Config) -> Result<Providers, RunError> {
    let skill = match &cfg.providers.assistant.skill {
        Some(path) => {
            DialogSkill::from_file(path).map_err(|e| provider_err("assistant")(e.to_string()))?
        }
        None => DialogSkill::demo().map_err(|e| provider_err("assistant")(e.to_string()))?,
    };
    for u in &skill.report().unsupported {
        tracing::warn!(node = %u.node, construct = %u.construct, effect = %u.effect, "skill construct not supported");
    }
    let grammar = Arc::new(
        Grammar::from_phrases(&skill.vocabulary().phrases)
            .map_err(|e| provider_err("stt")(e.to_string()))?,
    );
    let stt: Arc<dyn crate::speech::SpeechToText> = match cfg.providers.stt.kind {
        ProviderKind::Embedded => Arc::new(PocketSphinxStt::new(grammar.clone())),
        ProviderKind::Watson => Arc::new(
            WatsonStt::new(WatsonSttConfig {
                url: require_url(&cfg.providers.stt, "stt")?,
                credentials: cfg.providers.stt.credentials(),
                timeouts: cfg.providers.stt.timeouts(),
            })
            .map_err(|e| provider_err("stt")(e.to_string()))?,
        ),
    };
    let tts: Arc<dyn crate::speech::TextToSpeech> = match cfg.providers.tts.kind {
        ProviderKind::Embedded => Arc::new(EspeakTts::default()),
        ProviderKind::Watson => Arc::new(
            WatsonTts::new(WatsonTtsConfig {
                url: require_url(&cfg.providers.tts, "tts")?,
                credentials: cfg.providers.tts.credentials(),
                timeouts: cfg.providers.tts.timeouts(),
            })
            .map_err(|e| provider_err("tts")(e.to_string()))?,
        ),
    };
    let assistant: Arc<dyn crate::assistant::Assistant> = match cfg.providers.assistant.kind {
        ProviderKind::Embedded => Arc::new(skill),
        ProviderKind::Watson => {
            let p = &cfg.providers.assistant;
            // The environment ID (new experience) addresses the assistant where given.
            let id = p
                .environment_id
                .clone()
                .or_else(|| p.assistant_id.clone())
                .ok_or_else(|| RunError::Provider {
                    which: "assistant",
                    reason: "kind = \"watson\" needs environment_id or assistant_id".into(),
                })?;
            let mut client = ClientConfig::new(require_url(p, "assistant")?, id, p.credentials());
            let t = p.timeouts();
            if p.connect_timeout_ms.is_some() {
                client.connect_timeout = t.connect;
            }
            if p.first_byte_timeout_ms.is_some() || p.idle_timeout_ms.is_some() {
                client.timeout = t.first_byte + t.idle;
            }
            if let Some(v) = &p.version {
                client.version = v.clone();
            }
            Arc::new(
                WatsonClient::new(client).map_err(|e| provider_err("assistant")(e.to_string()))?,
            )
        }
    };
    Ok(Providers {
        stt,
        tts,
        assistant,
        grammar: Some(grammar),
    })
}

/// The SIP and media parts of the configuration.
pub fn gateway_and_engine(cfg: &Config) -> Result<(GatewayConfig, EngineConfig), RunError> {
    let first = |v: &[SocketAddr], what: &str| {
        v.first()
            .copied()
            .ok_or_else(|| RunError::Config(format!("sip.{what}: at least one listener")))
    };
    let mut gw = GatewayConfig::demo();
    gw.udp = first(&cfg.sip.udp, "udp")?;
    gw.tcp = first(&cfg.sip.tcp, "tcp")?;
    gw.tls = first(&cfg.sip.tls, "tls")?;
    gw.tls_cert = match (&cfg.sip.tls_cert, &cfg.sip.tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => {
            return Err(RunError::Config(
                "sip.tls_cert and sip.tls_key go together".into(),
            ))
        }
    };
    gw.advertised_media_ip = cfg.media.advertised_address;
    gw.opus = cfg.media.opus;
    gw.opus_complexity = cfg.media.opus_complexity;
    let cores = cfg.media_cores().max(1);
    let engine = EngineConfig {
        cores: (0..cores).collect(),
        rtp_port_range: cfg.media.rtp_port_min..=cfg.media.rtp_port_max,
        bind_ip: cfg.media.bind_address,
        backend: match cfg.media.io_backend {
            IoBackend::Auto => Backend::Auto,
            IoBackend::IoUring => Backend::Uring,
            IoBackend::Portable => Backend::Mmsg,
        },
        ..EngineConfig::default()
    };
    Ok((gw, engine))
}

/// Runs the gateway until SIGTERM's drain ends or Ctrl-C. Call inside a tokio runtime.
pub async fn run(config_path: Option<PathBuf>) -> Result<(), RunError> {
    let cfg = Config::load(config_path.as_deref()).map_err(|e| RunError::Config(e.to_string()))?;
    let ring = crate::logs::LogRing::new(cfg.logging.ring_lines);
    crate::logs::init(&cfg.logging.level, &ring);
    let boot_cfg = cfg.clone();
    let ops = tokio::task::spawn_blocking(move || crate::lifecycle::bootstrap(&boot_cfg))
        .await
        .map_err(|e| RunError::Start(e.to_string()))?
        .map_err(|e| RunError::Start(e.to_string()))?;
    let providers = providers(&cfg)?;
    let _ = ops.tts.set(providers.tts.clone());
    let _ = ops.stt.set(providers.stt.clone());
    let (gateway, engine) = gateway_and_engine(&cfg)?;
    let app = App::start_with(AppOptions {
        gateway,
        engine,
        providers,
        settings: (*ops.live.settings()).clone(),
        observer: None,
        ops: Some(ops.clone()),
    })
    .await
    .map_err(|e| RunError::Start(e.to_string()))?;
    let _ = ops.sip_listeners.set(app.gateway.local);
    let _ = ops.tls_certificate.set(app.gateway.tls_certificate.clone());
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let (admin_addr, admin_task) = crate::lifecycle::start_admin(&cfg, &ops, ring, async {
        let _ = shutdown_rx.await;
    })
    .await
    .map_err(|e| RunError::Start(format!("admin listener {}: {e}", cfg.admin.listen)))?;
    crate::lifecycle::spawn_signal_tasks(
        config_path.clone(),
        Duration::from_secs(cfg.lifecycle.drain_timeout_secs),
        ops.store.clone(),
        ops.live.clone(),
    )
    .map_err(|e| RunError::Start(e.to_string()))?;
    tracing::info!(
        udp = %app.gateway.local.udp, tcp = %app.gateway.local.tcp, tls = %app.gateway.local.tls,
        admin = %admin_addr, numbers = ops.live.numbers().len(),
        "voxgate listening"
    );
    tokio::select! {
        _ = crate::lifecycle::drained(&ops.live) => tracing::info!("drain over: ending the calls left"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: ending calls"),
    }
    app.shutdown().await;
    let _ = shutdown_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), admin_task).await;
    Ok(())
}

/// The default data directory, for messages.
pub fn data_dir(cfg: &Config) -> &Path {
    &cfg.data.dir
}
