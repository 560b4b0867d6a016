//! Shared harness for the SIP tests with real peers: the gateway in-process on loopback
//! ephemeral ports, SIPp as a child process bounded by a timeout, and a TLS bridge so
//! SIPp (built without TLS on Debian) can speak SIP over a real TLS connection.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::mpsc;
use voxgate::gateway::engine_media::EngineMedia;
use voxgate::gateway::media::Prompt;
use voxgate::gateway::{Gateway, GatewayConfig, GatewayHandle, Snapshot};
use voxgate::sip::ua::CallEvent;

/// The demo number.
pub const NUMBER: &str = "+19585550123";

/// A gateway under test.
pub struct TestGateway {
    pub gw: Gateway,
    pub handle: GatewayHandle,
    pub events: mpsc::UnboundedReceiver<CallEvent>,
    pub dir: PathBuf,
}

/// A scratch directory for one test (SIPp writes logs in its working directory).
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("voxgate-sipp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

impl TestGateway {
    pub async fn start(name: &str, cfg: GatewayConfig) -> TestGateway {
        let (tx, rx) = mpsc::unbounded_channel();
        // The real media engine: one core, sockets on loopback.
        let engine =
            voxgate_engine::worker::Engine::start(voxgate_engine::worker::EngineConfig::default())
                .expect("media engine starts");
        let media = Box::new(EngineMedia::new(engine, &Prompt::tone()));
        let gw = Gateway::start(cfg, media, Some(tx))
            .await
            .expect("gateway starts");
        let handle = gw.handle();
        TestGateway {
            gw,
            handle,
            events: rx,
            dir: scratch(name),
        }
    }

    pub async fn snapshot(&self) -> Snapshot {
        self.handle.snapshot().await.expect("snapshot")
    }

    /// Polls the snapshot until `pred` holds or `within` passes.
    pub async fn wait_for(&self, within: Duration, pred: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let deadline = Instant::now() + within;
        loop {
            let s = self.snapshot().await;
            if pred(&s) || Instant::now() >= deadline {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for an event matching `pred`.
    pub async fn next_event(
        &mut self,
        within: Duration,
        pred: impl Fn(&CallEvent) -> bool,
    ) -> Option<CallEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if pred(&e) => return Some(e),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }
}

/// A free local port (UDP and TCP both free at the time of asking).
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let p = u.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port")
}

/// What a SIPp run gave.
pub struct SippRun {
    pub success: bool,
    pub code: Option<i32>,
    pub output: String,
    pub elapsed: Duration,
}

/// Runs SIPp with `scenario` against `target`. `transport` is `u1` or `t1`.
pub async fn sipp(
    dir: &PathBuf,
    scenario: &str,
    target: SocketAddr,
    transport: &str,
    service: &str,
    extra: &[&str],
    limit: Duration,
) -> SippRun {
    let scen = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(scenario);
    let port = free_port().to_string();
    let mport = free_port().to_string();
    let mut cmd = Command::new("sipp");
    cmd.current_dir(dir)
        .arg(target.to_string())
        .args([
            "-sf",
            scen.to_str().expect("path"),
            "-s",
            service,
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-mp",
            &mport,
            "-t",
            transport,
        ])
        .args([
            "-nostdin",
            "-timeout",
            &format!("{}s", limit.as_secs().max(1)),
            "-timeout_error",
            "-recv_timeout",
            "8000",
            "-trace_err",
            "-max_socket",
            "4096",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = cmd.spawn().expect("sipp is installed (Debian sip-tester)");
    let out = tokio::time::timeout(limit + Duration::from_secs(10), child.wait_with_output()).await;
    let elapsed = started.elapsed();
    let (success, code, mut output) = match out {
        Ok(Ok(o)) => (
            o.status.success(),
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Ok(Err(e)) => (false, None, e.to_string()),
        Err(_) => (
            false,
            None,
            "sipp did not finish in time (killed)".to_owned(),
        ),
    };
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with("_errors.log") {
                let t = std::fs::read_to_string(e.path()).unwrap_or_default();
                output.push_str(&format!("\n--- {n} ---\n{}", &t[..t.len().min(4000)]));
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    SippRun {
        success,
        code,
        output,
        elapsed,
    }
}

/// A TCP listener that forwards each connection to `tls_target` over TLS, trusting
/// `ca` (DER) for server name `localhost`. Returns the plain-TCP address.
pub async fn tls_bridge(tls_target: SocketAddr, ca: Vec<u8>) -> SocketAddr {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca))
        .expect("ca");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        for _ in 0..10_000 {
            let Ok((mut plain, _)) = listener.accept().await else {
                return;
            };
            let connector = connector.clone();
            tokio::spawn(async move {
                let Ok(tcp) = tokio::net::TcpStream::connect(tls_target).await else {
                    return;
                };
                let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
                let Ok(mut tls) = connector.connect(name, tcp).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
            });
        }
    });
    addr
}

/// Writes a certificate and key for `localhost` and returns (cert path, key path, cert DER).
pub fn test_cert(dir: &std::path::Path) -> (PathBuf, PathBuf, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    let c = dir.join("cert.pem");
    let k = dir.join("key.pem");
    std::fs::write(&c, ck.cert.pem()).expect("write");
    std::fs::write(&k, ck.key_pair.serialize_pem()).expect("write");
    (c, k, ck.cert.der().to_vec())
}
