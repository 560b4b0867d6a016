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
        Command::SpeechServer { .. } => anyhow::bail!("`voxgate speech-server` is not built yet"),
        Command::AssistantServer { .. } => {
            anyhow::bail!("`voxgate assistant-server` is not built yet")
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
