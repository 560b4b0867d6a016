//! The gateway: SIP transports (UDP, TCP, TLS) and the UA core on tokio, with media
//! behind [`media::MediaPort`].
//!
//! Threads and data flow: transport tasks (one UDP receive task, one accept task per
//! stream listener, one reader and one writer task per connection) send [`Inbound`]
//! items over one bounded channel to the core task, which owns the [`SipCore`] (every
//! transaction and dialog) and the media port. The core task parses, runs the core,
//! sends what it emits (UDP directly, streams through each connection's write queue),
//! and serves per-call commands from [`GatewayHandle`]. No locks.

pub mod engine_media;
pub mod media;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::settings::IntegrationSettings;
use crate::sip::dialog::{CallRef, Direction, ReferRequest, TransferOutcome};
use crate::sip::transport::framing::FrameLimits;
use crate::sip::transport::{stream, tls, udp, Inbound, TransportCounters};
use crate::sip::ua::{
    CallError, CallEvent, ConnId, CoreConfig, CoreStats, LocalAddrs, RequestView, ResponseView,
    SipCore, Transport,
};
use crate::sip::{SipMessage, UasPolicy};
use media::MediaPort;

/// Gateway configuration.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// UDP listen address (port 0 = any).
    pub udp: SocketAddr,
    /// TCP listen address.
    pub tcp: SocketAddr,
    /// TLS listen address.
    pub tls: SocketAddr,
    /// TLS certificate and key (PEM); self-signed when absent.
    pub tls_cert: Option<(PathBuf, PathBuf)>,
    /// Integration settings.
    pub settings: IntegrationSettings,
    /// Configured numbers (E.164).
    pub numbers: HashSet<String>,
    /// Stream framing limits (also the datagram size limit).
    pub limits: FrameLimits,
    /// Answer admitted calls at once (prompt mode) instead of waiting for
    /// [`GatewayHandle::answer`].
    pub auto_answer: bool,
    /// Put the MD5 digest challenge before SHA-256 (clients that read only the first).
    pub digest_md5_first: bool,
    /// The media address put in SDP `c=` instead of the RTP socket's own (a node behind
    /// NAT or a load balancer; config `media.advertised_address`). The port stays.
    pub advertised_media_ip: Option<std::net::IpAddr>,
    /// Opus in answers (off / accept when no G.711 is offered / prefer).
    pub opus: crate::sip::ua::sdp_glue::OpusPolicy,
    /// Opus encoder complexity 0–10 for the media sessions.
    pub opus_complexity: u8,
}

impl GatewayConfig {
    /// The defaults of `voxgate run` without a config: 127.0.0.1:5060 UDP/TCP, 5061 TLS,
    /// the demo number.
    pub fn demo() -> Self {
        Self {
            udp: "127.0.0.1:5060"
                .parse()
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 5060))),
            tcp: SocketAddr::from(([127, 0, 0, 1], 5060)),
            tls: SocketAddr::from(([127, 0, 0, 1], 5061)),
            tls_cert: None,
            settings: IntegrationSettings::default(),
            numbers: ["+19585550123".to_owned()].into_iter().collect(),
            limits: FrameLimits::default(),
            auto_answer: true,
            digest_md5_first: false,
            advertised_media_ip: None,
            opus: crate::sip::ua::sdp_glue::OpusPolicy::Accept,
            opus_complexity: voxgate_engine::codec::opus::DEFAULT_COMPLEXITY,
        }
    }

    /// Same, on ephemeral loopback ports (tests).
    pub fn ephemeral() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            udp: any,
            tcp: any,
            tls: any,
            ..Self::demo()
        }
    }
}

/// A gateway start-up fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// A listener could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// TLS configuration.
    #[error(transparent)]
    Tls(#[from] tls::TlsConfigError),
    /// The gateway task is gone.
    #[error("gateway stopped")]
    Stopped,
}

/// Per-call commands.
#[derive(Debug)]
enum Command {
    Answer(CallRef, oneshot::Sender<Result<(), CallError>>),
    Hangup(
        CallRef,
        Vec<(String, String)>,
        oneshot::Sender<Result<(), CallError>>,
    ),
    Hold(CallRef, Direction, oneshot::Sender<Result<u16, CallError>>),
    Refer(
        CallRef,
        ReferRequest,
        oneshot::Sender<Result<TransferOutcome, CallError>>,
    ),
    Transfer(
        CallRef,
        ReferRequest,
        oneshot::Sender<Result<TransferOutcome, CallError>>,
    ),
    Info(
        CallRef,
        String,
        Vec<u8>,
        oneshot::Sender<Result<(), CallError>>,
    ),
    Snapshot(oneshot::Sender<Snapshot>),
    Configure(Box<LiveConfig>),
}

/// What the operator can change while the gateway runs.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Integration settings for new calls.
    pub settings: IntegrationSettings,
    /// Configured numbers (E.164).
    pub numbers: HashSet<String>,
    /// Refuse new calls with 503.
    pub draining: bool,
}

/// Counters and gauges of a running gateway.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Calls up (admitted, not ended).
    pub active_calls: usize,
    /// UA core counters.
    pub core: CoreStats,
    /// Transport counters: (oversize, framing errors, unparseable, rejected, queue full).
    pub transport: [u64; 5],
    /// Calls ended so far.
    pub calls_ended: u64,
    /// RTP packets (sent, received) so far, from the media port.
    pub rtp: (u64, u64),
}

/// The per-call API the call layer uses (cheap to clone).
#[derive(Debug, Clone)]
pub struct GatewayHandle {
    cmd: mpsc::Sender<Command>,
}

impl GatewayHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, GatewayError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(tx))
            .await
            .map_err(|_| GatewayError::Stopped)?;
        rx.await.map_err(|_| GatewayError::Stopped)
    }

    /// Opens media and answers an incoming call (when `auto_answer` is off).
    pub async fn answer(&self, call: CallRef) -> Result<Result<(), CallError>, GatewayError> {
        self.ask(|tx| Command::Answer(call, tx)).await
    }

    /// Hangs up with BYE carrying `headers` (or rejects an unanswered call with 480).
    pub async fn hangup(
        &self,
        call: CallRef,
        headers: Vec<(String, String)>,
    ) -> Result<Result<(), CallError>, GatewayError> {
        self.ask(|tx| Command::Hangup(call, headers, tx)).await
    }

    /// Holds (`SendOnly`/`Inactive`) or resumes (`SendRecv`) by re-INVITE; returns the
    /// final status (0 on timeout).
    pub async fn hold(
        &self,
        call: CallRef,
        direction: Direction,
    ) -> Result<Result<u16, CallError>, GatewayError> {
        self.ask(|tx| Command::Hold(call, direction, tx)).await
    }

    /// Sends REFER and waits for the final outcome (Succeeded, Failed, TimedOut).
    pub async fn refer(
        &self,
        call: CallRef,
        req: ReferRequest,
    ) -> Result<Result<TransferOutcome, CallError>, GatewayError> {
        self.ask(|tx| Command::Refer(call, req, tx)).await
    }

    /// Transfers the caller as the seed's options say: hold first (re-INVITE
    /// `sendonly`) unless `no_hold_on_transfer`, then REFER; waits for the outcome.
    pub async fn transfer(
        &self,
        call: CallRef,
        req: ReferRequest,
    ) -> Result<Result<TransferOutcome, CallError>, GatewayError> {
        self.ask(|tx| Command::Transfer(call, req, tx)).await
    }

    /// Sends INFO (e.g. `application/dtmf-relay`).
    pub async fn send_info(
        &self,
        call: CallRef,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Result<(), CallError>, GatewayError> {
        let ct = content_type.to_owned();
        self.ask(|tx| Command::Info(call, ct, body, tx)).await
    }

    /// Applies new settings, numbers and the draining flag to calls from now on.
    pub async fn configure(&self, c: LiveConfig) -> Result<(), GatewayError> {
        self.cmd
            .send(Command::Configure(Box::new(c)))
            .await
            .map_err(|_| GatewayError::Stopped)
    }

    /// Counters.
    pub async fn snapshot(&self) -> Result<Snapshot, GatewayError> {
        self.ask(Command::Snapshot).await
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// Bound addresses.
    pub local: LocalAddrs,
    /// The TLS listener's certificate.
    pub tls_certificate: tls::CertificateInfo,
    handle: GatewayHandle,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    core_task: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Binds the listeners and starts the tasks. `events` receives every [`CallEvent`]
    /// (the call layer); `media` serves RTP.
    pub async fn start(
        cfg: GatewayConfig,
        media: Box<dyn MediaPort>,
        events: Option<mpsc::UnboundedSender<CallEvent>>,
    ) -> Result<Gateway, GatewayError> {
        let bind_err = |addr| move |source| GatewayError::Bind { addr, source };
        let udp_sock = Arc::new(UdpSocket::bind(cfg.udp).await.map_err(bind_err(cfg.udp))?);
        let udp_addr = udp_sock.local_addr().map_err(bind_err(cfg.udp))?;
        // TCP on the same port as UDP when UDP's was ephemeral.
        let tcp_want = if cfg.tcp.port() == 0 && cfg.udp.port() == 0 {
            udp_addr
        } else {
            cfg.tcp
        };
        let tcp = match TcpListener::bind(tcp_want).await {
            Ok(l) => l,
            Err(_) if tcp_want != cfg.tcp => TcpListener::bind(cfg.tcp)
                .await
                .map_err(bind_err(cfg.tcp))?,
            Err(e) => {
                return Err(GatewayError::Bind {
                    addr: cfg.tcp,
                    source: e,
                })
            }
        };
        let tcp_addr = tcp.local_addr().map_err(bind_err(cfg.tcp))?;
        let tls_l = TcpListener::bind(cfg.tls)
            .await
            .map_err(bind_err(cfg.tls))?;
        let tls_addr = tls_l.local_addr().map_err(bind_err(cfg.tls))?;
        let ck = match &cfg.tls_cert {
            Some((c, k)) => tls::load_or_generate(Some(c), Some(k))?,
            None => tls::load_or_generate(None, None)?,
        };
        let tls_certificate = ck.info(cfg.tls_cert.as_ref().map(|(c, _)| c.as_path()));
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(ck)?);
        let local = LocalAddrs {
            udp: udp_addr,
            tcp: tcp_addr,
            tls: tls_addr,
        };

        let counters = Arc::new(TransportCounters::default());
        let (in_tx, in_rx) = mpsc::channel::<Inbound>(8192);
        let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(1024);
        let (sd_tx, sd_rx) = watch::channel(false);
        let next_conn = Arc::new(AtomicU64::new(1));
        let open_conns = Arc::new(AtomicUsize::new(0));
        let max_msg = cfg.limits.max_header + cfg.limits.max_body;
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(udp::receive_loop(
            udp_sock.clone(),
            in_tx.clone(),
            counters.clone(),
            max_msg,
        )));
        for (listener, transport) in [(tcp, Transport::Tcp), (tls_l, Transport::Tls)] {
            let (in_tx, counters, next_conn, acceptor, limits) = (
                in_tx.clone(),
                counters.clone(),
                next_conn.clone(),
                acceptor.clone(),
                cfg.limits,
            );
            let open = open_conns.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let (sock, remote) = match listener.accept().await {
                        Ok(x) => x,
                        Err(e) => {
                            // EMFILE and the like: back off instead of spinning.
                            tracing::warn!("accept on {}: {e}", transport.token());
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    if open.load(Ordering::Relaxed) >= stream::MAX_CONNECTIONS {
                        counters.connections_refused.fetch_add(1, Ordering::Relaxed);
                        drop(sock);
                        continue;
                    }
                    let _ = sock.set_nodelay(true);
                    let guard = ConnGuard::new(open.clone());
                    let conn = next_conn.fetch_add(1, Ordering::Relaxed);
                    let (in_tx, counters) = (in_tx.clone(), counters.clone());
                    match transport {
                        Transport::Tls => {
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let _guard = guard;
                                match tokio::time::timeout(
                                    Duration::from_secs(10),
                                    acceptor.accept(sock),
                                )
                                .await
                                {
                                    Ok(Ok(s)) => {
                                        stream::serve(
                                            s,
                                            Transport::Tls,
                                            remote,
                                            conn,
                                            in_tx,
                                            counters,
                                            limits,
                                        )
                                        .await
                                    }
                                    _ => {
                                        counters.framing_errors.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            });
                        }
                        _ => {
                            tokio::spawn(async move {
                                let _guard = guard;
                                stream::serve(
                                    sock,
                                    Transport::Tcp,
                                    remote,
                                    conn,
                                    in_tx,
                                    counters,
                                    limits,
                                )
                                .await
                            });
                        }
                    }
                }
            }));
        }
        let mut core_cfg = CoreConfig::new(local, cfg.settings.clone(), cfg.numbers.clone());
        core_cfg.digest_md5_first = cfg.digest_md5_first;
        core_cfg.opus = cfg.opus;
        let core = SipCore::new(core_cfg);
        let task = CoreTask {
            core,
            media,
            events,
            udp: udp_sock,
            conns: HashMap::new(),
            counters,
            auto_answer: cfg.auto_answer,
            pending_hold: HashMap::new(),
            pending_refer: HashMap::new(),
            pending_transfer: HashMap::new(),
            ended: 0,
            advertised_media_ip: cfg.advertised_media_ip,
        };
        let core_task = tokio::spawn(task.run(in_rx, cmd_rx, sd_rx));
        Ok(Gateway {
            local,
            tls_certificate,
            handle: GatewayHandle { cmd: cmd_tx },
            shutdown: sd_tx,
            tasks,
            core_task: Some(core_task),
        })
    }

    /// The per-call API.
    pub fn handle(&self) -> GatewayHandle {
        self.handle.clone()
    }

    /// Hangs up every call (BYE), then stops all tasks.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.core_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(t) = &self.core_task {
            t.abort();
        }
    }
}

struct CoreTask {
    core: SipCore,
    media: Box<dyn MediaPort>,
    events: Option<mpsc::UnboundedSender<CallEvent>>,
    udp: Arc<UdpSocket>,
    conns: HashMap<ConnId, mpsc::Sender<Bytes>>,
    counters: Arc<TransportCounters>,
    auto_answer: bool,
    pending_hold: HashMap<CallRef, oneshot::Sender<Result<u16, CallError>>>,
    pending_refer: HashMap<CallRef, oneshot::Sender<Result<TransferOutcome, CallError>>>,
    /// Transfers waiting for their hold re-INVITE to finish.
    pending_transfer: HashMap<
        CallRef,
        (
            ReferRequest,
            oneshot::Sender<Result<TransferOutcome, CallError>>,
        ),
    >,
    ended: u64,
    advertised_media_ip: Option<std::net::IpAddr>,
}

impl CoreTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Inbound>,
        mut cmds: mpsc::Receiver<Command>,
        mut sd: watch::Receiver<bool>,
    ) {
        loop {
            let deadline = self.core.poll_timeout().map(tokio::time::Instant::from_std);
            let far = tokio::time::Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                biased;
                _ = sd.changed() => break,
                m = rx.recv() => {
                    let Some(m) = m else { break };
                    self.inbound(m);
                    // Take what else is queued without re-polling the timers.
                    for _ in 0..256 {
                        match rx.try_recv() {
                            Ok(m) => self.inbound(m),
                            Err(_) => break,
                        }
                    }
                }
                c = cmds.recv() => {
                    let Some(c) = c else { break };
                    self.command(c);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)) => {
                    self.core.handle_timeout(Instant::now());
                }
            }
            self.flush();
        }
        // Graceful shutdown: BYE every answered call, reject the rest, then let the
        // messages go out.
        let now = Instant::now();
        let calls: Vec<CallRef> = self.media_calls();
        for call in calls {
            let _ = self.core.hangup(
                call,
                &[(
                    "Reason".to_owned(),
                    "Q.850;cause=16;text=\"shutdown\"".to_owned(),
                )],
                now,
            );
        }
        self.flush();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    fn media_calls(&self) -> Vec<CallRef> {
        self.core.call_refs()
    }

    fn send(&mut self, t: crate::sip::ua::Transmit) {
        if let Some(status) = response_status(&t.bytes) {
            crate::metrics::metrics().sip_response(status);
        }
        match (t.flow.transport, t.flow.conn) {
            (Transport::Udp, _) => udp::send(
                &self.udp,
                t.flow.remote,
                &t.bytes,
                &self.counters.send_errors,
            ),
            (_, Some(conn)) => match self.conns.get(&conn) {
                Some(w) if w.try_send(t.bytes).is_ok() => {}
                _ => {
                    self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                }
            },
            _ => {
                self.counters.send_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn flush(&mut self) {
        for _ in 0..1_000_000 {
            let mut progressed = false;
            while let Some(t) = self.core.poll_transmit() {
                self.send(t);
                progressed = true;
            }
            while let Some(e) = self.core.poll_event() {
                self.event(e);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
    }

    fn event(&mut self, e: CallEvent) {
        let now = Instant::now();
        match &e {
            CallEvent::Incoming(info) if self.auto_answer => {
                let call = info.call;
                let _ = self.answer(call, now);
            }
            CallEvent::Answered { call, media } => self.media.start(*call, media),
            CallEvent::MediaChanged { call, media } => self.media.update(*call, media),
            CallEvent::HoldResult { call, status, .. } => {
                if let Some(tx) = self.pending_hold.remove(call) {
                    let _ = tx.send(Ok(*status));
                }
                // Hold done (or refused: the transfer goes ahead anyway).
                if let Some((req, tx)) = self.pending_transfer.remove(call) {
                    self.start_refer(*call, &req, tx, now);
                }
            }
            CallEvent::Transfer { call, outcome } if outcome.is_final() => {
                if let Some(tx) = self.pending_refer.remove(call) {
                    let _ = tx.send(Ok(*outcome));
                }
            }
            CallEvent::Ended { call, reason } => {
                tracing::debug!(call = call.0, ?reason, "call ended");
                self.ended += 1;
                self.media.close(*call);
                if let Some(tx) = self.pending_hold.remove(call) {
                    let _ = tx.send(Err(CallError::NoSuchCall));
                }
                if let Some(tx) = self.pending_refer.remove(call) {
                    let _ = tx.send(Ok(TransferOutcome::Failed(0)));
                }
                if let Some((_, tx)) = self.pending_transfer.remove(call) {
                    let _ = tx.send(Err(CallError::NoSuchCall));
                }
            }
            _ => {}
        }
        if let Some(ev) = &self.events {
            let _ = ev.send(e);
        }
    }

    fn answer(&mut self, call: CallRef, now: Instant) -> Result<(), CallError> {
        let preview = match self.core.preview_answer(call) {
            Ok(p) => p,
            Err(e) => {
                let _ = self.core.reject(call, 488, now);
                return Err(e);
            }
        };
        match self.media.open(call, &preview) {
            Ok(mut local) => {
                if let Some(ip) = self.advertised_media_ip {
                    local.set_ip(ip);
                }
                let r = self.core.answer(call, local, now);
                if r.is_err() {
                    self.media.close(call);
                }
                r
            }
            Err(e) => {
                tracing::warn!("media for call {}: {e}", call.0);
                let _ = self.core.reject(call, 503, now);
                Err(CallError::WrongState("no media"))
            }
        }
    }

    fn start_refer(
        &mut self,
        call: CallRef,
        req: &ReferRequest,
        tx: oneshot::Sender<Result<TransferOutcome, CallError>>,
        now: Instant,
    ) {
        match self.core.refer(call, req, now) {
            Ok(()) => {
                self.pending_refer.insert(call, tx);
            }
            Err(e) => {
                let _ = tx.send(Err(e));
            }
        }
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Answer(call, tx) => {
                let _ = tx.send(self.answer(call, now));
            }
            Command::Hangup(call, headers, tx) => {
                let _ = tx.send(self.core.hangup(call, &headers, now));
            }
            Command::Hold(call, dir, tx) => match self.core.hold(call, dir, now) {
                Ok(()) => {
                    self.pending_hold.insert(call, tx);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            },
            Command::Refer(call, req, tx) => self.start_refer(call, &req, tx, now),
            Command::Transfer(call, req, tx) => {
                if self.core.settings().no_hold_on_transfer {
                    self.start_refer(call, &req, tx, now);
                } else {
                    match self.core.hold(call, Direction::SendOnly, now) {
                        Ok(()) => {
                            self.pending_transfer.insert(call, (req, tx));
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                }
            }
            Command::Info(call, ct, body, tx) => {
                let _ = tx.send(self.core.send_info(call, &ct, &body, now));
            }
            Command::Configure(c) => {
                let c = *c;
                self.core.set_settings(c.settings);
                self.core.set_numbers(c.numbers);
                self.core.set_draining(c.draining);
            }
            Command::Snapshot(tx) => {
                let c = &self.counters;
                let rtp = self.media.totals();
                let _ = tx.send(Snapshot {
                    active_calls: self.core.active_calls(),
                    core: self.core.stats(),
                    transport: [
                        c.oversize.load(Ordering::Relaxed),
                        c.framing_errors.load(Ordering::Relaxed),
                        c.unparseable.load(Ordering::Relaxed),
                        c.rejected.load(Ordering::Relaxed),
                        c.queue_full.load(Ordering::Relaxed),
                    ],
                    calls_ended: self.ended,
                    rtp,
                });
            }
        }
    }

    fn inbound(&mut self, m: Inbound) {
        let now = Instant::now();
        match m {
            Inbound::Opened { conn, writer } => {
                self.conns.insert(conn, writer);
            }
            Inbound::Closed { conn } => {
                // What is queued for this connection (e.g. the answer to an
                // unframeable message) goes out before its writer is dropped.
                self.flush();
                self.conns.remove(&conn);
            }
            Inbound::Unframeable { flow, head, status } => {
                // Answer if the header section reads as a request (with its length
                // taken as 0); the connection then closes.
                if let Ok(SipMessage::Request(req)) = crate::sip::parse(header_section(&head)) {
                    if let Ok(view) = RequestView::from_request(&req) {
                        self.core.respond_stateless(&view, flow, status, &[]);
                    }
                }
            }
            Inbound::Message { flow, bytes } => match crate::sip::parse(bytes) {
                Err(e) => {
                    self.counters.unparseable.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(remote = %flow.remote, "unparseable message dropped: {e}");
                }
                Ok(SipMessage::Request(req)) => {
                    if let Err(rej) = crate::sip::check_request(&req, &UasPolicy::GATEWAY) {
                        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(remote = %flow.remote, status = rej.status, fault = ?rej.fault, "request refused by the parser checks");
                        if req.method == crate::sip::Method::Ack {
                            return;
                        }
                        let mut out = Vec::with_capacity(512);
                        rej.write_response(&req, Some(&crate::sip::ua::build::token()), &mut out);
                        let dest = match RequestView::from_request(&req) {
                            Ok(v) => crate::sip::ua::response_flow(&v, flow),
                            Err(_) => flow,
                        };
                        self.send(crate::sip::ua::Transmit {
                            flow: dest,
                            bytes: Bytes::from(out),
                        });
                        return;
                    }
                    match RequestView::from_request(&req) {
                        Ok(v) => self.core.handle_request(v, flow, now),
                        Err(e) => {
                            self.counters.unparseable.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!("request dropped: {e}");
                        }
                    }
                }
                Ok(SipMessage::Response(resp)) => {
                    if crate::sip::check_response(&resp).is_err() {
                        self.counters
                            .dropped_responses
                            .fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    match ResponseView::from_response(&resp) {
                        Ok(v) => self.core.handle_response(v, now),
                        Err(_) => {
                            self.counters
                                .dropped_responses
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            },
        }
    }
}

/// The status code of an outgoing response (`SIP/2.0 NNN …`), `None` for a request.
/// Every response leaves through `CoreTask::send`, so counting there covers the UA core,
/// stateless answers and the parser's refusals (retransmissions included).
fn response_status(bytes: &[u8]) -> Option<u16> {
    let code = bytes.strip_prefix(b"SIP/2.0 ")?.get(..3)?;
    if !code.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(code).ok()?.parse().ok()
}

/// The header section of a stream buffer with Content-Length rewritten to 0, so a
/// message whose body is over the limit (or never came) can still be answered.
fn header_section(buf: &[u8]) -> Bytes {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 2)
        .or_else(|| buf.windows(2).position(|w| w == b"\n\n").map(|p| p + 1))
        .unwrap_or(buf.len());
    let mut out = Vec::with_capacity(end + 24);
    for line in buf[..end].split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let name = line
            .split(|b| *b == b':')
            .next()
            .unwrap_or(b"")
            .trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Bytes::from(out)
}

/// Counts a stream connection while its task lives.
struct ConnGuard(Arc<AtomicUsize>);

impl ConnGuard {
    fn new(open: Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open)
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
