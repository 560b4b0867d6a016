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
        Command::Run { .. } => anyhow::bail!("`voxgate run` is not built yet"),
        Command::Demo { .. } => anyhow::bail!("`voxgate demo` is not built yet"),
        Command::Call { .. } => anyhow::bail!("`voxgate call` is not built yet"),
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
        Command::AssistantServer { .. } => {
            anyhow::bail!("`voxgate assistant-server` is not built yet")
        }
        Command::CheckConfig { .. } => anyhow::bail!("`voxgate check-config` is not built yet"),
    }
}
