//! SIGTERM on a real `voxgate run`: new INVITEs get 503 while it drains, the call in
//! progress goes on until the drain deadline, then ends with the gateway's BYE, and the
//! process exits cleanly.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use voxgate::caller::leg::{CallLeg, LegError, LegEvent, LegOptions};

const NUMBER: &str = "+19585550123";

/// A UDP port whose TCP twin is free too (SIP listens on both).
fn free_udp_tcp() -> u16 {
    for _ in 0..50 {
        let u = UdpSocket::bind("127.0.0.1:0").expect("udp probe");
        let p = u.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port")
}

fn free_tcp() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("tcp probe")
        .local_addr()
        .expect("addr")
        .port()
}

/// The gateway process, killed by PID if the test ends early.
struct Gateway(Option<Child>);

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start(dir: &std::path::Path, sip: u16) -> Gateway {
    let cfg = format!(
        "[sip]\nudp = [\"127.0.0.1:{sip}\"]\ntcp = [\"127.0.0.1:{sip}\"]\ntls = [\"127.0.0.1:{tls}\"]\n\
         [media]\nrtp_port_min = 43000\nrtp_port_max = 43099\n\
         [admin]\nlisten = \"127.0.0.1:{admin}\"\ntoken = \"0123456789abcdef0123\"\n\
         [data]\ndir = \"{data}\"\n[lifecycle]\ndrain_timeout_secs = 2\n",
        tls = free_tcp(),
        admin = free_tcp(),
        data = dir.join("data").display()
    );
    let path = dir.join("voxgate.toml");
    std::fs::write(&path, cfg).expect("config");
    let child = Command::new(env!("CARGO_BIN_EXE_voxgate"))
        .args(["run", "--config"])
        .arg(&path)
        .env_remove("VOXGATE_ADMIN_TOKEN")
        .env_remove("VOXGATE_DATA_DIR")
        .env_remove("VOXGATE_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("voxgate run");
    Gateway(Some(child))
}

fn leg(gw: SocketAddr) -> LegOptions {
    LegOptions::plain(gw, NUMBER, "+15550109090")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_ends_the_call_with_bye_at_the_deadline() {
    let dir: PathBuf = std::env::temp_dir().join(format!("voxgate-drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let sip = free_udp_tcp();
    let gw_addr: SocketAddr = format!("127.0.0.1:{sip}").parse().unwrap();
    let mut gw = start(&dir, sip);

    // The gateway is up when it answers a call (bounded retries while it starts).
    let started = Instant::now();
    let mut call = loop {
        match CallLeg::invite(&leg(gw_addr), 42_000, |_| {}).await {
            Ok(c) => break c,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(200)).await; // start-up poll
            }
            Err(e) => panic!("the gateway never answered: {e}"),
        }
    };
    assert_eq!(call.status, 200);

    let pid = gw.0.as_ref().expect("child").id();
    let st = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
    let term_at = Instant::now();

    // While it drains, a new call is refused with 503 (poll until the drain shows).
    let refused = loop {
        match CallLeg::invite(&leg(gw_addr), 42_010, |_| {}).await {
            Err(LegError::Refused(503, _)) => break true,
            Ok(other) => drop(other),
            Err(_) => {}
        }
        if term_at.elapsed() > Duration::from_millis(1500) {
            break false;
        }
    };
    assert!(refused, "a new INVITE during the drain gets 503");

    // The call in progress is not cut at SIGTERM: it ends with the gateway's BYE once the
    // 2 s drain deadline has passed.
    let mut bye_at = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while let Ok(Some(ev)) = call.next_event(deadline).await {
        if ev == LegEvent::Bye {
            bye_at = Some(term_at.elapsed());
            break;
        }
    }
    let bye_at = bye_at.expect("the gateway sent BYE after the drain");
    assert!(
        bye_at >= Duration::from_millis(1500),
        "BYE {bye_at:?} after SIGTERM: before the drain deadline"
    );

    // And the process exits by itself, successfully.
    let mut child = gw.0.take().expect("child");
    let pid = child.id();
    let status = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.wait()),
    )
    .await
    .unwrap_or_else(|_| {
        // Do not leave it running: this test started it.
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        panic!("voxgate did not exit after the drain")
    })
    .expect("join")
    .expect("wait");
    assert!(status.success(), "exit status {status}");
    let _ = std::fs::remove_dir_all(&dir);
}
