//! Start-up, reload and shutdown of the control plane's operations side.
//!
//! - [`bootstrap`] (blocking; call before the SIP listeners open): opens the store in the
//!   data directory, seeds it at first start (integration settings and initial numbers
//!   from the config), loads what new calls read into a [`LiveState`], resolves the
//!   admin token, builds the [`CallRecorder`].
//! - [`spawn_signal_tasks`]: SIGTERM → [`LiveState::begin_drain`] (readiness false,
//!   new INVITEs get 503, the call layer ends remaining calls with BYE at the deadline);
//!   SIGHUP → [`reload_integration`] from the config file.
//!
//! Source of truth for settings: the store. The config's `[integration]` section seeds
//! it at first start and is re-applied (validated, stored, published) on SIGHUP; the
//! admin API's `PUT /v1/integration` changes it in between.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cdr::CallRecorder;
use crate::config::{Config, ConfigError};
use crate::live::LiveState;
use crate::numbers::{parse_e164, NumberEntry, NumberSet};
use crate::store::{CallRecordWriter, StoreError, StoreHandle};

/// Call-record operations queued for group commit before callers wait.
pub const CDR_QUEUE: usize = 8192;
/// Most call-record operations in one transaction.
pub const CDR_MAX_BATCH: usize = 512;

/// Why start-up or reload failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Config failure.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The admin token file could not be written.
    #[error("admin token file {path}: {source}")]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What [`bootstrap`] hands the rest of the gateway.
#[derive(Debug, Clone)]
pub struct Operations {
    /// Durable state.
    pub store: StoreHandle,
    /// What new calls read.
    pub live: LiveState,
    /// Call-record writer for the call layer.
    pub recorder: CallRecorder,
    /// Admin bearer token.
    pub admin_token: Arc<str>,
    /// PostgreSQL only: the LISTEN/NOTIFY thread feeding `live` (stops when the last
    /// clone drops).
    pub listener: Option<Arc<crate::store::SettingsListener>>,
    /// The configured text-to-speech provider, once `voxgate run` has built it (the
    /// admin console lists its voices and plays samples); empty until then.
    pub tts: Arc<std::sync::OnceLock<Arc<dyn crate::speech::TextToSpeech>>>,
    /// The SIP listeners, once the gateway has bound them (the console's overview shows
    /// the URIs to give the trunk provider); empty until then.
    pub sip_listeners: Arc<std::sync::OnceLock<crate::sip::ua::LocalAddrs>>,
    /// The TLS listener's certificate (generated or configured), once the gateway has
    /// loaded it (the console's overview shows it); empty until then.
    pub tls_certificate: Arc<std::sync::OnceLock<crate::sip::transport::tls::CertificateInfo>>,
    /// The configured speech-to-text provider, once `voxgate run` has built it (the
    /// console lists its models); empty until then.
    pub stt: Arc<std::sync::OnceLock<Arc<dyn crate::speech::SpeechToText>>>,
}

/// Opens the store and prepares the live state (see the module docs). Blocking.
pub fn bootstrap(config: &Config) -> Result<Operations, LifecycleError> {
    crate::pii::set_redaction(config.logging.redaction);
    let url = config.data.database_url.as_ref().map(|u| u.0.as_str());
    let store = crate::store::open_store(url, &config.data.dir)?;
    let settings = match store.load_integration()? {
        Some(s) => s,
        None => {
            // First start: seed settings and numbers from the config.
            store.save_integration(&config.integration)?;
            if store.list_numbers()?.is_empty() {
                let entries: Vec<NumberEntry> = config
                    .numbers
                    .initial
                    .iter()
                    .filter_map(|n| parse_e164(n).ok())
                    .map(|n| NumberEntry {
                        number: n.as_str().to_owned(),
                        description: String::new(),
                    })
                    .collect();
                store.replace_numbers(&entries)?;
            }
            config.integration.clone()
        }
    };
    let numbers = NumberSet::new(store.list_numbers()?.into_iter().map(|e| e.number));
    let live = LiveState::new(settings, numbers);
    // Cluster: other nodes' admin changes arrive by NOTIFY and are published live.
    let listener = match url {
        Some(u) if crate::store::is_postgres_url(u) => Some(Arc::new(
            crate::store::SettingsListener::spawn(u, Arc::clone(&store), live.clone())
                .map_err(|e| StoreError::Task(format!("spawn settings listener: {e}")))?,
        )),
        _ => None,
    };
    let admin_token = resolve_token(config)?;
    let writer = CallRecordWriter::spawn(Arc::clone(&store), CDR_QUEUE, CDR_MAX_BATCH)
        .map_err(|e| StoreError::Task(format!("spawn call-record writer: {e}")))?;
    let store = StoreHandle::new(store);
    let recorder = CallRecorder::new(
        writer,
        config.logging.store_caller_numbers,
        config.instance_id.clone(),
    );
    Ok(Operations {
        store,
        live,
        recorder,
        admin_token,
        listener,
        tts: Arc::default(),
        sip_listeners: Arc::default(),
        tls_certificate: Arc::default(),
        stt: Arc::default(),
    })
}

/// The configured token, or one generated and written to `<data dir>/admin-token`
/// (mode 0600; reused on the next start).
fn resolve_token(config: &Config) -> Result<Arc<str>, LifecycleError> {
    if let Some(t) = &config.admin.token {
        return Ok(Arc::from(t.0.as_str()));
    }
    let path = config.data.dir.join("admin-token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim();
        if t.len() >= 16 {
            return Ok(Arc::from(t));
        }
    }
    let bytes: [u8; 24] = rand::random();
    let token = hex::encode(bytes);
    write_private(&path, &token).map_err(|source| LifecycleError::TokenFile {
        path: path.clone(),
        source,
    })?;
    tracing::warn!(path = %path.display(), "no admin token configured; generated one");
    Ok(Arc::from(token.as_str()))
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Re-reads `path`, validates its `[integration]` section, stores and publishes it.
/// On any fault nothing changes and the faults are returned.
pub async fn reload_integration(
    path: &Path,
    store: &StoreHandle,
    live: &LiveState,
) -> Result<(), LifecycleError> {
    let owned = path.to_owned();
    let config = tokio::task::spawn_blocking(move || Config::load(Some(&owned)))
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
    let settings = config.integration.clone();
    let saved = settings.clone();
    store.run(move |s| s.save_integration(&saved)).await?;
    crate::pii::set_redaction(config.logging.redaction);
    live.publish_settings(settings);
    Ok(())
}

/// Spawns the SIGTERM and SIGHUP handlers on the current tokio runtime.
pub fn spawn_signal_tasks(
    config_path: Option<PathBuf>,
    drain_timeout: Duration,
    store: StoreHandle,
    live: LiveState,
) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let live_t = live.clone();
    tokio::spawn(async move {
        if term.recv().await.is_some() {
            tracing::warn!(
                drain_timeout_secs = drain_timeout.as_secs(),
                "SIGTERM: draining; new calls get 503"
            );
            live_t.begin_drain(Instant::now() + drain_timeout);
        }
    });
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match &config_path {
                None => tracing::warn!("SIGHUP: no config file to reload"),
                Some(p) => match reload_integration(p, &store, &live).await {
                    Ok(()) => tracing::info!(path = %p.display(), "SIGHUP: settings reloaded"),
                    Err(e) => {
                        tracing::error!(error = %e, "SIGHUP: reload refused; settings unchanged")
                    }
                },
            }
        }
    });
    Ok(())
}

/// Binds the admin listener from the config and serves the admin API until `shutdown`
/// resolves. Returns the bound address and the server task.
pub async fn start_admin(
    config: &Config,
    ops: &Operations,
    logs: crate::logs::LogRing,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(
    std::net::SocketAddr,
    tokio::task::JoinHandle<std::io::Result<()>>,
)> {
    let listener = tokio::net::TcpListener::bind(config.admin.listen).await?;
    let addr = listener.local_addr()?;
    let state = crate::admin::AdminState {
        store: ops.store.clone(),
        live: ops.live.clone(),
        logs,
        token: ops.admin_token.clone(),
        media_cores: config.media_cores(),
        tts: ops.tts.clone(),
        sip_listeners: ops.sip_listeners.clone(),
        tls_certificate: ops.tls_certificate.clone(),
        stt: ops.stt.clone(),
        live_calls: ops.recorder.live_calls().clone(),
    };
    tracing::info!(%addr, "admin API listening");
    Ok((
        addr,
        tokio::spawn(crate::admin::serve(listener, state, shutdown)),
    ))
}

/// Resolves once a drain is over: draining began and either no call is active
/// (`voxgate_active_calls` = 0) or the drain deadline passed — the point where the call
/// layer must have sent BYE to what is left and `voxgate run` may exit. Polls every
/// 100 ms; never resolves while running.
pub async fn drained(live: &LiveState) {
    let mut phase = live.watch_phase();
    let deadline = loop {
        if let crate::live::Phase::Draining { deadline } = *phase.borrow_and_update() {
            break deadline;
        }
        if phase.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    loop {
        if crate::metrics::metrics().active_calls.get() <= 0 || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
