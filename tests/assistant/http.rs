//! The v2 client against `assistant-server` over real HTTP on loopback, including
//! errors: unknown session (404), bad credentials (401), server down, timeouts.

use std::time::{Duration, Instant};

use voxgate::assistant::{
    Assistant, AssistantError, AssistantServer, Auth, CallEvent, ClientConfig, Context,
    DialogSkill, TurnInput, VoiceAction, VoiceTelephony, WatsonClient,
};

async fn start(server: AssistantServer) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = server.serve(listener).await;
    });
    (format!("http://{addr}"), task)
}

fn client(base: &str, auth: Auth) -> WatsonClient {
    let mut cfg = ClientConfig::new(base, "demo-assistant", auth);
    cfg.timeout = Duration::from_secs(3);
    WatsonClient::new(cfg).expect("client")
}

fn spoken(actions: &[VoiceAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            VoiceAction::Speak { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn demo_call_over_http() {
    let server = AssistantServer::new(DialogSkill::demo().expect("demo"));
    let (base, task) = start(server.clone()).await;
    let c = client(&base, Auth::None);
    let mut session = c.open_session().await.expect("session");
    assert_eq!(server.session_count(), 1);
    let ctx = VoiceTelephony::new()
        .sip_call_id("call-1")
        .custom_invite_header("X-Account", "42")
        .into_context();
    let r = session
        .message(TurnInput::welcome(), ctx)
        .await
        .expect("welcome");
    assert!(spoken(&r.actions)[0].starts_with("Hello, thanks for calling voxgate."));
    assert_eq!(
        r.context
            .voice_telephony()
            .and_then(|v| v.get("sip_call_id"))
            .and_then(|v| v.as_str()),
        Some("call-1"),
        "context round-trips through the server"
    );
    let r = session
        .message(TurnInput::dtmf("2"), r.context)
        .await
        .expect("agent");
    assert!(r.actions.iter().any(|a| matches!(a, VoiceAction::Transfer(t) if t.target.as_deref() == Some("sip:agent@127.0.0.1:5070"))));
    let r = session
        .message(TurnInput::event(CallEvent::CallTransferFailed), r.context)
        .await
        .expect("failed");
    assert_eq!(
        spoken(&r.actions),
        vec!["Sorry, no agent is free right now. Say billing or goodbye."]
    );
    let r = session
        .message(TurnInput::text("bye"), r.context)
        .await
        .expect("bye");
    assert!(matches!(r.actions.last(), Some(VoiceAction::Hangup { .. })));
    session.close().await.expect("close");
    assert_eq!(server.session_count(), 0);
    task.abort();
}

#[tokio::test]
async fn unknown_session_is_session_not_found() {
    let (base, task) = start(AssistantServer::new(DialogSkill::demo().expect("demo"))).await;
    let c = client(&base, Auth::None);
    let err = c
        .message("no-such-session", &TurnInput::text("hi"), &Context::new())
        .await
        .expect_err("404");
    assert!(matches!(err, AssistantError::SessionNotFound(_)), "{err:?}");
    let err = c.delete_session("no-such-session").await.expect_err("404");
    assert!(matches!(err, AssistantError::SessionNotFound(_)), "{err:?}");
    task.abort();
}

#[tokio::test]
async fn missing_version_is_http_400() {
    let (base, task) = start(AssistantServer::new(DialogSkill::demo().expect("demo"))).await;
    let mut cfg = ClientConfig::new(&base, "a", Auth::None);
    cfg.version = String::new();
    let err = WatsonClient::new(cfg)
        .expect("client")
        .create_session()
        .await
        .expect_err("400");
    assert!(
        matches!(err, AssistantError::Http { status: 400, .. }),
        "{err:?}"
    );
    task.abort();
}

#[tokio::test]
async fn bad_credentials_are_auth_errors() {
    let server =
        AssistantServer::with_api_key(DialogSkill::demo().expect("demo"), "s3cret".into(), 3600);
    let (base, task) = start(server).await;
    for auth in [
        Auth::None,
        Auth::Bearer("forged".into()),
        Auth::Basic {
            username: "apikey".into(),
            password: "wrong".into(),
        },
        Auth::IamApiKey {
            api_key: "wrong".into(),
            iam_url: format!("{base}/identity/token"),
        },
    ] {
        let err = client(&base, auth.clone())
            .create_session()
            .await
            .expect_err("401");
        assert!(matches!(err, AssistantError::Auth(_)), "{auth:?}: {err:?}");
    }
    let ok = client(
        &base,
        Auth::Basic {
            username: "apikey".into(),
            password: "s3cret".into(),
        },
    );
    ok.create_session().await.expect("basic auth accepted");
    task.abort();
}

#[tokio::test]
async fn iam_token_is_cached_and_refreshed_after_revocation() {
    let server =
        AssistantServer::with_api_key(DialogSkill::demo().expect("demo"), "s3cret".into(), 3600);
    let (base, task) = start(server.clone()).await;
    let c = client(
        &base,
        Auth::IamApiKey {
            api_key: "s3cret".into(),
            iam_url: format!("{base}/identity/token"),
        },
    );
    let sid = c.create_session().await.expect("session");
    c.message(&sid, &TurnInput::welcome(), &Context::new())
        .await
        .expect("turn 1");
    c.message(&sid, &TurnInput::text("billing"), &Context::new())
        .await
        .expect("turn 2");
    assert_eq!(server.tokens_issued(), 1, "one exchange for three calls");
    server.revoke_tokens();
    let (out, _) = c
        .message(&sid, &TurnInput::text("billing"), &Context::new())
        .await
        .expect("after refresh");
    assert!(out["generic"].is_array());
    assert_eq!(server.tokens_issued(), 2, "401 triggers one new exchange");
    task.abort();
}

#[tokio::test]
async fn iam_token_with_zero_lifetime_is_exchanged_each_time() {
    let server = AssistantServer::with_api_key(DialogSkill::demo().expect("demo"), "k".into(), 0);
    let (base, task) = start(server.clone()).await;
    let c = client(
        &base,
        Auth::IamApiKey {
            api_key: "k".into(),
            iam_url: format!("{base}/identity/token"),
        },
    );
    c.create_session().await.expect("1");
    c.create_session().await.expect("2");
    assert_eq!(server.tokens_issued(), 2);
    task.abort();
}

#[tokio::test]
async fn server_down_is_unreachable() {
    // Bind, learn the port, close: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = client(&format!("http://{addr}"), Auth::None)
        .create_session()
        .await
        .expect_err("down");
    assert!(matches!(err, AssistantError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn silent_server_times_out() {
    // A real socket that accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let mut cfg = ClientConfig::new(format!("http://{addr}"), "a", Auth::None);
    cfg.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = WatsonClient::new(cfg)
        .expect("client")
        .create_session()
        .await
        .expect_err("timeout");
    assert!(
        matches!(err, AssistantError::Timeout(d) if d == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "bounded by the configured timeout"
    );
    hold.abort();
}

#[tokio::test]
async fn non_json_answer_is_bad_response() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let srv = tokio::spawn(async move {
        if let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let body = "not json";
            let resp = format!("HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = sock.write_all(resp.as_bytes()).await;
        }
    });
    let err = client(&format!("http://{addr}"), Auth::None)
        .create_session()
        .await
        .expect_err("bad");
    assert!(matches!(err, AssistantError::BadResponse(_)), "{err:?}");
    srv.abort();
}

#[tokio::test]
async fn expired_session_is_session_not_found() {
    let server =
        AssistantServer::new(DialogSkill::demo().expect("demo")).with_idle_timeout(Duration::ZERO);
    let (base, task) = start(server).await;
    let c = client(&base, Auth::None);
    let sid = c.create_session().await.expect("session");
    let err = c
        .message(&sid, &TurnInput::welcome(), &Context::new())
        .await
        .expect_err("expired");
    assert!(matches!(err, AssistantError::SessionNotFound(_)), "{err:?}");
    task.abort();
}
