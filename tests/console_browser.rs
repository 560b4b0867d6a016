//! The admin console in a real browser: Debian's Chromium driven over WebDriver
//! (chromedriver's JSON HTTP API, spoken with reqwest) against a real gateway — real
//! admin HTTP, real SQLite, real SIP over loopback UDP. Screenshots land in
//! `target/console-screenshots/` for review.

#[path = "ops_common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use voxgate::app::{App, AppOptions, Providers};
use voxgate::assistant::DialogSkill;
use voxgate::caller::leg::{CallLeg, LegError, LegOptions};
use voxgate::gateway::GatewayConfig;
use voxgate::settings::IntegrationSettings;
use voxgate_engine::worker::EngineConfig;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver as a child process, killed by PID on drop.
struct Driver {
    child: Child,
    base: String,
    _profile: common::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One WebDriver session.
struct Browser {
    http: reqwest::Client,
    session: String,
    shots: PathBuf,
    _driver: Driver,
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium chromium-driver)");
        let profile = common::TempDir::new("chromium");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _profile: profile,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let up = http
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver never answered");
            tokio::time::sleep(Duration::from_millis(100)).await; // polling interval
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1366,900",
                    format!("--user-data-dir={}", driver._profile.0.display()),],
            }
        }}});
        let r: Value = http
            .post(format!("{}/session", driver.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            http,
            session,
            shots,
            _driver: driver,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self._driver.base, self.session);
        let r: Value = self
            .http
            .request(method, url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["value"].get("error").is_some() {
            panic!("WebDriver {path}: {}", r["value"]);
        }
        r["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("find {css}: {v}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            json!({}),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            json!({}),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        let v = self
            .cmd(
                reqwest::Method::GET,
                &format!("/element/{e}/text"),
                json!({}),
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    async fn js(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Polls a JS expression until it is truthy, at most `limit`.
    async fn wait_for(&self, expr: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.js(&format!("return !!({expr});")).await;
            if v == Value::Bool(true) {
                return;
            }
            if Instant::now() >= deadline {
                self.shot("timeout").await;
                panic!("page never satisfied `{expr}`");
            }
            tokio::time::sleep(Duration::from_millis(100)).await; // polling interval
        }
    }

    async fn shot(&self, name: &str) {
        let v = self
            .cmd(reqwest::Method::GET, "/screenshot", json!({}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn quit(self) {
        let url = format!("{}/session/{}", self._driver.base, self.session);
        let _ = self.http.delete(url).send().await;
    }
}

fn leg(gw: std::net::SocketAddr, number: &str) -> LegOptions {
    LegOptions::plain(gw, number, "+15550102030")
}

async fn invite(gw: std::net::SocketAddr, number: &str) -> Result<CallLeg, u16> {
    match CallLeg::invite(&leg(gw, number), 43_000, |_| {}).await {
        Ok(l) => Ok(l),
        Err(LegError::Refused(status, _)) => Err(status),
        Err(e) => panic!("INVITE to {number}: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_drives_the_gateway_in_a_real_browser() {
    let h = common::Harness::start().await;
    let providers = Providers::embedded(DialogSkill::demo().unwrap()).unwrap();
    let _ = h.ops.tts.set(providers.tts.clone());
    let _ = h.ops.stt.set(providers.stt.clone());
    let app = App::start_with(AppOptions {
        gateway: GatewayConfig::ephemeral(),
        engine: EngineConfig {
            cores: vec![0],
            rtp_port_range: 44_000..=44_999,
            ..EngineConfig::default()
        },
        providers,
        settings: IntegrationSettings::default(),
        observer: None,
        ops: Some(h.ops.clone()),
    })
    .await
    .expect("gateway");
    let gw = app.gateway.local.udp;
    let _ = h.ops.sip_listeners.set(app.gateway.local);
    let _ = h
        .ops
        .tls_certificate
        .set(app.gateway.tls_certificate.clone());
    assert!(app.gateway.tls_certificate.self_signed);
    let b = Browser::start().await;
    let long = Duration::from_secs(10);

    // Log in: a wrong token is refused on the form; the right one opens the overview.
    b.goto(&h.url("/")).await;
    b.wait_for("!document.getElementById('login').hidden", long)
        .await;
    b.type_into("#token", "wrong").await;
    b.click("#login-btn").await;
    b.wait_for(
        "document.getElementById('login-err').textContent.includes('refused')",
        long,
    )
    .await;
    b.type_into("#token", common::TOKEN).await;
    b.click("#login-btn").await;
    b.wait_for(
        "document.getElementById('ov-list').textContent.includes('of 100')",
        long,
    )
    .await;
    assert_eq!(
        b.text("#sip-uri").await,
        format!("sip:{gw};transport=udp"),
        "the overview shows the bound UDP listener"
    );
    // No certificate configured: the TLS row says the generated one cannot be verified.
    let overview = b.text("#ov-list").await;
    assert!(
        overview.contains("TLS certificate")
            && overview.contains("self-signed")
            && overview.contains("subject CN=rcgen self signed cert")
            && overview.contains("expires "),
        "{overview}"
    );
    b.shot("01-overview").await;

    // Numbers: `(958)` is refused as typed with the reason; a spaced E.164 is accepted.
    b.goto(&h.url("/#numbers")).await;
    b.wait_for("!document.getElementById('page-numbers').hidden", long)
        .await;
    b.type_into("#num-new", "(958) 555 0123").await;
    let hint = b.text("#num-hint").await;
    assert!(hint.contains("parentheses"), "{hint}");
    b.type_into("#num-desc", "support line").await;
    b.type_into("#num-new", "+1 958 555 0199").await;
    b.click("#num-add-btn").await;
    b.wait_for(
        "document.querySelector('tr[data-number=\"+19585550199\"]')",
        long,
    )
    .await;
    b.shot("02-number-added").await;
    // The server's refusal is shown beside the form that caused it.
    b.type_into("#num-new", "+1 958 555 0199").await;
    b.click("#num-add-btn").await;
    b.wait_for(
        "document.getElementById('num-add-err').textContent.includes('already')",
        long,
    )
    .await;
    let listed = h.json("/v1/numbers").await;
    let before = listed.as_array().unwrap().len();
    let added = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["number"] == "+19585550199")
        .unwrap_or_else(|| panic!("not stored: {listed}"));
    assert_eq!(added["description"], "support line");
    b.click("button[aria-label='Delete +19585550199']").await;
    b.wait_for(
        "!document.querySelector('tr[data-number=\"+19585550199\"]')",
        long,
    )
    .await;
    assert_eq!(
        h.json("/v1/numbers").await.as_array().unwrap().len(),
        before - 1
    );

    // CSV: a good file replaces the list; a bad one shows every bad row and changes nothing.
    let good = h.dir.0.join("good.csv");
    std::fs::write(&good, "+1 415 555 0100,sales\n+44 20 7946 0000,london\n").unwrap();
    let bad = h.dir.0.join("bad.csv");
    std::fs::write(
        &bad,
        "+1 415 555 0100,sales\n(958) 555-0123,x\nnot a number,y\n",
    )
    .unwrap();
    b.js("window.confirm = () => true; return 1;").await;
    b.type_into("#csv-file", &good.display().to_string()).await;
    b.click("#csv-btn").await;
    b.wait_for(
        "document.querySelector('tr[data-number=\"+442079460000\"]')",
        long,
    )
    .await;
    assert_eq!(h.json("/v1/numbers").await.as_array().unwrap().len(), 2);
    b.type_into("#csv-file", &bad.display().to_string()).await;
    b.click("#csv-btn").await;
    b.wait_for(
        "document.querySelectorAll('#csv-rows tbody tr').length === 2",
        long,
    )
    .await;
    let rows = b.text("#csv-rows").await;
    assert!(rows.contains("2 ") && rows.contains("3 "), "{rows}");
    b.js("document.getElementById('csv-rows').scrollIntoView(); return 1;")
        .await;
    b.shot("03-csv-row-errors").await;
    assert_eq!(h.json("/v1/numbers").await.as_array().unwrap().len(), 2);

    // Advanced options: an over-long transfer-failure message is refused before saving;
    // forcing secure trunking applies to the next call (plain RTP → 488).
    b.goto(&h.url("/#advanced")).await;
    b.wait_for("document.getElementById('adv-tfm').value.length > 0", long)
        .await;
    // Every option carries an explanation tied to its control for screen readers.
    for id in ["adv-ring", "adv-hold", "adv-srtp"] {
        let described = b
            .js(&format!(
                "const d = document.getElementById('{id}').getAttribute('aria-describedby'); \
                 return d ? document.getElementById(d).textContent : '';"
            ))
            .await;
        assert!(
            described.as_str().unwrap_or_default().len() > 40,
            "{id} has no explanation: {described}"
        );
    }
    let ring = b.text("#adv-ring-h").await;
    assert!(ring.contains("180 Ringing"), "{ring}");
    b.js("const t = document.getElementById('adv-tfm'); t.value = 'x'.repeat(1025); t.dispatchEvent(new Event('input')); return 1;").await;
    b.click("#adv-save").await;
    b.wait_for(
        "document.getElementById('adv-tfm').getAttribute('aria-invalid') === 'true' && document.getElementById('adv-err').textContent.includes('Fix')",
        long,
    )
    .await;
    b.shot("04-advanced-invalid").await;
    b.type_into("#adv-tfm", "The agent line is busy.").await;
    b.click("#adv-srtp").await;
    b.click("#adv-save").await;
    b.wait_for(
        "document.getElementById('adv-msg').textContent.includes('Saved')",
        long,
    )
    .await;
    assert_eq!(invite(gw, "+14155550100").await.err(), Some(488));
    b.click("#adv-srtp").await;
    b.click("#adv-save").await;
    b.wait_for(
        "document.getElementById('adv-msg').textContent.includes('Saved')",
        long,
    )
    .await;

    // Speech: voices listed from the configured provider; a sample is synthesized.
    b.goto(&h.url("/#speech")).await;
    b.wait_for(
        "document.getElementById('tts-voice').options.length > 1",
        long,
    )
    .await;
    // Speech-to-text models come from the configured (embedded) recogniser, not a fixed list.
    b.wait_for(
        "[...document.getElementById('stt-model').options].some(o => o.value === 'en-US_Telephony')",
        long,
    )
    .await;
    let stt_err = b.text("#stt-err").await;
    assert!(stt_err.is_empty(), "{stt_err}");
    b.js("const s = document.getElementById('stt-model'); s.value = 'en-US_Telephony'; return 1;")
        .await;
    b.click("#speech-save").await;
    b.wait_for(
        "document.getElementById('speech-msg').textContent.includes('Saved')",
        long,
    )
    .await;
    assert_eq!(
        h.json("/v1/integration").await["stt_model"],
        "en-US_Telephony"
    );
    b.click("#play-sample").await;
    b.wait_for(
        "Number(document.getElementById('sample-audio').dataset.bytes || 0) > 8044",
        Duration::from_secs(20),
    )
    .await;
    b.shot("05-speech").await;

    // Calls: a live call shows up without reload, and its record after it ends.
    b.goto(&h.url("/#calls")).await;
    b.wait_for("!document.getElementById('page-calls').hidden", long)
        .await;
    let mut call = invite(gw, "+14155550100").await.expect("call answered");
    b.wait_for(
        "[...document.querySelectorAll('tr.live-call')].some(r => r.textContent.includes('+14155550100'))",
        long,
    )
    .await;
    // The live row follows the call: answered, then its first turn (the welcome), without
    // reload and before anything is written to the record.
    b.wait_for(
        "[...document.querySelectorAll('tr.live-call')].some(r => r.querySelector('.live-state').textContent === 'in conversation' && Number(r.querySelector('.live-turn').textContent) >= 1)",
        Duration::from_secs(20),
    )
    .await;
    b.shot("06-live-call").await;
    call.hang_up().await.unwrap();
    b.wait_for(
        "document.querySelectorAll('tr.live-call').length === 0",
        long,
    )
    .await;
    // The records table refreshes by itself when the live list changes (no reload). The
    // newest row is this call's (the 488 above is recorded too, as rejected).
    b.wait_for(
        "[document.querySelector('tr.call-record')].some(r => r && r.textContent.includes('+14155550100') && !r.textContent.includes('in progress'))",
        long,
    )
    .await;
    b.click("tr.call-record button").await;
    b.wait_for("!document.getElementById('call-detail').hidden", long)
        .await;
    let detail = b.text("#call-detail").await;
    assert!(
        detail.contains("Assistant") && detail.contains("completed"),
        "{detail}"
    );
    // The transcript: the welcome turn with what the assistant said, and its latencies.
    let first_turn = b.text("#turn-table tbody tr.turn").await;
    assert!(
        first_turn.contains("thanks for calling voxgate") && first_turn.contains(" ms"),
        "{first_turn}"
    );
    b.shot("07-call-record").await;

    // Usage and logs render against the same data.
    b.goto(&h.url("/#usage")).await;
    b.wait_for("document.querySelector('#mau-chart svg')", long)
        .await;
    b.shot("08-usage").await;
    b.goto(&h.url("/#logs")).await;
    b.wait_for("!document.getElementById('page-logs').hidden", long)
        .await;
    let calls = h.json("/v1/calls").await;
    let call_id = calls["calls"][0]["sip_call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.type_into("#logs-q", &call_id).await;
    // Log lines reach the ring asynchronously: search again until the call's lines show.
    let deadline = Instant::now() + long;
    loop {
        b.js("document.getElementById('logs-out').textContent = ''; return 1;")
            .await;
        b.click("#logs-form button").await;
        b.wait_for(
            "document.getElementById('logs-out').textContent.length > 0",
            long,
        )
        .await;
        let logs = b.text("#logs-out").await;
        if logs.contains(&call_id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no log line for {call_id}: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // polling interval
    }
    b.shot("09-logs").await;

    b.quit().await;
    app.shutdown().await;
}
