//! The UA core (sans-IO): requests and responses in, transmissions and call events out,
//! timers polled. One instance owns every transaction and dialog of the gateway; the
//! gateway task drives it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::auth::{self, AuthOutcome};
use super::build::{self, ALLOW, SUPPORTED};
use super::events::{CallEvent, CoreStats, EndReason, Transmit};
use super::media::NegotiatedMedia;
use super::view::{Flow, RequestView, ResponseView, Transport};
use crate::settings::IntegrationSettings;
use crate::sip::dialog::{CallRef, Dialog, DialogState, Direction, TransferOutcome};
use crate::sip::nonce::NonceStore;
use crate::sip::transaction::{
    ClientInvite, ClientNonInvite, Delivery, MergeKey, ServerInvite, ServerInviteState,
    ServerNonInvite, Timers, TransactionKey, TransactionTable, TxAction,
};

/// Our addresses, for Via and Contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddrs {
    /// UDP listener.
    pub udp: SocketAddr,
    /// TCP listener.
    pub tcp: SocketAddr,
    /// TLS listener.
    pub tls: SocketAddr,
}

impl LocalAddrs {
    /// The address for `t`.
    pub fn for_transport(&self, t: Transport) -> SocketAddr {
        match t {
            Transport::Udp => self.udp,
            Transport::Tcp => self.tcp,
            Transport::Tls => self.tls,
        }
    }
}

/// Configuration of the UA core.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Our addresses.
    pub local: LocalAddrs,
    /// Timer base values.
    pub timers: Timers,
    /// The integration's settings.
    pub settings: IntegrationSettings,
    /// Configured numbers, E.164.
    pub numbers: HashSet<String>,
    /// Digest realm.
    pub realm: String,
    /// How long a digest nonce is valid.
    pub nonce_lifetime: Duration,
    /// How long a transfer may take before it is reported `TimedOut`.
    pub transfer_timeout: Duration,
    /// Offer the MD5 digest challenge before the SHA-256 one.
    pub digest_md5_first: bool,
    /// Whether Opus is accepted or preferred in answers.
    pub opus: super::sdp_glue::OpusPolicy,
}

impl CoreConfig {
    /// Defaults around the given addresses and settings.
    pub fn new(local: LocalAddrs, settings: IntegrationSettings, numbers: HashSet<String>) -> Self {
        Self {
            local,
            timers: Timers::default(),
            settings,
            numbers,
            realm: "voxgate".to_owned(),
            nonce_lifetime: Duration::from_secs(300),
            transfer_timeout: Duration::from_secs(60),
            digest_md5_first: false,
            opus: super::sdp_glue::OpusPolicy::default(),
        }
    }
}

/// Misuse of the per-call API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No such call (ended or never existed).
    #[error("no such call")]
    NoSuchCall,
    /// The call is not in a state that allows this.
    #[error("call is {0}")]
    WrongState(&'static str),
    /// The REFER request is invalid.
    #[error(transparent)]
    Refer(#[from] crate::sip::dialog::ReferError),
    /// The SDP could not be answered.
    #[error(transparent)]
    Sdp(#[from] super::media::SdpReject),
}

#[derive(Debug)]
pub(super) enum ServerTx {
    Invite {
        tx: ServerInvite,
        flow: Flow,
        key: TransactionKey,
        call: Option<CallRef>,
    },
    NonInvite {
        tx: ServerNonInvite,
        key: TransactionKey,
        flow: Flow,
    },
}

/// Which request a client transaction carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClientKindPub {
    Bye,
    Refer,
    Info,
    Hold(Direction),
    Refresh,
}

#[derive(Debug)]
enum ClientTx {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

#[derive(Debug)]
struct ClientEntry {
    tx: ClientTx,
    call: CallRef,
    kind: ClientKindPub,
    flow: Flow,
    branch: String,
    cseq: u32,
}

#[derive(Debug)]
pub(super) struct Call {
    pub(super) dialog: Dialog,
    pub(super) invite_tx: u64,
    pub(super) invite: RequestView,
    pub(super) media: Option<NegotiatedMedia>,
    /// Our SRTP key for this dialog (chosen when the answer was previewed).
    pub(super) srtp_key: Option<super::media::SrtpKeys>,
    pub(super) local_rtp: Option<SocketAddr>,
    pub(super) hold_pending: bool,
    pub(super) transfer: Option<(Instant, TransferOutcome)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerRef {
    Server(u64),
    Client(u64),
    Call(CallRef),
}

/// The UA core.
#[derive(Debug)]
pub struct SipCore {
    pub(super) cfg: CoreConfig,
    pub(super) server: HashMap<u64, ServerTx>,
    table: TransactionTable<u64>,
    client: HashMap<u64, ClientEntry>,
    client_by_branch: HashMap<String, u64>,
    pub(super) calls: HashMap<CallRef, Call>,
    pub(super) by_dialog: HashMap<(String, String), CallRef>,
    next_id: u64,
    timers: BinaryHeap<Reverse<(Instant, TimerRef)>>,
    outbox: VecDeque<Transmit>,
    events: VecDeque<CallEvent>,
    pub(super) nonces: NonceStore,
    pub(super) stats: CoreStats,
    /// Draining (SIGTERM): OPTIONS and new INVITEs are answered 503 so a proxy's
    /// dispatcher stops choosing this node; in-dialog requests go on.
    pub(super) draining: bool,
}

impl SipCore {
    /// A core with no calls.
    pub fn new(cfg: CoreConfig) -> Self {
        let nonces = NonceStore::new(cfg.nonce_lifetime, 100_000);
        Self {
            cfg,
            server: HashMap::new(),
            table: TransactionTable::default(),
            client: HashMap::new(),
            client_by_branch: HashMap::new(),
            calls: HashMap::new(),
            by_dialog: HashMap::new(),
            next_id: 1,
            timers: BinaryHeap::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            nonces,
            stats: CoreStats::default(),
            draining: false,
        }
    }

    /// Replaces the settings (admin API change); calls in progress keep their media.
    pub fn set_settings(&mut self, settings: IntegrationSettings) {
        self.cfg.settings = settings;
    }

    /// The settings in force.
    pub fn settings(&self) -> &IntegrationSettings {
        &self.cfg.settings
    }

    /// Replaces the configured numbers (E.164).
    pub fn set_numbers(&mut self, numbers: HashSet<String>) {
        self.cfg.numbers = numbers;
    }

    /// Draining (SIGTERM): new INVITEs and out-of-dialog OPTIONS (a proxy's probe) get
    /// 503 with Retry-After; calls up continue.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Whether new calls are refused because the node is draining.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Calls admitted and not yet ended (the figure the cap applies to).
    pub fn active_calls(&self) -> usize {
        self.calls.len()
    }

    /// The calls up now.
    pub fn call_refs(&self) -> Vec<CallRef> {
        self.calls.keys().copied().collect()
    }

    /// Counters.
    pub fn stats(&self) -> CoreStats {
        self.stats
    }

    /// Next message to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// Next event for the call layer.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    pub(super) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(super) fn send(&mut self, flow: Flow, bytes: Bytes) {
        self.outbox.push_back(Transmit { flow, bytes });
    }

    pub(super) fn emit(&mut self, e: CallEvent) {
        self.events.push_back(e);
    }

    fn arm_server(&mut self, id: u64) {
        let t = match self.server.get(&id) {
            Some(ServerTx::Invite { tx, .. }) => tx.poll_timeout(),
            Some(ServerTx::NonInvite { tx, .. }) => tx.poll_timeout(),
            None => None,
        };
        if let Some(t) = t {
            self.timers.push(Reverse((t, TimerRef::Server(id))));
        }
    }

    fn arm_client(&mut self, id: u64) {
        let t = match self.client.get(&id).map(|c| &c.tx) {
            Some(ClientTx::Invite(tx)) => tx.poll_timeout(),
            Some(ClientTx::NonInvite(tx)) => tx.poll_timeout(),
            None => None,
        };
        if let Some(t) = t {
            self.timers.push(Reverse((t, TimerRef::Client(id))));
        }
    }

    pub(super) fn arm_call(&mut self, call: CallRef) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let mut next: Option<Instant> = c.transfer.map(|(d, _)| d);
        if let Some(st) = c.dialog.session_timer {
            let t = st.refresh_due().unwrap_or_else(|| st.expiry());
            next = Some(next.map_or(t, |n| n.min(t)));
        }
        if let Some(t) = next {
            self.timers.push(Reverse((t, TimerRef::Call(call))));
        }
    }

    /// Sends a response inside server transaction `id`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn respond(
        &mut self,
        id: u64,
        req: &RequestView,
        status: u16,
        to_tag: Option<&str>,
        extra: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
        now: Instant,
    ) {
        let Some(entry) = self.server.get_mut(&id) else {
            return;
        };
        let (flow, out) = match entry {
            ServerTx::Invite { tx, flow, .. } => {
                let bytes = build::response(req, flow, status, to_tag, extra, body);
                (*flow, tx.send_response(status, bytes, now))
            }
            ServerTx::NonInvite { tx, flow, .. } => {
                let bytes = build::response(req, flow, status, to_tag, extra, body);
                (*flow, tx.send_response(status, bytes, now))
            }
        };
        if let Some(b) = out {
            self.send(flow, b);
        }
        self.arm_server(id);
    }

    /// Answers a request outside any transaction (ACK-less statelessness for faults).
    pub fn respond_stateless(
        &mut self,
        req: &RequestView,
        flow: Flow,
        status: u16,
        extra: &[(&str, &str)],
    ) {
        let tag = (req.to_tag.is_none() && status > 100).then(build::token);
        let bytes = build::response(req, &flow, status, tag.as_deref(), extra, None);
        self.send(flow, bytes);
    }

    fn new_server_tx(
        &mut self,
        req: &RequestView,
        flow: Flow,
        key: TransactionKey,
        now: Instant,
    ) -> u64 {
        let _ = now;
        let id = self.id();
        let reliability = flow.transport.reliability();
        let flow = response_flow(req, flow);
        let merge = req.to_tag.is_none().then(|| MergeKey {
            from_tag: req.from_tag.clone().unwrap_or_default(),
            call_id: req.call_id.clone(),
            cseq: req.cseq,
            method: req.cseq_method.clone(),
        });
        let tx = if req.method == "INVITE" {
            ServerTx::Invite {
                tx: ServerInvite::new(reliability, self.cfg.timers),
                flow,
                key: key.clone(),
                call: None,
            }
        } else {
            ServerTx::NonInvite {
                tx: ServerNonInvite::new(reliability, self.cfg.timers),
                key: key.clone(),
                flow,
            }
        };
        self.server.insert(id, tx);
        self.table.insert(key, merge, id);
        id
    }

    fn key_of(req: &RequestView, method: &str) -> TransactionKey {
        TransactionKey::for_request(
            method,
            req.top_via.branch.as_deref(),
            &req.top_via.sent_by(),
            &req.call_id,
            req.cseq,
            req.from_tag.as_deref(),
        )
    }

    /// A request arrived on `flow`.
    pub fn handle_request(&mut self, req: RequestView, flow: Flow, now: Instant) {
        self.stats.requests += 1;
        if req.method == "ACK" {
            self.handle_ack(&req, now);
            return;
        }
        let key = Self::key_of(&req, &req.method);
        if let Some(id) = self.table.get_mut(&key).map(|i| *i) {
            self.stats.retransmissions_absorbed += 1;
            let d = match self.server.get_mut(&id) {
                Some(ServerTx::Invite { tx, .. }) => tx.on_retransmitted_invite(),
                Some(ServerTx::NonInvite { tx, .. }) => tx.on_retransmitted_request(),
                None => Delivery::Absorb(None),
            };
            if let Delivery::Absorb(Some(b)) = d {
                self.send(flow, b);
            }
            return;
        }
        if req.to_tag.is_none() && req.method != "CANCEL" {
            let merge = MergeKey {
                from_tag: req.from_tag.clone().unwrap_or_default(),
                call_id: req.call_id.clone(),
                cseq: req.cseq,
                method: req.cseq_method.clone(),
            };
            if self.table.is_merged(&key, &merge) {
                let id = self.new_server_tx(&req, flow, key, now);
                self.respond(id, &req, 482, Some(&build::token()), &[], None, now);
                return;
            }
        }
        let id = self.new_server_tx(&req, flow, key, now);
        if req.method == "CANCEL" {
            self.handle_cancel(id, &req, now);
            return;
        }
        if req.method == "INVITE" {
            // 100 Trying at once: stops the trunk's INVITE retransmissions (§17.2.1).
            self.respond(id, &req, 100, None, &[], None, now);
        }
        if let Some(creds) = self.cfg.settings.sip_auth.clone() {
            if flow.transport != Transport::Tls {
                self.stats.auth_failures += 1;
                let tag = build::token();
                self.respond(
                    id,
                    &req,
                    403,
                    Some(&tag),
                    &[("Warning", "399 voxgate \"SIP authentication requires TLS\"")],
                    None,
                    now,
                );
                return;
            }
            match auth::check(
                &mut self.nonces,
                &self.cfg.realm,
                self.cfg.digest_md5_first,
                &creds,
                &req,
                now,
            ) {
                AuthOutcome::Accepted => {}
                AuthOutcome::Challenge { headers } => {
                    self.stats.auth_challenges += 1;
                    let tag = build::token();
                    let extra: Vec<(&str, &str)> = headers
                        .iter()
                        .map(|v| ("WWW-Authenticate", v.as_str()))
                        .collect();
                    self.respond(id, &req, 401, Some(&tag), &extra, None, now);
                    return;
                }
                AuthOutcome::Refused => {
                    self.stats.auth_failures += 1;
                    let tag = build::token();
                    self.respond(id, &req, 403, Some(&tag), &[], None, now);
                    return;
                }
            }
        }
        if let Some(to_tag) = req.to_tag.clone() {
            let dk = (req.call_id.clone(), to_tag);
            match self.by_dialog.get(&dk).copied() {
                Some(call) => self.handle_in_dialog(id, call, req, now),
                None => self.respond(id, &req, 481, None, &[], None, now),
            }
            return;
        }
        match req.method.as_str() {
            // A proxy's health probe: 503 takes this node out of its set.
            "OPTIONS" if self.draining => {
                let tag = build::token();
                self.respond(
                    id,
                    &req,
                    503,
                    Some(&tag),
                    &[
                        ("Retry-After", "30"),
                        ("Warning", build::DRAINING_WARNING),
                        ("Allow", ALLOW),
                    ],
                    None,
                    now,
                );
            }
            "INVITE" => self.handle_invite(id, req, flow, now),
            "OPTIONS" => {
                let tag = build::token();
                self.respond(
                    id,
                    &req,
                    200,
                    Some(&tag),
                    &[
                        ("Allow", ALLOW),
                        ("Supported", SUPPORTED),
                        ("Accept", "application/sdp"),
                    ],
                    None,
                    now,
                );
            }
            "BYE" | "INFO" | "UPDATE" | "NOTIFY" | "REFER" | "PRACK" => {
                self.respond(id, &req, 481, None, &[], None, now)
            }
            "REGISTER" | "SUBSCRIBE" | "PUBLISH" | "MESSAGE" => {
                let tag = build::token();
                self.respond(id, &req, 405, Some(&tag), &[("Allow", ALLOW)], None, now)
            }
            _ => {
                let tag = build::token();
                self.respond(id, &req, 501, Some(&tag), &[("Allow", ALLOW)], None, now)
            }
        }
    }

    fn handle_ack(&mut self, req: &RequestView, now: Instant) {
        let key = Self::key_of(req, "ACK");
        let mut id = self.table.get_mut(&key).copied();
        if id.is_none() {
            if let Some(tag) = &req.to_tag {
                if let Some(call) = self.by_dialog.get(&(req.call_id.clone(), tag.clone())) {
                    id = self.calls.get(call).map(|c| c.invite_tx);
                }
            }
        }
        if id.is_none() {
            let merge = MergeKey {
                from_tag: req.from_tag.clone().unwrap_or_default(),
                call_id: req.call_id.clone(),
                cseq: req.cseq,
                method: "INVITE".to_owned(),
            };
            if let Some(k) = self.table.key_for_merge(&merge).cloned() {
                id = self.table.get_mut(&k).copied();
            }
        }
        let Some(id) = id else {
            self.stats.retransmissions_absorbed += 1;
            return;
        };
        let (delivery, call) = match self.server.get_mut(&id) {
            Some(ServerTx::Invite { tx, call, .. }) => (tx.on_ack(now), *call),
            _ => return,
        };
        self.arm_server(id);
        if delivery == Delivery::Deliver {
            if let Some(call) = call {
                let mut first = false;
                if let Some(c) = self.calls.get_mut(&call) {
                    if c.dialog.state == DialogState::Early {
                        c.dialog.state = DialogState::Confirmed;
                        first = true;
                    }
                }
                if first {
                    self.emit(CallEvent::Established { call });
                }
            }
        }
    }

    fn handle_cancel(&mut self, id: u64, req: &RequestView, now: Instant) {
        let inv_key = Self::key_of(req, "INVITE");
        let inv_id = self.table.get_mut(&inv_key).copied();
        let Some(inv_id) = inv_id else {
            self.respond(id, req, 481, None, &[], None, now);
            return;
        };
        let (state, call) = match self.server.get(&inv_id) {
            Some(ServerTx::Invite { tx, call, .. }) => (tx.state(), *call),
            _ => (ServerInviteState::Terminated, None),
        };
        let tag = call
            .and_then(|c| self.calls.get(&c))
            .map(|c| c.dialog.local_tag.clone())
            .unwrap_or_else(build::token);
        self.respond(id, req, 200, Some(&tag), &[], None, now);
        if state == ServerInviteState::Proceeding {
            if let Some(call) = call {
                if let Some(c) = self.calls.remove(&call) {
                    self.by_dialog
                        .remove(&(c.dialog.call_id.clone(), c.dialog.local_tag.clone()));
                    self.respond(inv_id, &c.invite, 487, Some(&tag), &[], None, now);
                }
                self.emit(CallEvent::Ended {
                    call,
                    reason: EndReason::Cancelled,
                });
            }
        }
    }

    pub(super) fn end(&mut self, call: CallRef, reason: EndReason) {
        if let Some(c) = self.calls.remove(&call) {
            self.by_dialog
                .remove(&(c.dialog.call_id.clone(), c.dialog.local_tag.clone()));
            self.emit(CallEvent::Ended { call, reason });
        }
    }

    /// Sends a request inside `call`'s dialog as a new client transaction.
    pub(super) fn send_in_dialog(
        &mut self,
        call: CallRef,
        method: &str,
        kind_hint: Option<Direction>,
        extra: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
        now: Instant,
    ) -> Result<(), CallError> {
        let c = self.calls.get_mut(&call).ok_or(CallError::NoSuchCall)?;
        let (bytes, branch, cseq) = c.dialog.request(method, None, extra, body);
        let flow = c.dialog.flow;
        let reliability = flow.transport.reliability();
        let kind = match method {
            "BYE" => ClientKindPub::Bye,
            "REFER" => ClientKindPub::Refer,
            "INVITE" => ClientKindPub::Hold(kind_hint.unwrap_or_default()),
            "UPDATE" => ClientKindPub::Refresh,
            _ => ClientKindPub::Info,
        };
        let tx = if method == "INVITE" {
            ClientTx::Invite(ClientInvite::new(
                bytes.clone(),
                reliability,
                self.cfg.timers,
                now,
            ))
        } else {
            ClientTx::NonInvite(ClientNonInvite::new(
                bytes.clone(),
                reliability,
                self.cfg.timers,
                now,
            ))
        };
        let id = self.id();
        self.client.insert(
            id,
            ClientEntry {
                tx,
                call,
                kind,
                flow,
                branch: branch.clone(),
                cseq,
            },
        );
        self.client_by_branch.insert(branch, id);
        self.send(flow, bytes);
        self.arm_client(id);
        Ok(())
    }

    /// A response arrived.
    pub fn handle_response(&mut self, resp: ResponseView, now: Instant) {
        let Some(&id) = resp
            .branch
            .as_ref()
            .and_then(|b| self.client_by_branch.get(b))
        else {
            self.stats.stray_responses += 1;
            return;
        };
        let Some(entry) = self.client.get_mut(&id) else {
            return;
        };
        let (call, kind, flow, cseq) = (entry.call, entry.kind, entry.flow, entry.cseq);
        let delivery = match &mut entry.tx {
            ClientTx::NonInvite(tx) => tx.on_response(resp.status, now),
            ClientTx::Invite(tx) => {
                let dialog = self.calls.get(&call).map(|c| c.dialog.clone());
                let branch = entry.branch.clone();
                tx.on_response(
                    resp.status,
                    || match dialog {
                        Some(d) => failure_ack(&d, &branch, cseq, &resp.to),
                        None => Bytes::new(),
                    },
                    now,
                )
            }
        };
        self.arm_client(id);
        match delivery {
            Delivery::Absorb(Some(b)) => self.send(flow, b),
            Delivery::Absorb(None) => {}
            Delivery::Deliver => {
                if resp.status >= 300 {
                    if let Some(ClientEntry {
                        tx: ClientTx::Invite(tx),
                        ..
                    }) = self.client.get(&id)
                    {
                        if let Some(ack) = tx.failure_ack().cloned() {
                            self.send(flow, ack);
                        }
                    }
                }
                self.on_client_response(call, kind, cseq, &resp, now);
            }
        }
    }

    fn client_timeout(&mut self, id: u64, now: Instant) {
        let Some(entry) = self.client.remove(&id) else {
            return;
        };
        self.client_by_branch.remove(&entry.branch);
        let fake = ResponseView {
            status: 408,
            cseq: entry.cseq,
            ..Default::default()
        };
        self.on_client_response(entry.call, entry.kind, entry.cseq, &fake, now);
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for _ in 0..100_000 {
            match self.timers.peek() {
                Some(Reverse((t, _))) if *t <= now => {}
                _ => break,
            }
            let Some(Reverse((_, r))) = self.timers.pop() else {
                break;
            };
            match r {
                TimerRef::Server(id) => self.server_timer(id, now),
                TimerRef::Client(id) => {
                    let act = match self.client.get_mut(&id).map(|e| &mut e.tx) {
                        Some(ClientTx::Invite(tx))
                            if tx.poll_timeout().is_some_and(|t| t <= now) =>
                        {
                            tx.handle_timeout(now)
                        }
                        Some(ClientTx::NonInvite(tx))
                            if tx.poll_timeout().is_some_and(|t| t <= now) =>
                        {
                            tx.handle_timeout(now)
                        }
                        _ => continue,
                    };
                    match act {
                        TxAction::Retransmit(b) => {
                            self.stats.retransmissions_sent += 1;
                            if let Some(e) = self.client.get(&id) {
                                let flow = e.flow;
                                self.send(flow, b);
                            }
                            self.arm_client(id);
                        }
                        TxAction::TimedOut => self.client_timeout(id, now),
                        TxAction::Terminated => {
                            if let Some(e) = self.client.remove(&id) {
                                self.client_by_branch.remove(&e.branch);
                            }
                        }
                        TxAction::None => self.arm_client(id),
                    }
                }
                TimerRef::Call(call) => self.call_timer(call, now),
            }
        }
    }

    fn server_timer(&mut self, id: u64, now: Instant) {
        let act = match self.server.get_mut(&id) {
            Some(ServerTx::Invite { tx, .. }) if tx.poll_timeout().is_some_and(|t| t <= now) => {
                tx.handle_timeout(now)
            }
            Some(ServerTx::NonInvite { tx, .. }) if tx.poll_timeout().is_some_and(|t| t <= now) => {
                tx.handle_timeout(now)
            }
            _ => return,
        };
        match act {
            TxAction::Retransmit(b) => {
                self.stats.retransmissions_sent += 1;
                if let Some(ServerTx::Invite { flow, .. }) = self.server.get(&id) {
                    let flow = *flow;
                    self.send(flow, b);
                }
                self.arm_server(id);
            }
            TxAction::None => self.arm_server(id),
            TxAction::TimedOut | TxAction::Terminated => {
                let Some(entry) = self.server.remove(&id) else {
                    return;
                };
                match entry {
                    ServerTx::Invite { key, call, tx, .. } => {
                        self.table.remove(&key);
                        let no_ack =
                            act == TxAction::TimedOut && tx.final_status().is_some_and(|s| s < 300);
                        if let (Some(call), true) = (call, no_ack) {
                            // Timer H on our 2xx: the trunk never confirmed; end with BYE.
                            if self
                                .calls
                                .get(&call)
                                .is_some_and(|c| c.dialog.state == DialogState::Early)
                            {
                                let _ = self.send_in_dialog(call, "BYE", None, &[], None, now);
                                self.end(call, EndReason::AckTimeout);
                            }
                        }
                    }
                    ServerTx::NonInvite { key, .. } => {
                        self.table.remove(&key);
                    }
                }
            }
        }
    }

    /// Live transactions (server, client), for tests and metrics.
    pub fn transaction_counts(&self) -> (usize, usize) {
        (self.server.len(), self.client.len())
    }
}

/// The ACK for a failure response to our re-INVITE (§17.1.1.3): same branch and CSeq
/// number, the response's To.
fn failure_ack(d: &Dialog, branch: &str, cseq: u32, to: &str) -> Bytes {
    let s = format!(
        "ACK {} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={branch};rport\r\nMax-Forwards: 70\r\nFrom: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
        d.remote_target,
        d.flow.transport.token(),
        crate::sip::dialog::host_port(d.local_addr),
        d.local_uri,
        d.local_tag,
        if to.is_empty() { d.remote_uri.as_str() } else { to },
        d.call_id,
    );
    Bytes::from(s)
}

/// Where responses to `req` go (RFC 3261 §18.2.2, RFC 3581 §4): over a stream, back on
/// the connection; over UDP, to the source address when `rport` was asked for, else to
/// the source IP (the `received` address) at the sent-by port (5060 by default).
pub fn response_flow(req: &RequestView, flow: Flow) -> Flow {
    if flow.transport != Transport::Udp || req.top_via.rport {
        return flow;
    }
    let port = req.top_via.port.unwrap_or(5060);
    Flow {
        remote: SocketAddr::new(flow.remote.ip(), port),
        ..flow
    }
}
