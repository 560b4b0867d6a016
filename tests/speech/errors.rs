//! Every failure mode gives its typed error within the configured timeout (400 ms here);
//! nothing hangs. Faults come from small fault-injecting peers on loopback (a closed port,
//! a server that never answers, one that sends garbage, one that drops the connection) and
//! from the real speech-server with an API key.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use voxgate::speech::*;

use crate::common::*;

const LIMIT_MS: u64 = 400;

fn stt(addr: SocketAddr, credentials: Credentials) -> WatsonStt {
    WatsonStt::new(WatsonSttConfig {
        url: format!("http://{addr}"),
        credentials,
        timeouts: timeouts(LIMIT_MS),
    })
    .expect("stt")
}

fn tts(addr: SocketAddr, credentials: Credentials) -> WatsonTts {
    WatsonTts::new(WatsonTtsConfig {
        url: format!("http://{addr}"),
        credentials,
        timeouts: timeouts(LIMIT_MS),
    })
    .expect("tts")
}

/// Run `f`, require it to finish within the limit (plus slack), return its output.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    let t = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(5), f)
        .await
        .expect("operation hung");
    assert!(
        t.elapsed() < Duration::from_millis(LIMIT_MS * 3 + 1000),
        "took {:?}",
        t.elapsed()
    );
    out
}

async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    drop(l);
    a
}

/// Accepts connections and never answers.
async fn silent_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    a
}

/// Reads a request head, writes `response`, then closes (or holds the socket if `hold`).
async fn raw_http_server(response: Vec<u8>, hold: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = Vec::new();
            let mut tmp = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut tmp).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                }
            }
            let _ = s.write_all(&response).await;
            let _ = s.flush().await;
            if hold {
                held.push(s);
            }
        }
    });
    a
}

/// A WebSocket peer: after the start message, `script` decides what happens.
async fn ws_server(script: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l.accept().await {
            let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                continue;
            };
            let _start = ws.next().await;
            match script {
                "garbage" => {
                    let _ = ws.send(Message::Text("{not json".into())).await;
                    held.push(ws);
                }
                "drop" => {
                    let _ = ws
                        .send(Message::Text(r#"{"state": "listening"}"#.into()))
                        .await;
                    let _ = ws.next().await; // first audio
                    drop(ws); // TCP closed without a close frame
                }
                _ => held.push(ws), // silent
            }
        }
    });
    a
}

fn chunked_audio_head() -> Vec<u8> {
    let mut r = b"HTTP/1.1 200 OK\r\ncontent-type: audio/l16;rate=8000\r\ntransfer-encoding: chunked\r\n\r\n140\r\n".to_vec();
    r.extend(std::iter::repeat_n(0x11u8, 320));
    r.extend_from_slice(b"\r\n");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_down_is_unreachable() {
    let a = dead_addr().await;
    let e = bounded(stt(a, Credentials::None).start(RecognizeOptions::default()))
        .await
        .expect_err("ws");
    assert!(matches!(e, SpeechError::Unreachable(_)), "{e:?}");
    let e = bounded(stt(a, Credentials::None).recognize_once(
        &[0; 160],
        SampleRate::Hz8000,
        &Default::default(),
    ))
    .await
    .expect_err("post");
    assert!(matches!(e, SpeechError::Unreachable(_)), "{e:?}");
    let e = bounded(tts(a, Credentials::None).start(SynthesisRequest::text("hi")))
        .await
        .expect_err("tts");
    assert!(matches!(e, SpeechError::Unreachable(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_server_times_out() {
    let a = silent_server().await;
    let e = bounded(stt(a, Credentials::None).start(RecognizeOptions::default()))
        .await
        .expect_err("ws");
    assert!(matches!(e, SpeechError::Timeout(_)), "{e:?}");
    let e = bounded(tts(a, Credentials::None).start(SynthesisRequest::text("hi")))
        .await
        .expect_err("tts");
    assert!(matches!(e, SpeechError::Timeout(_)), "{e:?}");
    let e = bounded(tts(a, Credentials::None).list_voices())
        .await
        .expect_err("voices");
    assert!(matches!(e, SpeechError::Timeout(_)), "{e:?}");
    // WebSocket accepted, but `listening` never comes.
    let w = ws_server("silent").await;
    let e = bounded(stt(w, Credentials::None).start(RecognizeOptions::default()))
        .await
        .expect_err("ws silent");
    assert_eq!(e, SpeechError::Timeout("first byte"));
    // Audio starts, then the body stalls.
    let h = raw_http_server(chunked_audio_head(), true).await;
    let mut s = bounded(tts(h, Credentials::None).start(SynthesisRequest::text("hi")))
        .await
        .expect("headers");
    assert!(matches!(
        bounded(s.next_chunk()).await,
        Some(Ok(AudioChunk::Pcm(_)))
    ));
    assert_eq!(
        bounded(s.next_chunk()).await,
        Some(Err(SpeechError::Timeout("idle")))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_auth_errors() {
    let (a, _state) = start_server(Some("right-key"), Duration::from_secs(60)).await;
    let wrong = Credentials::Basic {
        username: "apikey".into(),
        password: "wrong".into(),
    };
    let e = bounded(stt(a, wrong.clone()).start(RecognizeOptions::default()))
        .await
        .expect_err("ws");
    assert!(matches!(e, SpeechError::Auth(_)), "{e:?}");
    let e = bounded(stt(a, wrong.clone()).recognize_once(
        &[0; 160],
        SampleRate::Hz8000,
        &Default::default(),
    ))
    .await
    .expect_err("post");
    assert!(matches!(e, SpeechError::Auth(_)), "{e:?}");
    let e = bounded(tts(a, Credentials::None).start(SynthesisRequest::text("hi")))
        .await
        .expect_err("tts");
    assert!(matches!(e, SpeechError::Auth(_)), "{e:?}");
    let iam = Credentials::IamApiKey {
        api_key: "wrong".into(),
        iam_url: format!("http://{a}/identity/token"),
    };
    let e = bounded(tts(a, iam).list_voices()).await.expect_err("iam");
    assert!(matches!(e, SpeechError::Auth(_)), "{e:?}");
    let e = bounded(tts(a, Credentials::Bearer("forged".into())).list_voices())
        .await
        .expect_err("bearer");
    assert!(matches!(e, SpeechError::Auth(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_bad_response() {
    let body =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\nnot json!"
            .to_vec();
    let h = raw_http_server(body, false).await;
    let e = bounded(stt(h, Credentials::None).recognize_once(
        &[0; 160],
        SampleRate::Hz8000,
        &Default::default(),
    ))
    .await
    .expect_err("post");
    assert!(matches!(e, SpeechError::BadResponse(_)), "{e:?}");
    let e = bounded(tts(h, Credentials::None).list_voices())
        .await
        .expect_err("voices");
    assert!(matches!(e, SpeechError::BadResponse(_)), "{e:?}");
    let e = bounded(tts(h, Credentials::None).start(SynthesisRequest::text("hi")))
        .await
        .expect_err("tts ctype");
    assert!(matches!(e, SpeechError::BadResponse(_)), "{e:?}");
    let w = ws_server("garbage").await;
    let e = bounded(stt(w, Credentials::None).start(RecognizeOptions::default()))
        .await
        .expect_err("ws");
    assert!(matches!(e, SpeechError::BadResponse(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_is_closed_mid_stream() {
    let h = raw_http_server(chunked_audio_head(), false).await;
    let mut s = bounded(tts(h, Credentials::None).start(SynthesisRequest::text("hi")))
        .await
        .expect("headers");
    let mut saw_audio = false;
    let last = loop {
        match bounded(s.next_chunk()).await {
            Some(Ok(_)) => saw_audio = true,
            other => break other,
        }
    };
    assert!(saw_audio);
    assert_eq!(last, Some(Err(SpeechError::ClosedMidStream)));

    let w = ws_server("drop").await;
    let mut r = bounded(stt(w, Credentials::None).start(RecognizeOptions::default()))
        .await
        .expect("listening");
    r.push(&[0i16; 160]).expect("push");
    assert_eq!(
        bounded(r.next_event()).await,
        Some(Err(SpeechError::ClosedMidStream))
    );
}
