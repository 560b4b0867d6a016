//! Requests inside a dialog (BYE, re-INVITE, UPDATE, INFO, OPTIONS, NOTIFY), the
//! per-call commands (hang up, hold, REFER, INFO) and their responses.

use std::time::Instant;

use super::build::{ALLOW, SUPPORTED};
use super::core::{CallError, ServerTx, SipCore};
use super::events::{CallEvent, EndReason};
use super::media::SdpReject;
use super::sdp_glue;
use super::view::{RequestView, ResponseView};
use crate::sip::dialog::refer::{outcome_of, sipfrag_status};
use crate::sip::dialog::session_timer::{read_session_expires, SessionExpires};
use crate::sip::dialog::{
    CallRef, DialogState, Direction, ReferError, ReferRequest, SessionTimer, TransferOutcome,
};
use crate::sip::{HeaderName, NameAddr, Scheme};

/// Which request a client transaction carried (kept with it in the core).
pub(super) use super::core::ClientKindPub as ClientKind;

impl SipCore {
    pub(super) fn handle_in_dialog(
        &mut self,
        id: u64,
        call: CallRef,
        req: RequestView,
        now: Instant,
    ) {
        let tag = match self.calls.get_mut(&call) {
            Some(c) => {
                if !c.dialog.accept_remote_cseq(req.cseq) {
                    let t = c.dialog.local_tag.clone();
                    self.respond(id, &req, 500, Some(&t), &[("Retry-After", "1")], None, now);
                    return;
                }
                c.dialog.local_tag.clone()
            }
            None => return,
        };
        match req.method.as_str() {
            "BYE" => {
                self.respond(id, &req, 200, Some(&tag), &[], None, now);
                self.end(call, EndReason::RemoteBye);
            }
            "INVITE" | "UPDATE" => self.handle_offer_in_dialog(id, call, &req, &tag, now),
            "INFO" => {
                self.respond(id, &req, 200, Some(&tag), &[], None, now);
                if let Some((digit, duration_ms)) =
                    read_dtmf(req.content_type.as_deref(), &req.body)
                {
                    self.emit(CallEvent::Dtmf {
                        call,
                        digit,
                        duration_ms,
                    });
                }
            }
            "OPTIONS" => self.respond(
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
            ),
            "NOTIFY" => {
                let is_refer = req.header("Event", Some("o")).is_some_and(|e| {
                    e.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .eq_ignore_ascii_case("refer")
                });
                if !is_refer {
                    self.respond(
                        id,
                        &req,
                        489,
                        Some(&tag),
                        &[("Allow-Events", "refer")],
                        None,
                        now,
                    );
                    return;
                }
                self.respond(id, &req, 200, Some(&tag), &[], None, now);
                let terminated = req.header("Subscription-State", None).is_some_and(|s| {
                    s.trim_start()
                        .to_ascii_lowercase()
                        .starts_with("terminated")
                });
                let outcome = match sipfrag_status(&req.body) {
                    Some(st) => outcome_of(st),
                    None if terminated => TransferOutcome::Failed(0),
                    None => return,
                };
                self.report_transfer(call, outcome);
            }
            "REFER" => self.respond(id, &req, 603, Some(&tag), &[], None, now),
            _ => self.respond(id, &req, 501, Some(&tag), &[("Allow", ALLOW)], None, now),
        }
    }

    fn handle_offer_in_dialog(
        &mut self,
        id: u64,
        call: CallRef,
        req: &RequestView,
        tag: &str,
        now: Instant,
    ) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if req.method == "INVITE" && c.hold_pending {
            self.respond(id, req, 491, Some(tag), &[], None, now);
            return;
        }
        // Session refresh (RFC 4028): any re-INVITE or UPDATE restarts the timer.
        let se = read_session_expires(req.header("Session-Expires", Some("x")));
        if let SessionExpires::Accept {
            interval,
            uas_refresh,
        } = se
        {
            c.dialog.session_timer = Some(SessionTimer {
                interval,
                we_refresh: uas_refresh,
                refreshed: now,
            });
        } else if let Some(st) = &mut c.dialog.session_timer {
            st.refreshed = now;
        }
        let se_header = c.dialog.session_timer.map(|st| st.header());
        let contact = c.dialog.contact();
        let local_rtp = c.local_rtp;
        if req.method == "INVITE" {
            if let Some(ServerTx::Invite { call: slot, .. }) = self.server.get_mut(&id) {
                *slot = Some(call);
            }
            if let Some(c) = self.calls.get_mut(&call) {
                c.invite_tx = id;
            }
        }
        let mut extra: Vec<(&str, &str)> = vec![
            ("Contact", &contact),
            ("Allow", ALLOW),
            ("Supported", SUPPORTED),
        ];
        if let Some(se) = &se_header {
            extra.push(("Session-Expires", se));
            extra.push(("Require", "timer"));
        }
        let (Some(local_rtp), false) = (local_rtp, req.body.is_empty()) else {
            // A refresh without an offer: 200 without SDP for UPDATE; for a re-INVITE
            // our current session as the offer would need an ACK answer, so the last
            // answer is repeated instead.
            let body = self
                .calls
                .get(&call)
                .and_then(|c| c.media.clone())
                .zip(local_rtp);
            match (req.method.as_str(), body) {
                ("INVITE", Some((media, rtp))) => {
                    let session = self
                        .calls
                        .get(&call)
                        .map(|c| c.dialog.sdp_session)
                        .unwrap_or_default();
                    let sdp = sdp_glue::offer(rtp, session, media.direction, &media);
                    self.respond(
                        id,
                        req,
                        200,
                        Some(tag),
                        &extra,
                        Some(("application/sdp", &sdp)),
                        now,
                    );
                }
                _ => self.respond(id, req, 200, Some(tag), &extra, None, now),
            }
            self.arm_call(call);
            return;
        };
        let (session, keep, keyed) = match self.calls.get_mut(&call) {
            Some(c) => (
                (c.dialog.sdp_session.0, c.dialog.next_sdp_version()),
                c.srtp_key.clone(),
                c.media.as_ref().map(|m| m.srtp.is_some()),
            ),
            None => return,
        };
        let answered = sdp_glue::answer(
            &req.body,
            local_rtp,
            session,
            None,
            keep.as_ref(),
            self.cfg.opus,
        )
        .and_then(|a| match keyed {
            // The media session was opened with its keying (or without): a re-offer
            // that switches between RTP and SRTP is refused, which keeps the call as it
            // is, rather than answered and then sent the other way.
            Some(was) if was != a.media.srtp.is_some() => Err(SdpReject::NotAcceptable(
                if was {
                    "an SRTP call re-offered as plain RTP"
                } else {
                    "a plain RTP call re-offered as SRTP"
                }
                .into(),
            )),
            _ => Ok(a),
        });
        match answered {
            Ok(answer) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.media = Some(answer.media.clone());
                    c.dialog.local_direction = answer.media.direction;
                    if answer.media.srtp.is_some() {
                        c.srtp_key = answer.media.srtp.clone();
                    }
                }
                self.respond(
                    id,
                    req,
                    200,
                    Some(tag),
                    &extra,
                    Some(("application/sdp", &answer.body)),
                    now,
                );
                self.emit(CallEvent::MediaChanged {
                    call,
                    media: answer.media,
                });
            }
            Err(e) => {
                let w = format!("399 voxgate \"{e}\"");
                self.respond(id, req, 488, Some(tag), &[("Warning", &w)], None, now);
            }
        }
        self.arm_call(call);
    }

    fn report_transfer(&mut self, call: CallRef, outcome: TransferOutcome) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.transfer.is_none() {
            return;
        }
        if outcome.is_final() {
            c.transfer = None;
        } else if let Some(t) = &mut c.transfer {
            t.1 = outcome;
        }
        self.emit(CallEvent::Transfer { call, outcome });
    }

    /// Hangs up an answered call with BYE (extra headers such as Reason allowed), or
    /// rejects an unanswered one with 480.
    pub fn hangup(
        &mut self,
        call: CallRef,
        headers: &[(String, String)],
        now: Instant,
    ) -> Result<(), CallError> {
        let c = self.calls.get(&call).ok_or(CallError::NoSuchCall)?;
        if c.media.is_none() {
            return self.reject(call, 480, now);
        }
        let extra: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.send_in_dialog(call, "BYE", None, &extra, None, now)?;
        self.end(call, EndReason::LocalBye);
        Ok(())
    }

    /// Puts the trunk on hold (`SendOnly`, `Inactive`) or resumes (`SendRecv`) by
    /// re-INVITE. The result comes as [`CallEvent::HoldResult`].
    pub fn hold(
        &mut self,
        call: CallRef,
        direction: Direction,
        now: Instant,
    ) -> Result<(), CallError> {
        let c = self.calls.get_mut(&call).ok_or(CallError::NoSuchCall)?;
        if c.dialog.state != DialogState::Confirmed {
            return Err(CallError::WrongState("not confirmed"));
        }
        if c.hold_pending {
            return Err(CallError::WrongState("re-INVITE pending"));
        }
        let (Some(media), Some(rtp)) = (c.media.clone(), c.local_rtp) else {
            return Err(CallError::WrongState("no media"));
        };
        c.hold_pending = true;
        let version = c.dialog.next_sdp_version();
        let sdp = sdp_glue::offer(rtp, (c.dialog.sdp_session.0, version), direction, &media);
        self.send_in_dialog(
            call,
            "INVITE",
            Some(direction),
            &[],
            Some(("application/sdp", &sdp)),
            now,
        )
    }

    /// Sends REFER; progress and the outcome come as [`CallEvent::Transfer`].
    pub fn refer(
        &mut self,
        call: CallRef,
        req: &ReferRequest,
        now: Instant,
    ) -> Result<(), CallError> {
        req.validate()?;
        let referred_by = req
            .referred_by
            .as_deref()
            .map(referred_by_value)
            .transpose()?;
        let c = self.calls.get_mut(&call).ok_or(CallError::NoSuchCall)?;
        if c.dialog.state != DialogState::Confirmed {
            return Err(CallError::WrongState("not confirmed"));
        }
        if c.transfer.is_some() {
            return Err(CallError::WrongState("transfer in progress"));
        }
        c.transfer = Some((now + self.cfg.transfer_timeout, TransferOutcome::Trying));
        let refer_to = format!("<{}>", req.target);
        let mut extra: Vec<(&str, &str)> = vec![("Refer-To", &refer_to)];
        if let Some(rb) = &referred_by {
            extra.push(("Referred-By", rb));
        }
        for (n, v) in &req.headers {
            extra.push((n, v));
        }
        self.send_in_dialog(call, "REFER", None, &extra, None, now)?;
        self.arm_call(call);
        Ok(())
    }

    /// Sends INFO with the given body.
    pub fn send_info(
        &mut self,
        call: CallRef,
        content_type: &str,
        body: &[u8],
        now: Instant,
    ) -> Result<(), CallError> {
        let c = self.calls.get(&call).ok_or(CallError::NoSuchCall)?;
        if c.dialog.state != DialogState::Confirmed {
            return Err(CallError::WrongState("not confirmed"));
        }
        self.send_in_dialog(call, "INFO", None, &[], Some((content_type, body)), now)
    }

    pub(super) fn on_client_response(
        &mut self,
        call: CallRef,
        kind: ClientKind,
        cseq: u32,
        resp: &ResponseView,
        now: Instant,
    ) {
        match kind {
            ClientKind::Refer => match resp.status {
                100..=199 => {}
                200..=299 => self.report_transfer(call, TransferOutcome::Trying),
                408 => self.report_transfer(call, TransferOutcome::TimedOut),
                s => self.report_transfer(call, TransferOutcome::Failed(s)),
            },
            ClientKind::Hold(direction) => {
                if resp.status < 200 {
                    return;
                }
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if (200..300).contains(&resp.status) {
                    let (ack, _, _) = c.dialog.request("ACK", Some(cseq), &[], None);
                    let flow = c.dialog.flow;
                    c.dialog.local_direction = direction;
                    let was_pending = std::mem::replace(&mut c.hold_pending, false);
                    self.send(flow, ack);
                    if !was_pending {
                        return; // a retransmitted 2xx: ACK again, report once
                    }
                } else {
                    c.hold_pending = false;
                }
                self.emit(CallEvent::HoldResult {
                    call,
                    direction,
                    status: if resp.status == 408 { 0 } else { resp.status },
                });
                if resp.status == 481 || resp.status == 408 {
                    let _ = self.send_in_dialog(call, "BYE", None, &[], None, now);
                    self.end(call, EndReason::LocalBye);
                }
            }
            ClientKind::Refresh => {
                if resp.status == 481 || resp.status == 408 {
                    self.end(call, EndReason::SessionExpired);
                }
            }
            ClientKind::Bye | ClientKind::Info => {}
        }
    }

    pub(super) fn call_timer(&mut self, call: CallRef, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some((deadline, _)) = c.transfer {
            if deadline <= now {
                c.transfer = None;
                self.emit(CallEvent::Transfer {
                    call,
                    outcome: TransferOutcome::TimedOut,
                });
            }
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if let Some(st) = c.dialog.session_timer {
            if let Some(due) = st.refresh_due() {
                if due <= now {
                    if let Some(s) = &mut c.dialog.session_timer {
                        s.refreshed = now;
                    }
                    let se = format!("{};refresher=uas", st.interval);
                    let _ = self.send_in_dialog(
                        call,
                        "UPDATE",
                        None,
                        &[("Session-Expires", &se)],
                        None,
                        now,
                    );
                }
            } else if st.expiry() <= now && c.media.is_some() {
                let _ = self.send_in_dialog(
                    call,
                    "BYE",
                    None,
                    &[("Reason", "SIP;cause=408;text=\"session expired\"")],
                    None,
                    now,
                );
                self.end(call, EndReason::SessionExpired);
                return;
            }
        }
        self.arm_call(call);
    }
}

/// Reads a DTMF digit from an INFO body: `application/dtmf-relay` (`Signal=5`,
/// `Duration=160`) or `application/dtmf` (`5`).
pub fn read_dtmf(content_type: Option<&str>, body: &[u8]) -> Option<(char, Option<u32>)> {
    let text = std::str::from_utf8(body).ok()?;
    let valid = |c: char| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D' | 'a'..='d');
    match content_type? {
        "application/dtmf-relay" => {
            let mut digit = None;
            let mut duration = None;
            for line in text.lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "signal" => {
                        let v = v.trim();
                        digit = match v {
                            "10" => Some('*'),
                            "11" => Some('#'),
                            _ => v.chars().next().filter(|c| valid(*c) && v.len() == 1),
                        };
                    }
                    "duration" => duration = v.trim().parse().ok(),
                    _ => {}
                }
            }
            Some((digit?.to_ascii_uppercase(), duration))
        }
        "application/dtmf" => {
            let t = text.trim();
            let c = t.chars().next().filter(|c| valid(*c) && t.len() == 1)?;
            Some((c.to_ascii_uppercase(), None))
        }
        _ => None,
    }
}

/// The Referred-By header value (RFC 3892) for what the call layer gave: a name-addr
/// (`<sip:…>`, optionally with a display name) is sent as it is, a bare URI is put in
/// angle brackets. Anything that does not then parse as one name-addr — nested
/// brackets, line breaks, no URI — is refused rather than sent.
fn referred_by_value(given: &str) -> Result<String, ReferError> {
    let t = given.trim();
    let value = if t.contains('<') {
        t.to_owned()
    } else {
        format!("<{t}>")
    };
    let well_formed = !value.bytes().any(|b| b < 0x20 || b == 0x7f)
        && NameAddr::parse(&value, HeaderName::ReferredBy)
            .is_ok_and(|n| matches!(n.uri.scheme, Scheme::Sip | Scheme::Sips | Scheme::Tel));
    if well_formed {
        Ok(value)
    } else {
        Err(ReferError::BadReferredBy(given.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::read_dtmf;

    #[test]
    fn dtmf_relay_bodies_are_read() {
        assert_eq!(
            read_dtmf(
                Some("application/dtmf-relay"),
                b"Signal=5\r\nDuration=160\r\n"
            ),
            Some(('5', Some(160)))
        );
        assert_eq!(
            read_dtmf(Some("application/dtmf-relay"), b"Signal= #\r\n"),
            Some(('#', None))
        );
        assert_eq!(
            read_dtmf(Some("application/dtmf-relay"), b"Signal=55\r\n"),
            None,
            "tampered: two digits"
        );
        assert_eq!(read_dtmf(Some("application/dtmf"), b"*"), Some(('*', None)));
        assert_eq!(read_dtmf(Some("text/plain"), b"5"), None);
    }
}
