//! Assembles a running gateway: the media engine (pinned cores), the SIP gateway with
//! the engine as its media port, the providers, and the call service that runs a task
//! per call. `voxgate run`, `voxgate demo` and the end-to-end tests all start here.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use voxgate_engine::worker::{Engine, EngineConfig};

use crate::assistant::{Assistant, DialogSkill};
use crate::call::media::MediaHub;
use crate::call::service::dispatch;
use crate::call::task::{CallNotice, CallServices};
use crate::gateway::{Gateway, GatewayConfig, GatewayError};
use crate::settings::IntegrationSettings;
use crate::speech::{EspeakTts, Grammar, PocketSphinxStt, SpeechError, SpeechToText, TextToSpeech};

/// A start-up fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The media engine did not start.
    #[error("media engine: {0}")]
    Engine(String),
    /// The SIP gateway did not start.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// A provider could not be set up.
    #[error("speech: {0}")]
    Speech(#[from] SpeechError),
    /// The assistant could not be set up.
    #[error("assistant: {0}")]
    Assistant(String),
    /// Threads.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// The providers a gateway uses.
#[derive(Clone)]
pub struct Providers {
    /// Speech to text.
    pub stt: Arc<dyn SpeechToText>,
    /// Text to speech.
    pub tts: Arc<dyn TextToSpeech>,
    /// The assistant.
    pub assistant: Arc<dyn Assistant>,
    /// Grammar for the embedded recogniser.
    pub grammar: Option<Arc<Grammar>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("stt", &self.stt)
            .field("tts", &self.tts)
            .finish()
    }
}

impl Providers {
    /// The embedded defaults: PocketSphinx with a grammar from the skill's vocabulary,
    /// espeak-ng, and the dialog-skill engine running `skill`.
    pub fn embedded(skill: DialogSkill) -> Result<Providers, AppError> {
        let grammar = Arc::new(Grammar::from_phrases(&skill.vocabulary().phrases)?);
        if !grammar.skipped().is_empty() {
            tracing::warn!(skipped = ?grammar.skipped(), "phrases with words outside the recogniser's dictionary");
        }
        Ok(Providers {
            stt: Arc::new(PocketSphinxStt::new(grammar.clone())),
            tts: Arc::new(EspeakTts::default()),
            assistant: Arc::new(skill),
            grammar: Some(grammar),
        })
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct App {
    /// The SIP side (bound addresses in `gateway.local`).
    pub gateway: Gateway,
    /// The media engine.
    pub media: MediaHub,
    dispatcher: JoinHandle<u64>,
}

/// Everything [`App::start_with`] takes.
#[derive(Debug)]
pub struct AppOptions {
    /// SIP listeners and admission defaults.
    pub gateway: GatewayConfig,
    /// Media cores and RTP ports.
    pub engine: EngineConfig,
    /// STT, TTS, assistant.
    pub providers: Providers,
    /// Settings when there is no live state.
    pub settings: IntegrationSettings,
    /// Receives each call's turns and end.
    pub observer: Option<mpsc::UnboundedSender<CallNotice>>,
    /// Store, live settings/numbers/draining and call records (`voxgate run`).
    pub ops: Option<crate::lifecycle::Operations>,
}

impl App {
    /// Starts engine, gateway and call service without operations state (tests, demo).
    /// `observer` receives each call's turns and end.
    pub async fn start(
        gateway: GatewayConfig,
        engine: EngineConfig,
        providers: Providers,
        settings: IntegrationSettings,
        observer: Option<mpsc::UnboundedSender<CallNotice>>,
    ) -> Result<App, AppError> {
        App::start_with(AppOptions {
            gateway,
            engine,
            providers,
            settings,
            observer,
            ops: None,
        })
        .await
    }

    /// Starts engine, gateway and call service. With `ops`, admission follows the live
    /// settings, numbers and draining flag, and every call is recorded.
    pub async fn start_with(opts: AppOptions) -> Result<App, AppError> {
        let AppOptions {
            gateway,
            engine,
            providers,
            mut settings,
            observer,
            ops,
        } = opts;
        let mut gateway = gateway;
        if let Some(ops) = &ops {
            settings = (*ops.live.settings()).clone();
            gateway.numbers = ops.live.numbers().to_set();
        }
        let engine = Engine::start(engine).map_err(|e| AppError::Engine(e.to_string()))?;
        tracing::info!(backend = ?engine.backend(), cores = engine.core_count(), "media engine started");
        let media = MediaHub::new(engine)?;
        media.set_opus_complexity(gateway.opus_complexity);
        let (tx, rx) = mpsc::unbounded_channel();
        let mut gw_cfg = gateway;
        gw_cfg.auto_answer = false;
        gw_cfg.settings = settings.clone();
        let gateway = Gateway::start(gw_cfg, Box::new(media.clone()), Some(tx)).await?;
        let svc = CallServices {
            gateway: gateway.handle(),
            media: media.clone(),
            stt: providers.stt,
            tts: providers.tts,
            tts_fallback: Arc::new(EspeakTts::default()),
            assistant: providers.assistant,
            grammar: providers.grammar,
            settings: Arc::new(settings),
            observer,
            recorder: ops.as_ref().map(|o| o.recorder.clone()),
            live: ops.as_ref().map(|o| o.live.clone()),
        };
        if let Some(ops) = &ops {
            tokio::spawn(follow_live_state(ops.live.clone(), gateway.handle()));
        }
        let dispatcher = tokio::spawn(dispatch(svc, rx));
        Ok(App {
            gateway,
            media,
            dispatcher,
        })
    }

    /// Hangs up every call and stops.
    pub async fn shutdown(self) {
        self.gateway.shutdown().await;
        let _ = self.dispatcher.await;
        self.media.stop();
    }
}

/// Pushes settings, numbers and the draining flag to the SIP core whenever they change,
/// so admission uses them for the next INVITE without a restart.
async fn follow_live_state(live: crate::live::LiveState, gw: crate::gateway::GatewayHandle) {
    let mut settings = live.watch_settings();
    let mut numbers = live.watch_numbers();
    let mut phase = live.watch_phase();
    loop {
        let cfg = crate::gateway::LiveConfig {
            settings: (*live.settings()).clone(),
            numbers: live.numbers().to_set(),
            // From the phase itself: `begin_drain` publishes the phase before it sets the
            // draining flag, so the flag can still read false when this wakes.
            draining: !matches!(live.phase(), crate::live::Phase::Running),
        };
        if gw.configure(cfg).await.is_err() {
            return;
        }
        tokio::select! {
            r = settings.changed() => if r.is_err() { return },
            r = numbers.changed() => if r.is_err() { return },
            r = phase.changed() => if r.is_err() { return },
        }
    }
}
