//! Fuzz entry point for the UA core (`fuzz/fuzz_targets/sip_ua.rs`): messages split on
//! `\0\0`, each parsed, checked and fed to one [`SipCore`] in virtual time, incoming
//! calls answered, every timer fired. Nothing may panic.
#![doc(hidden)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{
    CallEvent, CoreConfig, Flow, LocalAddrs, RequestView, ResponseView, SipCore, Transport,
};
use crate::settings::{IntegrationSettings, SipCredentials};
use crate::sip::{check_request, check_response, SipMessage, UasPolicy};

/// Runs the messages in `data` through a UA core.
pub fn sip_ua(data: &[u8]) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 5060));
    let mut settings = IntegrationSettings::default();
    // The first byte picks a configuration so admission paths are reached.
    let flags = data.first().copied().unwrap_or(0);
    settings.disable_ringing = flags & 1 != 0;
    settings.force_secure_trunking = flags & 2 != 0;
    if flags & 4 != 0 {
        settings.sip_auth = Some(SipCredentials {
            username: "u".into(),
            password: "p".into(),
        });
    }
    settings.invite_headers_to_extract = vec!["X-Account".into()];
    let numbers: HashSet<String> = ["+19585550123".to_owned()].into_iter().collect();
    let mut core = SipCore::new(CoreConfig::new(
        LocalAddrs {
            udp: addr,
            tcp: addr,
            tls: addr,
        },
        settings,
        numbers,
    ));
    let transport = if flags & 8 != 0 {
        Transport::Tls
    } else {
        Transport::Udp
    };
    let flow = Flow {
        transport,
        remote: std::net::SocketAddr::from(([127, 0, 0, 1], 5070)),
        conn: Some(1),
    };
    let t0 = Instant::now();
    let mut now = t0;
    let body = data.get(1..).unwrap_or_default();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 0..body.len().saturating_sub(1) {
        if body[i] == 0 && body[i + 1] == 0 && i >= start {
            parts.push(&body[start..i]);
            start = i + 2;
        }
    }
    parts.push(&body[start.min(body.len())..]);
    for part in parts.into_iter().take(16) {
        now += Duration::from_millis(u64::from(part.len() as u8) * 40);
        match crate::sip::parse(Bytes::copy_from_slice(part)) {
            Ok(SipMessage::Request(r)) if check_request(&r, &UasPolicy::GATEWAY).is_ok() => {
                if let Ok(v) = RequestView::from_request(&r) {
                    core.handle_request(v, flow, now);
                }
            }
            Ok(SipMessage::Response(r)) if check_response(&r).is_ok() => {
                if let Ok(v) = ResponseView::from_response(&r) {
                    core.handle_response(v, now);
                }
            }
            _ => {}
        }
        for _ in 0..64 {
            let Some(e) = core.poll_event() else { break };
            if let CallEvent::Incoming(i) = e {
                let _ = core.answer(
                    i.call,
                    std::net::SocketAddr::from(([127, 0, 0, 1], 20000)),
                    now,
                );
            }
        }
        while core.poll_transmit().is_some() {}
        for _ in 0..256 {
            match core.poll_timeout() {
                Some(t) if t <= now => core.handle_timeout(t),
                _ => break,
            }
        }
    }
    // Let every timer run out.
    for _ in 0..10_000 {
        let Some(t) = core.poll_timeout() else { break };
        core.handle_timeout(t);
        while core.poll_transmit().is_some() {}
        while core.poll_event().is_some() {}
    }
}
