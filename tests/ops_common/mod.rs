//! Shared harness: a real admin server on an ephemeral loopback port over a real SQLite
//! file in a fresh temp directory, built through the same `bootstrap` as `voxgate run`.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use voxgate::config::{Config, Secret};
use voxgate::lifecycle::{bootstrap, Operations};
use voxgate::logs::LogRing;

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// A unique temp directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!(
            "voxgate-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The process-wide log ring (the tracing subscriber is global, installed once).
pub fn log_ring() -> LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(|| {
        let ring = LogRing::new(50_000);
        voxgate::logs::init("info", &ring);
        ring
    })
    .clone()
}

pub struct Harness {
    pub base: String,
    pub client: reqwest::Client,
    pub ops: Operations,
    pub dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Harness {
    pub async fn start() -> Self {
        let dir = TempDir::new("admin");
        let mut config = Config::default();
        config.data.dir = dir.0.join("data");
        config.admin.token = Some(Secret(TOKEN.to_owned()));
        config.media.cores = Some(2);
        let cfg = config.clone();
        let ops = tokio::task::spawn_blocking(move || bootstrap(&cfg))
            .await
            .unwrap()
            .expect("bootstrap");
        config.admin.listen = "127.0.0.1:0".parse().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, _task) = voxgate::lifecycle::start_admin(&config, &ops, log_ring(), async {
            let _ = rx.await;
        })
        .await
        .expect("admin listener");
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            ops,
            dir,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(TOKEN)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path)).bearer_auth(TOKEN)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(TOKEN)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(TOKEN)
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Polls `f` until it returns true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if f().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
