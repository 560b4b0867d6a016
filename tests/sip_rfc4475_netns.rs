//! The RFC 4475 torture messages sent over UDP to the running gateway, inside a private
//! network namespace that has only loopback (`unshare -n` + `ip link set lo up`): the
//! messages name 192.0.2.x and other outside hosts in Via, so a wrongly routed
//! response fails locally instead of leaving the machine.
//!
//! The outer test re-runs this test binary inside the namespace, where the inner test
//! (selected by `VOXGATE_RFC4475_NETNS=1`) does the work.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use voxgate::gateway::media::{Prompt, PromptPlayer};
use voxgate::gateway::{Gateway, GatewayConfig};

const ENV: &str = "VOXGATE_RFC4475_NETNS";

fn corpus() -> PathBuf {
    PathBuf::from("/work/shared/conformance/rfc4475")
}

#[test]
fn rfc4475_over_udp_in_a_private_network_namespace() {
    if std::env::var_os(ENV).is_some() {
        return; // this process is the inner run
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" --exact inner_rfc4475_in_namespace --nocapture --test-threads=1"])
        .arg(&exe)
        .env(ENV, "1")
        .output()
        .expect("unshare runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "inner run failed:\n{text}");
    assert!(text.contains("1 passed"), "inner test did not run:\n{text}");
}

/// What EXPECTED.tsv allows for one message.
#[derive(Debug)]
struct Expect {
    name: String,
    text: String,
}

impl Expect {
    fn codes(&self) -> Vec<u16> {
        self.text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|t| t.len() == 3)
            .filter_map(|t| t.parse().ok())
            .filter(|c| (100..700).contains(c))
            .collect()
    }
    fn silent(&self) -> bool {
        self.text.starts_with("discard") || self.text.starts_with("drop")
    }
    fn liberal(&self) -> bool {
        [
            "liberal",
            "parse OK",
            "accept",
            "process",
            "ignore",
            "fall back",
        ]
        .iter()
        .any(|k| self.text.contains(k))
    }
    /// Rows written for a registrar: this gateway is a UA without one, so 405 (as the
    /// regaut01 row says for a non-registrar UA).
    fn registrar(&self) -> bool {
        self.text.contains("registrar")
    }
}

fn call_id(msg: &str) -> Option<String> {
    msg.lines()
        .find(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("call-id:") || l.starts_with("i:")
        })
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

#[test]
fn inner_rfc4475_in_namespace() {
    if std::env::var_os(ENV).is_none() {
        return; // only meaningful inside the namespace the outer test creates
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    let mut cfg = GatewayConfig::ephemeral();
    cfg.udp = "127.0.0.1:5080".parse().expect("addr");
    let gw = rt.block_on(async {
        let media = Box::new(PromptPlayer::new(
            "127.0.0.1".parse().expect("ip"),
            Prompt::tone(),
        ));
        Gateway::start(cfg, media, None).await.expect("gateway")
    });
    let target: SocketAddr = gw.local.udp;
    // Responses go to the source IP at the Via sent-by port (5060 by default, 5050 in
    // quotbal) or to the source port with rport.
    let main = UdpSocket::bind("127.0.0.1:5060").expect("5060 is free in the namespace");
    let alt = UdpSocket::bind("127.0.0.1:5050").expect("5050");
    for s in [&main, &alt] {
        s.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
    }
    let tsv = std::fs::read_to_string(corpus().join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    let rows: Vec<Expect> = tsv
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f.len() >= 4).then(|| Expect {
                name: f[0].to_owned(),
                text: f[3].to_owned(),
            })
        })
        .collect();
    assert!(rows.len() >= 45, "{} rows", rows.len());
    let mut wrong = Vec::new();
    let mut unanswered = Vec::new();
    let mut seen: HashMap<String, Vec<u16>> = HashMap::new();
    for row in &rows {
        let bytes = std::fs::read(corpus().join(format!("{}.dat", row.name))).expect("dat");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let cid = call_id(&text);
        main.send_to(&bytes, target).expect("send");
        let deadline = Instant::now() + Duration::from_millis(400);
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while Instant::now() < deadline {
            for s in [&main, &alt] {
                if let Ok((n, _)) = s.recv_from(&mut buf) {
                    let r = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if r.starts_with("SIP/2.0 ") && call_id(&r) == cid {
                        if let Some(code) = r.get(8..11).and_then(|c| c.parse::<u16>().ok()) {
                            if code >= 200 || got.is_empty() {
                                got.push(code);
                            }
                        }
                    }
                }
            }
        }
        let finals: Vec<u16> = got.iter().copied().filter(|c| *c >= 200).collect();
        let is_response = text.starts_with("SIP/2.0 ");
        let ok = if row.silent() || is_response {
            got.is_empty()
        } else if let Some(&f) = finals.first() {
            row.codes().contains(&f) || (row.liberal() && f != 400) || (row.registrar() && f == 405)
        } else {
            // Nothing came back: allowed only where the message is too broken to answer
            // (its Via/From/To/Call-ID/CSeq cannot be read).
            let parses = voxgate::sip::parse(bytes::Bytes::from(bytes.clone())).is_ok();
            if parses {
                false
            } else {
                unanswered.push(row.name.clone());
                true
            }
        };
        if !ok {
            wrong.push(format!(
                "{}: expected {:?}, got {:?}",
                row.name, row.text, got
            ));
        }
        seen.insert(row.name.clone(), got);
    }
    println!("unanswerable (dropped, counted): {unanswered:?}");
    println!("responses: {seen:?}");
    assert!(
        wrong.is_empty(),
        "{} of {} handled wrongly:\n{}",
        wrong.len(),
        rows.len(),
        wrong.join("\n")
    );
    rt.block_on(gw.shutdown());
}
