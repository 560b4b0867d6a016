//! The caller's SIP leg: a small UAC over UDP that places one call and plays the trunk's
//! part in it — it answers the gateway's hold re-INVITE, accepts (or refuses) its REFER
//! and reports the transfer with NOTIFY, and answers BYE, INFO and OPTIONS.
//!
//! It is a test tool, not the gateway's UA: one dialog, UDP only, Timer A/B style
//! retransmission of its own requests, no forking.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::net::UdpSocket;
use tokio::time::{timeout_at, Instant};

use crate::sip::sdp::answer::{self as sdp_oa, Codec, LocalCapabilities, Negotiated};
use crate::sip::sdp::{Direction, SessionDescription};
use crate::sip::{self, HeaderName, MessageWriter, Method, Request, Response, SipMessage};

/// RFC 3261 T1.
const T1: Duration = Duration::from_millis(500);

/// What the trunk does with the gateway's REFER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferBehaviour {
    /// 202 Accepted, NOTIFY 100 Trying, NOTIFY 200 OK.
    Accept,
    /// 202 Accepted, then NOTIFY with this final failure status.
    FailWith(u16),
    /// Refuse the REFER with this status.
    Refuse(u16),
}

/// A fault of the caller's SIP leg.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LegError {
    /// Socket error.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// No final response to the INVITE in time.
    #[error("no answer to the INVITE within {0:?}")]
    NoAnswer(Duration),
    /// The INVITE was refused.
    #[error("call refused: {0} {1}")]
    Refused(u16, String),
    /// The answer's SDP could not be used.
    #[error("unusable SDP answer: {0}")]
    BadAnswer(String),
}

/// Something the gateway did in the dialog.
#[derive(Debug, Clone, PartialEq)]
pub enum LegEvent {
    /// A re-INVITE changed the media direction (hold or resume).
    Direction(Direction),
    /// The gateway asked for a transfer to this URI (after our reply per the behaviour).
    Refer {
        /// Refer-To value.
        target: String,
        /// Extra headers of the REFER (name, value), as received.
        headers: Vec<(String, String)>,
    },
    /// DTMF or other INFO body.
    Info(String),
    /// The gateway hung up.
    Bye,
}

/// Options of the caller's leg.
#[derive(Debug, Clone)]
pub struct LegOptions {
    /// Gateway address.
    pub gateway: SocketAddr,
    /// Request-URI, e.g. `sip:+19585550123@127.0.0.1:5060`.
    pub request_uri: String,
    /// Caller's number for the From header.
    pub caller_number: String,
    /// Local IP to bind.
    pub local_ip: IpAddr,
    /// Codecs to offer.
    pub codecs: Vec<Codec>,
    /// SDES crypto attribute to offer (RTP/SAVP), if any.
    pub crypto: Option<String>,
    /// Extra INVITE headers.
    pub headers: Vec<(String, String)>,
    /// What to do with a REFER.
    pub transfer: TransferBehaviour,
    /// How long to wait for the INVITE's final response.
    pub answer_timeout: Duration,
}

impl LegOptions {
    /// A plain call from `caller_number` to `number` at the gateway over loopback: PCMU,
    /// no SRTP, no extra headers, REFERs accepted, 10 s for the final response.
    pub fn plain(gateway: SocketAddr, number: &str, caller_number: &str) -> LegOptions {
        LegOptions {
            gateway,
            request_uri: format!("sip:{number}@{gateway}"),
            caller_number: caller_number.to_owned(),
            local_ip: IpAddr::from([127, 0, 0, 1]),
            codecs: vec![Codec::Pcmu],
            crypto: None,
            headers: Vec::new(),
            transfer: TransferBehaviour::Accept,
            answer_timeout: Duration::from_secs(10),
        }
    }
}

/// An established call leg.
#[derive(Debug)]
pub struct CallLeg {
    sock: UdpSocket,
    local: SocketAddr,
    gateway: SocketAddr,
    call_id: String,
    from_tag: String,
    from: String,
    to: String,
    remote_target: String,
    cseq: u32,
    rtp_port: u16,
    transfer: TransferBehaviour,
    /// What the answer agreed.
    pub negotiated: Negotiated,
    /// The SIP status of the final response (200).
    pub status: u16,
}

fn branch() -> String {
    format!("z9hG4bK{:016x}", rand::rng().random::<u64>())
}

fn token() -> String {
    format!("{:012x}", rand::rng().random::<u64>() & 0xffff_ffff_ffff)
}

impl CallLeg {
    /// Sends the INVITE with an SDP offer for `rtp_port`, waits for the final response,
    /// and ACKs it. Provisional responses are reported through `progress`.
    pub async fn invite(
        opts: &LegOptions,
        rtp_port: u16,
        mut progress: impl FnMut(u16),
    ) -> Result<CallLeg, LegError> {
        let sock = UdpSocket::bind(SocketAddr::new(opts.local_ip, 0)).await?;
        let local = sock.local_addr()?;
        let call_id = format!("{}@voxgate-caller", token());
        let from_tag = token();
        let from = format!(
            "\"voxgate caller\" <sip:{}@{}>;tag={from_tag}",
            opts.caller_number, local
        );
        let to = format!("<{}>", opts.request_uri);
        let caps = LocalCapabilities {
            codecs: &opts.codecs,
            telephone_event: true,
            allow_opus: opts.codecs.contains(&Codec::Opus),
            opus_rate: 8000,
            address: opts.local_ip,
            port: rtp_port,
            require_srtp: opts.crypto.is_some(),
            crypto: opts.crypto.as_deref(),
            ptime: 20,
            direction: Direction::SendRecv,
            session_id: u64::from(rand::rng().random::<u32>()),
            session_version: 1,
        };
        let sdp = sdp_oa::offer(&caps).to_string();
        let via_branch = branch();
        let mut buf = Vec::with_capacity(2048);
        {
            let mut w = MessageWriter::request(&mut buf, &Method::Invite, &opts.request_uri);
            w.header(
                "Via",
                format!("SIP/2.0/UDP {local};branch={via_branch};rport"),
            )
            .header("Max-Forwards", 70)
            .header("From", &from)
            .header("To", &to)
            .header("Call-ID", &call_id)
            .header("CSeq", "1 INVITE")
            .header("Contact", format!("<sip:caller@{local}>"))
            .header(
                "Allow",
                "INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY, INFO",
            )
            .header("User-Agent", "voxgate-caller");
            for (n, v) in &opts.headers {
                w.header(n, v);
            }
            let _ = w.finish(Some(("application/sdp", sdp.as_bytes())));
        }
        let deadline = Instant::now() + opts.answer_timeout;
        let mut interval = T1;
        let mut next_send = Instant::now();
        let mut provisional = false;
        let mut rbuf = vec![0u8; 65_536];
        loop {
            if !provisional && Instant::now() >= next_send {
                sock.send_to(&buf, opts.gateway).await?;
                next_send = Instant::now() + interval;
                interval = (interval * 2).min(Duration::from_secs(4));
            }
            let wake = if provisional {
                deadline
            } else {
                next_send.min(deadline)
            };
            let recv = timeout_at(wake, sock.recv_from(&mut rbuf)).await;
            let (n, _) = match recv {
                Ok(r) => r?,
                Err(_) if Instant::now() >= deadline => {
                    return Err(LegError::NoAnswer(opts.answer_timeout))
                }
                Err(_) => continue,
            };
            let Ok(SipMessage::Response(resp)) = sip::parse(Bytes::copy_from_slice(&rbuf[..n]))
            else {
                continue;
            };
            if resp.headers.call_id().ok() != Some(call_id.as_str()) {
                continue;
            }
            let status = resp.status;
            if status < 200 {
                provisional = true;
                progress(status);
                continue;
            }
            let to_hdr = resp.headers.get(HeaderName::To).unwrap_or(&to).to_owned();
            if status >= 300 {
                // ACK for a non-2xx final response reuses the INVITE's branch.
                let ack = simple_request(
                    Method::Ack,
                    &opts.request_uri,
                    local,
                    &via_branch,
                    &from,
                    &to_hdr,
                    &call_id,
                    1,
                );
                sock.send_to(&ack, opts.gateway).await?;
                return Err(LegError::Refused(status, resp.reason().to_string()));
            }
            let remote_target = resp
                .headers
                .contacts()
                .ok()
                .and_then(|c| c.first().map(|c| c.uri.to_string()))
                .unwrap_or_else(|| opts.request_uri.clone());
            let negotiated = negotiated_from_answer(&resp, opts)?;
            let mut leg = CallLeg {
                sock,
                local,
                gateway: opts.gateway,
                call_id,
                from_tag,
                from,
                to: to_hdr,
                remote_target,
                cseq: 1,
                rtp_port,
                transfer: opts.transfer,
                negotiated,
                status,
            };
            leg.send_ack().await?;
            return Ok(leg);
        }
    }

    async fn send_ack(&mut self) -> Result<(), LegError> {
        let ack = simple_request(
            Method::Ack,
            &self.remote_target,
            self.local,
            &branch(),
            &self.from,
            &self.to,
            &self.call_id,
            1,
        );
        self.sock.send_to(&ack, self.gateway).await?;
        Ok(())
    }

    /// The Call-ID of the dialog.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Waits for the next in-dialog request from the gateway until `deadline`, answers
    /// it, and reports what it meant. `None` when the deadline passed.
    pub async fn next_event(&mut self, deadline: Instant) -> Result<Option<LegEvent>, LegError> {
        let mut rbuf = vec![0u8; 65_536];
        loop {
            let (n, from) = match timeout_at(deadline, self.sock.recv_from(&mut rbuf)).await {
                Ok(r) => r?,
                Err(_) => return Ok(None),
            };
            let msg = match sip::parse(Bytes::copy_from_slice(&rbuf[..n])) {
                Ok(m) => m,
                Err(_) => continue,
            };
            match msg {
                SipMessage::Response(resp) => {
                    // A retransmitted 200 to our INVITE: ACK again.
                    if resp.status == 200
                        && resp
                            .headers
                            .cseq()
                            .map(|c| c.method == Method::Invite)
                            .unwrap_or(false)
                    {
                        self.send_ack().await?;
                    }
                }
                SipMessage::Request(req) => {
                    if let Some(ev) = self.on_request(&req, from).await? {
                        return Ok(Some(ev));
                    }
                }
            }
        }
    }

    async fn on_request(
        &mut self,
        req: &Request,
        from: SocketAddr,
    ) -> Result<Option<LegEvent>, LegError> {
        let mut out = Vec::with_capacity(1024);
        match &req.method {
            Method::Ack => return Ok(None),
            Method::Invite => {
                let offer = (!req.body.is_empty())
                    .then(|| SessionDescription::parse(&req.body))
                    .transpose()
                    .map_err(|e| LegError::BadAnswer(e.to_string()))?;
                let Some(offer) = offer else {
                    self.respond(req, 488, None, from).await?;
                    return Ok(None);
                };
                let caps = LocalCapabilities {
                    codecs: &[self.negotiated.codec],
                    telephone_event: true,
                    allow_opus: self.negotiated.codec == Codec::Opus,
                    opus_rate: 8000,
                    address: self.local.ip(),
                    port: self.rtp_port,
                    require_srtp: self.negotiated.srtp,
                    crypto: None,
                    ptime: 20,
                    direction: Direction::SendRecv,
                    session_id: 1,
                    session_version: 2,
                };
                let dir = offer.media.first().map(|_| offer.direction(0));
                match sdp_oa::answer(&offer, &caps) {
                    Ok((sd, _)) => {
                        let body = sd.to_string();
                        let mut w = MessageWriter::response_to(
                            &mut out,
                            req,
                            200,
                            None,
                            Some(&self.from_tag),
                        );
                        w.header("Contact", format!("<sip:caller@{}>", self.local));
                        let _ = w.finish(Some(("application/sdp", body.as_bytes())));
                        self.sock.send_to(&out, from).await?;
                    }
                    Err(_) => self.respond(req, 488, None, from).await?,
                }
                return Ok(dir.map(LegEvent::Direction));
            }
            Method::Bye => {
                self.respond(req, 200, None, from).await?;
                return Ok(Some(LegEvent::Bye));
            }
            Method::Info => {
                self.respond(req, 200, None, from).await?;
                let body = String::from_utf8_lossy(&req.body).into_owned();
                return Ok(Some(LegEvent::Info(body)));
            }
            Method::Refer => {
                let target = req
                    .headers
                    .refer_to()
                    .map(|r| r.uri.to_string())
                    .unwrap_or_default();
                let headers = req
                    .headers
                    .iter()
                    .filter(|(n, _)| n.len() > 2 && n[..2].eq_ignore_ascii_case("x-"))
                    .map(|(n, v)| (n.to_owned(), v.to_owned()))
                    .collect();
                match self.transfer {
                    TransferBehaviour::Refuse(status) => {
                        self.respond(req, status, None, from).await?;
                    }
                    TransferBehaviour::Accept | TransferBehaviour::FailWith(_) => {
                        self.respond(req, 202, None, from).await?;
                        self.notify("SIP/2.0 100 Trying", false).await?;
                        let last = match self.transfer {
                            TransferBehaviour::FailWith(s) => {
                                format!("SIP/2.0 {s} {}", sip::reason_phrase(s))
                            }
                            _ => "SIP/2.0 200 OK".to_owned(),
                        };
                        self.notify(&last, true).await?;
                    }
                }
                return Ok(Some(LegEvent::Refer { target, headers }));
            }
            Method::Options | Method::Notify | Method::Update => {
                self.respond(req, 200, None, from).await?;
            }
            _ => self.respond(req, 501, None, from).await?,
        }
        Ok(None)
    }

    async fn respond(
        &mut self,
        req: &Request,
        status: u16,
        reason: Option<&str>,
        to: SocketAddr,
    ) -> Result<(), LegError> {
        let mut out = Vec::with_capacity(512);
        let _ = MessageWriter::response_to(&mut out, req, status, reason, Some(&self.from_tag))
            .finish(None);
        self.sock.send_to(&out, to).await?;
        Ok(())
    }

    async fn notify(&mut self, sipfrag: &str, last: bool) -> Result<(), LegError> {
        self.cseq += 1;
        let state = if last {
            "terminated;reason=noresource"
        } else {
            "active;expires=60"
        };
        let mut out = Vec::with_capacity(1024);
        {
            let mut w = MessageWriter::request(&mut out, &Method::Notify, &self.remote_target);
            w.header(
                "Via",
                format!("SIP/2.0/UDP {};branch={};rport", self.local, branch()),
            )
            .header("Max-Forwards", 70)
            .header("From", &self.from)
            .header("To", &self.to)
            .header("Call-ID", &self.call_id)
            .header("CSeq", format!("{} NOTIFY", self.cseq))
            .header("Contact", format!("<sip:caller@{}>", self.local))
            .header("Event", "refer")
            .header("Subscription-State", state);
            let _ = w.finish(Some((
                "message/sipfrag;version=2.0",
                format!("{sipfrag}\r\n").as_bytes(),
            )));
        }
        self.send_request_reliably(&out).await
    }

    /// Sends BYE and waits (bounded) for its response.
    pub async fn hang_up(&mut self) -> Result<(), LegError> {
        self.cseq += 1;
        let bye = simple_request(
            Method::Bye,
            &self.remote_target,
            self.local,
            &branch(),
            &self.from,
            &self.to,
            &self.call_id,
            self.cseq,
        );
        self.send_request_reliably(&bye).await
    }

    /// Sends a request and retransmits it (T1 doubling) until any final response, at most
    /// 8 s; requests from the gateway that arrive meanwhile are answered.
    async fn send_request_reliably(&mut self, msg: &[u8]) -> Result<(), LegError> {
        let cseq = self.cseq;
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut interval = T1;
        let mut rbuf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            self.sock.send_to(msg, self.gateway).await?;
            let wake = (Instant::now() + interval).min(deadline);
            interval = (interval * 2).min(Duration::from_secs(4));
            loop {
                let (n, from) = match timeout_at(wake, self.sock.recv_from(&mut rbuf)).await {
                    Ok(r) => r?,
                    Err(_) => break,
                };
                match sip::parse(Bytes::copy_from_slice(&rbuf[..n])) {
                    Ok(SipMessage::Response(r)) => {
                        if final_for(&r, cseq) {
                            return Ok(());
                        }
                    }
                    Ok(SipMessage::Request(req)) => {
                        // Keep the dialog answering (e.g. a BYE crossing our NOTIFY).
                        let _ = Box::pin(self.on_request(&req, from)).await?;
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(())
    }
}

fn final_for(r: &Response, cseq: u32) -> bool {
    r.status >= 200 && r.headers.cseq().map(|c| c.seq == cseq).unwrap_or(false)
}

#[allow(clippy::too_many_arguments)]
fn simple_request(
    method: Method,
    uri: &str,
    local: SocketAddr,
    branch: &str,
    from: &str,
    to: &str,
    call_id: &str,
    cseq: u32,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    let m = method.as_str().to_owned();
    let mut w = MessageWriter::request(&mut out, &method, uri);
    w.header("Via", format!("SIP/2.0/UDP {local};branch={branch};rport"))
        .header("Max-Forwards", 70)
        .header("From", from)
        .header("To", to)
        .header("Call-ID", call_id)
        .header("CSeq", format!("{cseq} {m}"));
    let _ = w.finish(None);
    out
}

fn negotiated_from_answer(resp: &Response, opts: &LegOptions) -> Result<Negotiated, LegError> {
    if resp.body.is_empty() {
        return Err(LegError::BadAnswer("no SDP".into()));
    }
    let sd =
        SessionDescription::parse(&resp.body).map_err(|e| LegError::BadAnswer(e.to_string()))?;
    // Treat the answer as an offer to our own capabilities: that yields the agreed codec,
    // payload types, remote address and crypto in one place.
    let caps = LocalCapabilities {
        codecs: &opts.codecs,
        telephone_event: true,
        allow_opus: opts.codecs.contains(&Codec::Opus),
        opus_rate: 8000,
        address: opts.local_ip,
        port: 9,
        require_srtp: opts.crypto.is_some(),
        crypto: opts.crypto.as_deref(),
        ptime: 20,
        direction: Direction::SendRecv,
        session_id: 1,
        session_version: 1,
    };
    sdp_oa::answer(&sd, &caps)
        .map(|(_, n)| n)
        .map_err(|e| LegError::BadAnswer(e.to_string()))
}
