//! The `voxgate` command line. Each subcommand hands off to the module that owns it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "voxgate",
    version,
    about = "SIP/RTP voice gateway for conversational assistants"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (embedded defaults when no config is given).
    Run {
        /// TOML configuration file.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Start the gateway on the embedded defaults and place a scripted call to it.
    Demo {
        /// Use SRTP (SDES) for the demo call.
        #[arg(long)]
        srtp: bool,
    },
    /// Call a gateway, say something, and print what it hears.
    Call {
        /// SIP URI to call, e.g. sip:+19585550123@127.0.0.1:5060.
        uri: String,
        /// Phrase(s) to say, one per turn.
        #[arg(long)]
        say: Vec<String>,
        /// Offer SRTP (RTP/SAVP with SDES).
        #[arg(long)]
        srtp: bool,
        /// Codec to offer: pcmu, pcma or opus.
        #[arg(long, default_value = "pcmu")]
        codec: String,
    },
    /// Serve the Watson-compatible speech APIs from the embedded engines.
    SpeechServer {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: SocketAddr,
    },
    /// Serve the Watson Assistant v2 API from the embedded dialog-skill engine.
    AssistantServer {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:9002")]
        listen: SocketAddr,
        /// Dialog-skill JSON export (the demo skill when omitted).
        #[arg(long)]
        skill: Option<PathBuf>,
    },
    /// Validate a configuration file and name the key and line of each fault.
    CheckConfig {
        /// TOML configuration file.
        file: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run_gateway(config),
        Command::Demo { .. } => anyhow::bail!("`voxgate demo` is not built yet"),
        Command::Call { .. } => anyhow::bail!("`voxgate call` is not built yet"),
        Command::SpeechServer { .. } => anyhow::bail!("`voxgate speech-server` is not built yet"),
        Command::AssistantServer { .. } => {
            anyhow::bail!("`voxgate assistant-server` is not built yet")
        }
        Command::CheckConfig { .. } => anyhow::bail!("`voxgate check-config` is not built yet"),
    }
}

/// `voxgate run`: the gateway until SIGTERM or Ctrl-C.
fn run_gateway(config: Option<PathBuf>) -> anyhow::Result<()> {
    use voxgate::gateway::config::RunConfig;
    use voxgate::gateway::media::{Prompt, PromptPlayer};
    use voxgate::gateway::Gateway;

    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cfg = match &config {
        Some(p) => RunConfig::load(p)?,
        None => RunConfig::default(),
    };
    let gw_cfg = cfg.gateway()?;
    let prompt = match &cfg.sip.prompt_wav {
        Some(p) => Prompt::from_wav(p).map_err(anyhow::Error::msg)?,
        None => Prompt::tone(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut engine_cfg = voxgate_engine::worker::EngineConfig {
            cores: cfg.sip.media_cores.clone().unwrap_or_else(|| vec![0]),
            bind_ip: gw_cfg.udp.ip(),
            ..Default::default()
        };
        if let Some([first, last]) = cfg.sip.rtp_ports {
            engine_cfg.rtp_port_range = first..=last;
        }
        let media: Box<dyn voxgate::gateway::media::MediaPort> = match voxgate_engine::worker::Engine::start(engine_cfg) {
            Ok(engine) => {
                tracing::info!(?engine, "media engine started");
                Box::new(voxgate::gateway::engine_media::EngineMedia::new(engine, &prompt))
            }
            Err(e) => {
                tracing::warn!("media engine did not start ({e}); playing prompts from the control thread instead");
                Box::new(PromptPlayer::new(gw_cfg.udp.ip(), prompt))
            }
        };
        let gw = Gateway::start(gw_cfg.clone(), media, None).await?;
        tracing::info!(
            udp = %gw.local.udp, tcp = %gw.local.tcp, tls = %gw.local.tls,
            numbers = ?gw_cfg.numbers, "voxgate SIP gateway listening"
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: hanging up calls");
        gw.shutdown().await;
        Ok::<(), anyhow::Error>(())
    })
}
