//! RFC 3264 offer/answer for the gateway's single audio stream: G.711 (PCMU, PCMA),
//! telephone-event (RFC 4733), Opus behind a flag, ptime, rtcp-mux, direction,
//! RTP/AVP vs RTP/SAVP with SDES `a=crypto` lines carried as strings.

use std::net::{IpAddr, SocketAddr};

use super::{Attribute, Connection, Direction, MediaDescription, Origin, SessionDescription};

/// An audio codec the gateway can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 µ-law, static PT 0.
    Pcmu,
    /// G.711 A-law, static PT 8.
    Pcma,
    /// Opus `opus/48000/2` (RFC 7587), dynamic PT.
    Opus,
}

impl Codec {
    /// rtpmap encoding name.
    pub fn encoding(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
        }
    }
    /// RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48000,
        }
    }
    fn channels(self) -> u8 {
        match self {
            Codec::Opus => 2,
            _ => 1,
        }
    }
    fn static_pt(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::Opus => None,
        }
    }
    fn rtpmap_value(self, pt: u8) -> String {
        match self {
            Codec::Opus => format!("{pt} opus/48000/2"),
            c => format!("{pt} {}/{}", c.encoding(), c.clock_rate()),
        }
    }
}

/// What we can do, for one negotiation.
#[derive(Debug, Clone, Copy)]
pub struct LocalCapabilities<'a> {
    /// Codecs in our preference order.
    pub codecs: &'a [Codec],
    /// Offer/accept RFC 4733 telephone-event.
    pub telephone_event: bool,
    /// Accept (and offer) Opus.
    pub allow_opus: bool,
    /// PCM rate of our speech side: our Opus `maxplaybackrate` / `sprop-maxcapturerate`.
    pub opus_rate: u32,
    /// Our RTP address.
    pub address: IpAddr,
    /// Our RTP port.
    pub port: u16,
    /// Refuse RTP/AVP (force secure trunking).
    pub require_srtp: bool,
    /// Value of our `a=crypto` line (without `crypto:`), chosen by the SRTP layer to
    /// match one of the offer's; required to accept RTP/SAVP.
    pub crypto: Option<&'a str>,
    /// Packet time when the offer has none.
    pub ptime: u32,
    /// Direction we want at most (`SendRecv` normally; `SendOnly` to hold).
    pub direction: Direction,
    /// `o=` session id.
    pub session_id: u64,
    /// `o=` session version (bump on every new offer/answer).
    pub session_version: u64,
}

/// The media parameters both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the audio m-line used.
    pub media_index: usize,
    /// Codec.
    pub codec: Codec,
    /// Its payload type (the offerer's numbering).
    pub payload_type: u8,
    /// telephone-event payload type, if both support it.
    pub telephone_event: Option<u8>,
    /// Packet time (ms).
    pub ptime: u32,
    /// RTP and RTCP on one port.
    pub rtcp_mux: bool,
    /// Our direction.
    pub direction: Direction,
    /// Where to send RTP (`None` for port 0 or the 0.0.0.0 hold address).
    pub remote: Option<SocketAddr>,
    /// SRTP (RTP/SAVP) in use.
    pub srtp: bool,
    /// The offer's `a=crypto` values, for the SRTP layer.
    pub remote_crypto: Vec<String>,
    /// The peer's Opus parameters, when Opus was chosen.
    pub opus: Option<super::OpusFmtp>,
}

/// Why an offer cannot be answered: all map to 488 Not Acceptable Here with a Warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// No audio stream with a non-zero port.
    #[error("no audio stream offered")]
    NoAudio,
    /// No offered codec is one of ours.
    #[error("no common audio codec")]
    NoCommonCodec,
    /// Plain RTP offered where SRTP is required.
    #[error("SRTP required, offer is RTP/AVP")]
    SrtpRequired,
    /// RTP/SAVP without usable `a=crypto`.
    #[error("RTP/SAVP offer without a usable crypto attribute")]
    NoCrypto,
    /// A transport profile we do not run (DTLS-SRTP, AVPF...).
    #[error("unsupported transport profile {0}")]
    Transport(String),
    /// No usable connection address.
    #[error("no usable connection address")]
    Connection,
}

impl NegotiationError {
    /// The SIP status to answer with.
    pub fn status(&self) -> u16 {
        488
    }

    /// A Warning header value (RFC 3261 §20.43 codes) naming `agent`.
    pub fn warning(&self, agent: &str) -> String {
        let code = match self {
            NegotiationError::NoAudio => 304,
            NegotiationError::NoCommonCodec => 305,
            NegotiationError::SrtpRequired
            | NegotiationError::NoCrypto
            | NegotiationError::Transport(_) => 302,
            NegotiationError::Connection => 301,
        };
        format!("{code} {agent} \"{self}\"")
    }
}

fn is_avp(p: &str) -> bool {
    p.eq_ignore_ascii_case("RTP/AVP")
}
fn is_savp(p: &str) -> bool {
    p.eq_ignore_ascii_case("RTP/SAVP")
}

fn find_codec(m: &MediaDescription, c: Codec) -> Option<u8> {
    m.payload_types().find(|&pt| match m.rtpmap(pt) {
        Some(r) => {
            r.encoding.eq_ignore_ascii_case(c.encoding())
                && r.clock_rate == c.clock_rate()
                && (c != Codec::Opus || r.channels == c.channels())
        }
        None => c.static_pt() == Some(pt),
    })
}

fn try_stream(
    offer: &SessionDescription,
    i: usize,
    caps: &LocalCapabilities<'_>,
) -> Result<Negotiated, NegotiationError> {
    let m = &offer.media[i];
    let srtp = if is_savp(&m.proto) {
        true
    } else if is_avp(&m.proto) {
        false
    } else {
        return Err(NegotiationError::Transport(m.proto.clone()));
    };
    if caps.require_srtp && !srtp {
        return Err(NegotiationError::SrtpRequired);
    }
    let remote_crypto: Vec<String> = m.crypto().map(str::to_owned).collect();
    if srtp && (remote_crypto.is_empty() || caps.crypto.is_none()) {
        return Err(NegotiationError::NoCrypto);
    }
    let (codec, payload_type) = caps
        .codecs
        .iter()
        .filter(|c| **c != Codec::Opus || caps.allow_opus)
        .find_map(|&c| find_codec(m, c).map(|pt| (c, pt)))
        .ok_or(NegotiationError::NoCommonCodec)?;
    let telephone_event = if caps.telephone_event {
        m.payload_types().find(|&pt| {
            m.rtpmap(pt).is_some_and(|r| {
                r.encoding.eq_ignore_ascii_case("telephone-event")
                    && r.clock_rate == codec.clock_rate()
            })
        })
    } else {
        None
    };
    let conn = offer
        .connection_for(i)
        .ok_or(NegotiationError::Connection)?;
    let ip = conn.ip();
    if ip.is_none() && conn.address.parse::<IpAddr>().is_err() && !conn.address.contains('.') {
        return Err(NegotiationError::Connection);
    }
    let remote = ip
        .filter(|ip| !ip.is_unspecified() && m.port != 0)
        .map(|ip| SocketAddr::new(ip, m.port));
    let mut offered = offer.direction(i);
    if ip.is_some_and(|ip| ip.is_unspecified()) && offered == Direction::SendRecv {
        // RFC 2543 hold (c=0.0.0.0): treat as sendonly.
        offered = Direction::SendOnly;
    }
    let ptime = match m.ptime() {
        Some(p) if (10..=120).contains(&p) && p % 10 == 0 => p,
        _ => caps.ptime,
    };
    let opus =
        (codec == Codec::Opus).then(|| super::OpusFmtp::parse(m.fmtp(payload_type).unwrap_or("")));
    Ok(Negotiated {
        opus,
        media_index: i,
        codec,
        payload_type,
        telephone_event,
        ptime,
        rtcp_mux: m.rtcp_mux(),
        direction: offered.answer_to(caps.direction),
        remote,
        srtp,
        remote_crypto,
    })
}

fn base(caps: &LocalCapabilities<'_>) -> SessionDescription {
    SessionDescription {
        origin: Origin {
            username: "voxgate".into(),
            session_id: caps.session_id.to_string(),
            session_version: caps.session_version,
            connection: Connection::from_ip(caps.address),
        },
        session_name: "voxgate".into(),
        connection: Some(Connection::from_ip(caps.address)),
        timing: vec!["0 0".into()],
        lines: Vec::new(),
        attributes: Vec::new(),
        media: Vec::new(),
    }
}

fn audio_section(
    caps: &LocalCapabilities<'_>,
    proto: &str,
    codecs: &[(Codec, u8)],
    te: &[(u8, u32)],
    ptime: u32,
    rtcp_mux: bool,
    direction: Direction,
) -> MediaDescription {
    let mut formats: Vec<String> = codecs.iter().map(|(_, pt)| pt.to_string()).collect();
    let mut attributes = Vec::new();
    for (c, pt) in codecs {
        attributes.push(Attribute::new("rtpmap", c.rtpmap_value(*pt)));
        if *c == Codec::Opus {
            attributes.push(Attribute::new(
                "fmtp",
                format!(
                    "{pt} {}",
                    super::OpusFmtp::ours(caps.opus_rate).to_param_string()
                ),
            ));
        }
    }
    for &(pt, rate) in te {
        formats.push(pt.to_string());
        attributes.push(Attribute::new(
            "rtpmap",
            format!("{pt} telephone-event/{rate}"),
        ));
        attributes.push(Attribute::new("fmtp", format!("{pt} 0-16")));
    }
    attributes.push(Attribute::new("ptime", ptime.to_string()));
    if rtcp_mux {
        attributes.push(Attribute::flag("rtcp-mux"));
    }
    if let (true, Some(c)) = (proto == "RTP/SAVP", caps.crypto) {
        attributes.push(Attribute::new("crypto", c));
    }
    attributes.push(Attribute::flag(direction.as_str()));
    MediaDescription {
        media: "audio".into(),
        port: caps.port,
        port_count: None,
        proto: proto.into(),
        formats,
        connection: None,
        lines: Vec::new(),
        attributes,
    }
}

/// Answers `offer` (RFC 3264 §6): the first acceptable audio stream is accepted with
/// one codec (ours by preference among the offered) plus telephone-event; every other
/// m-line is rejected with port 0. Direction follows §6.1 (sendonly → recvonly,
/// recvonly → sendonly, inactive → inactive).
pub fn answer(
    offer: &SessionDescription,
    caps: &LocalCapabilities<'_>,
) -> Result<(SessionDescription, Negotiated), NegotiationError> {
    let mut first_err = None;
    let mut chosen = None;
    for (i, m) in offer.media.iter().enumerate() {
        if m.media != "audio" || m.port == 0 {
            continue;
        }
        match try_stream(offer, i, caps) {
            Ok(n) => {
                chosen = Some(n);
                break;
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let neg = match chosen {
        Some(n) => n,
        None => return Err(first_err.unwrap_or(NegotiationError::NoAudio)),
    };
    let mut sd = base(caps);
    for (i, m) in offer.media.iter().enumerate() {
        if i == neg.media_index {
            let te: Vec<(u8, u32)> = neg
                .telephone_event
                .map(|pt| (pt, neg.codec.clock_rate()))
                .into_iter()
                .collect();
            sd.media.push(audio_section(
                caps,
                &m.proto,
                &[(neg.codec, neg.payload_type)],
                &te,
                neg.ptime,
                neg.rtcp_mux,
                neg.direction,
            ));
        } else {
            sd.media.push(MediaDescription {
                media: m.media.clone(),
                port: 0,
                port_count: None,
                proto: m.proto.clone(),
                formats: m.formats.iter().take(1).cloned().collect(),
                connection: None,
                lines: Vec::new(),
                attributes: Vec::new(),
            });
        }
    }
    Ok((sd, neg))
}

/// An offer from us (initial or re-INVITE, e.g. `SendOnly` to hold before a transfer):
/// our codecs in preference order (static PTs, Opus on 111 when allowed),
/// telephone-event on 101 (8 kHz) and, with Opus, on 110 (48 kHz: RFC 4733 events use
/// the audio codec's clock), RTP/SAVP when `caps.crypto` is set.
pub fn offer(caps: &LocalCapabilities<'_>) -> SessionDescription {
    let codecs: Vec<(Codec, u8)> = caps
        .codecs
        .iter()
        .filter(|c| **c != Codec::Opus || caps.allow_opus)
        .map(|&c| (c, c.static_pt().unwrap_or(111)))
        .collect();
    let proto = if caps.crypto.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let mut te = Vec::new();
    if caps.telephone_event {
        if codecs.iter().any(|(c, _)| c.clock_rate() == 8000) {
            te.push((101, 8000));
        }
        if codecs.iter().any(|(c, _)| *c == Codec::Opus) {
            te.push((110, 48000));
        }
    }
    let mut sd = base(caps);
    sd.media.push(audio_section(
        caps,
        proto,
        &codecs,
        &te,
        caps.ptime,
        true,
        caps.direction,
    ));
    sd
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
