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
        Command::Demo { srtp } => demo(srtp),
        Command::Call {
            uri,
            say,
            srtp,
            codec,
        } => call(uri, say, srtp, codec),
        Command::AssistantServer { listen, skill } => assistant_server(listen, skill),
        Command::SpeechServer { listen } => {
            let cfg = voxgate::speech::server::config_from_env()?;
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(listen).await?;
                println!("speech-server listening on {}", listener.local_addr()?);
                let state = voxgate::speech::server::ServerState::new(cfg);
                voxgate::speech::server::serve(listener, state).await
            })?;
            Ok(())
        }
        Command::CheckConfig { file } => check_config(&file),
    }
}

/// `voxgate check-config FILE`: prints each fault as `FILE:LINE: KEY: MESSAGE` and exits 1
/// when there is any; prints `FILE: ok` and exits 0 otherwise.
fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    match voxgate::config::Config::from_toml(&text, file.parent()) {
        Ok(_) => {
            println!("{}: ok", file.display());
            Ok(())
        }
        Err(faults) => {
            for f in &faults {
                match f.line {
                    Some(l) => eprintln!("{}:{l}: {}: {}", file.display(), f.key, f.message),
                    None => eprintln!("{}: {}: {}", file.display(), f.key, f.message),
                }
            }
            eprintln!("{} fault(s)", faults.len());
            std::process::exit(1);
        }
    }
}

/// `voxgate assistant-server`: the v2 API over the embedded dialog engine. An API key in
/// `VOXGATE_ASSISTANT_API_KEY` turns on IAM-style and basic authentication.
fn assistant_server(listen: SocketAddr, skill: Option<PathBuf>) -> anyhow::Result<()> {
    use voxgate::assistant::{AssistantServer, DialogSkill};
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    let skill = match &skill {
        Some(path) => DialogSkill::from_file(path)?,
        None => DialogSkill::demo()?,
    };
    for u in &skill.report().unsupported {
        tracing::warn!(node = %u.node, construct = %u.construct, effect = %u.effect, "skill construct not supported");
    }
    let server = match std::env::var("VOXGATE_ASSISTANT_API_KEY") {
        Ok(key) if !key.is_empty() => AssistantServer::with_api_key(skill, key, 3600),
        _ => AssistantServer::new(skill),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        tracing::info!(%listen, "assistant-server listening");
        server.serve(listener).await?;
        anyhow::Ok(())
    })
}

/// `voxgate run`: the gateway until SIGTERM's drain ends or Ctrl-C.
fn run_gateway(config: Option<PathBuf>) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(voxgate::run::run(config))?;
    Ok(())
}

fn quiet_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
}

/// `voxgate demo`: gateway + built-in caller in one process; exit 1 when the call did not
/// go as the demo skill scripts it.
fn demo(srtp: bool) -> anyhow::Result<()> {
    quiet_logs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let passed = rt.block_on(voxgate::demo::run_demo(srtp))?;
    if !passed {
        std::process::exit(1);
    }
    Ok(())
}

/// `voxgate call`: the built-in caller against any gateway.
fn call(uri: String, say: Vec<String>, srtp: bool, codec: String) -> anyhow::Result<()> {
    quiet_logs();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(voxgate::demo::run_caller(&uri, say, srtp, &codec))
        .map_err(anyhow::Error::msg)?;
    Ok(())
}
