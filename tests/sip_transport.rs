//! Transport faults on real loopback sockets: an over-size TCP message is answered 413
//! and the connection closed; garbage datagrams are dropped and counted without
//! blocking other traffic; a CRLF CRLF keep-alive gets a CRLF pong.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use voxgate::gateway::media::{Prompt, PromptPlayer};
use voxgate::gateway::{Gateway, GatewayConfig};
use voxgate::sip::transport::framing::FrameLimits;

fn options(call_id: &str, port: u16, transport: &str) -> String {
    format!("OPTIONS sip:+19585550123@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/{transport} 127.0.0.1:{port};branch=z9hG4bK{call_id};rport\r\nFrom: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:+19585550123@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
}

async fn start() -> Gateway {
    let media = Box::new(PromptPlayer::new(
        "127.0.0.1".parse().expect("ip"),
        Prompt::tone(),
    ));
    let mut cfg = GatewayConfig::ephemeral();
    cfg.limits = FrameLimits {
        max_header: 4096,
        max_body: 8192,
    };
    Gateway::start(cfg, media, None).await.expect("gateway")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_are_dropped_and_counted_without_blocking() {
    let gw = start().await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let port = sock.local_addr().expect("addr").port();
    let mut buf = [0u8; 4096];
    // One over-size datagram, then junk, each followed by a request that must still be
    // answered.
    let big = vec![b'A'; 65_000];
    sock.send_to(&big, gw.local.udp).await.expect("send big");
    for (round, junk_count) in [(0u32, 0u32), (1, 200)] {
        for i in 0..junk_count {
            let junk: Vec<u8> = (0..(i % 97 + 3)).map(|k| (k * 31 + i) as u8).collect();
            sock.send_to(&junk, gw.local.udp).await.expect("send");
        }
        let cid = format!("after-junk-{round}");
        sock.send_to(options(&cid, port, "UDP").as_bytes(), gw.local.udp)
            .await
            .expect("send");
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf))
            .await
            .expect("answered in time")
            .expect("recv");
        let r = String::from_utf8_lossy(&buf[..n]);
        assert!(
            r.starts_with("SIP/2.0 200 OK\r\n") && r.contains(&format!("Call-ID: {cid}")),
            "{r}"
        );
    }
    let s = gw.handle().snapshot().await.expect("snapshot");
    assert!(
        s.transport[0] >= 1,
        "the 65,000-byte datagram is over the 12 KiB limit: {:?}",
        s.transport
    );
    assert!(
        s.transport[2] >= 150,
        "junk counted as unparseable: {:?}",
        s.transport
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_tcp_body_gets_413_and_keepalive_gets_pong() {
    let gw = start().await;
    let mut tcp = TcpStream::connect(gw.local.tcp).await.expect("connect");
    tcp.write_all(b"\r\n\r\n").await.expect("ping");
    let mut pong = [0u8; 2];
    tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut pong))
        .await
        .expect("pong in time")
        .expect("read");
    assert_eq!(&pong, b"\r\n");
    let port = tcp.local_addr().expect("addr").port();
    let ok = options("tcp-ok", port, "TCP");
    tcp.write_all(ok.as_bytes()).await.expect("write");
    let big =
        options("tcp-big", port, "TCP").replace("Content-Length: 0", "Content-Length: 1000000");
    tcp.write_all(big.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut got))
        .await
        .expect("closed in time");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("SIP/2.0 200 OK\r\n") && text.contains("Call-ID: tcp-ok"),
        "{text}"
    );
    assert!(
        text.contains("SIP/2.0 413 ") && text.contains("Call-ID: tcp-big"),
        "{text}"
    );
}
