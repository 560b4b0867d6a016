//! Inbound INVITEs: admission, the early dialog, answering and rejecting.

use std::net::SocketAddr;
use std::time::Instant;

use super::build::{self, ALLOW, SUPPORTED};
use super::core::{Call, CallError, ServerTx, SipCore};
use super::events::{CallEvent, EndReason, IncomingCall, RefusedInvite};
use super::media::NegotiatedMedia;
use super::sdp_glue;
use super::view::{Flow, RequestView};
use crate::sip::admission;
use crate::sip::dialog::{CallRef, Dialog, DialogState};

impl SipCore {
    pub(super) fn handle_invite(&mut self, id: u64, req: RequestView, flow: Flow, now: Instant) {
        let settings = &self.cfg.settings;
        let called = admission::called_number(req.uri_number.as_deref(), req.to_number.as_deref());
        if req
            .content_type
            .as_deref()
            .is_some_and(|ct| ct != "application/sdp")
            || req.body.is_empty()
        {
            // Offerless INVITEs (late offer) are not supported by this gateway.
            let (status, why) = if req.body.is_empty() {
                (488, "no SDP offer")
            } else {
                (415, "offer is not application/sdp")
            };
            self.refuse_invite(
                id,
                &req,
                flow,
                called,
                (status, why),
                &[("Accept", "application/sdp")],
                now,
            );
            return;
        }
        let offer_srtp = match sdp_glue::inspect(&req.body) {
            Ok(o) => o.srtp,
            Err(e) => {
                let w = format!("399 voxgate \"{e}\"");
                let why = e.to_string();
                self.refuse_invite(
                    id,
                    &req,
                    flow,
                    called,
                    (e.status(), &why),
                    &[("Warning", &w)],
                    now,
                );
                return;
            }
        };
        if self.draining {
            tracing::info!(call_id = %req.call_id, "INVITE refused: draining");
            self.refuse_invite(
                id,
                &req,
                flow,
                called,
                (503, "draining"),
                &[("Retry-After", "30"), ("Warning", build::DRAINING_WARNING)],
                now,
            );
            return;
        }
        if let Err(refusal) = admission::admit(
            settings,
            &self.cfg.numbers,
            called.as_deref(),
            offer_srtp,
            self.calls.len(),
        ) {
            let (status, extra) = refusal.response(settings);
            let extra: Vec<(&str, &str)> = extra.iter().map(|(n, v)| (*n, v.as_str())).collect();
            tracing::info!(call_id = %req.call_id, status, "INVITE refused: {refusal}");
            let why = refusal.to_string();
            self.refuse_invite(id, &req, flow, called, (status, &why), &extra, now);
            return;
        }
        let se = crate::sip::dialog::session_timer::read_session_expires(
            req.header("Session-Expires", Some("x")),
        );
        if se == crate::sip::dialog::session_timer::SessionExpires::TooSmall {
            let tag = build::token();
            self.respond(id, &req, 422, Some(&tag), &[("Min-SE", "90")], None, now);
            return;
        }
        self.stats.calls_admitted += 1;
        let call = CallRef(self.id());
        let local_addr = self.cfg.local.for_transport(flow.transport);
        let tag = build::token();
        let mut dialog = Dialog::from_invite(
            call,
            &req,
            flow,
            local_addr,
            tag.clone(),
            now_session_id(call),
        );
        if let crate::sip::dialog::session_timer::SessionExpires::Accept {
            interval,
            uas_refresh,
        } = se
        {
            dialog.session_timer = Some(crate::sip::dialog::SessionTimer {
                interval,
                we_refresh: uas_refresh,
                refreshed: now,
            });
        }
        if let Some(ServerTx::Invite { call: c, .. }) = self.server.get_mut(&id) {
            *c = Some(call);
        }
        if !self.cfg.settings.disable_ringing {
            self.respond(
                id,
                &req,
                180,
                Some(&tag),
                &[("Contact", &dialog.contact())],
                None,
                now,
            );
        }
        let info = IncomingCall {
            call,
            call_id: req.call_id.clone(),
            from: req.from.clone(),
            to: req.to.clone(),
            request_uri: req.uri.clone(),
            caller_number: caller_number(&req),
            called_number: called.unwrap_or_default(),
            custom_headers: admission::copy_headers(&self.cfg.settings, &req.headers),
            transport: flow.transport,
            remote: flow.remote,
            offer_srtp,
        };
        self.by_dialog.insert((req.call_id.clone(), tag), call);
        self.calls.insert(
            call,
            Call {
                dialog,
                invite_tx: id,
                invite: req,
                media: None,
                srtp_key: None,
                local_rtp: None,
                hold_pending: false,
                transfer: None,
            },
        );
        self.emit(CallEvent::Incoming(info));
    }

    /// Answers an INVITE with a final refusal (`status`, `why`) and reports it as
    /// [`CallEvent::Refused`] so the call layer can record it.
    #[allow(clippy::too_many_arguments)]
    fn refuse_invite(
        &mut self,
        id: u64,
        req: &RequestView,
        flow: Flow,
        called: Option<String>,
        (status, why): (u16, &str),
        extra: &[(&str, &str)],
        now: Instant,
    ) {
        self.stats.calls_refused += 1;
        let tag = build::token();
        self.respond(id, req, status, Some(&tag), extra, None, now);
        self.emit(CallEvent::Refused(RefusedInvite {
            call_id: req.call_id.clone(),
            from: req.from.clone(),
            to: req.to.clone(),
            caller_number: caller_number(req),
            called_number: called,
            status,
            reason: why.to_owned(),
            transport: flow.transport,
            remote: flow.remote,
        }));
    }

    /// What the answer to an incoming call's offer will agree (codec, payload types,
    /// remote address), before the local RTP address is known: media is opened with it.
    /// Our SRTP key chosen here is kept for the answer itself (the media session is keyed
    /// with it).
    pub fn preview_answer(&mut self, call: CallRef) -> Result<NegotiatedMedia, CallError> {
        let c = self.calls.get_mut(&call).ok_or(CallError::NoSuchCall)?;
        let probe = SocketAddr::new(self.cfg.local.udp.ip(), 9);
        let media = sdp_glue::answer(
            &c.invite.body,
            probe,
            c.dialog.sdp_session,
            None,
            None,
            self.cfg.opus,
        )?
        .media;
        c.srtp_key = media.srtp.clone();
        Ok(media)
    }

    /// Answers an incoming call: 200 OK with the SDP answer for `local_rtp`.
    pub fn answer(
        &mut self,
        call: CallRef,
        local_rtp: SocketAddr,
        now: Instant,
    ) -> Result<(), CallError> {
        let c = self.calls.get_mut(&call).ok_or(CallError::NoSuchCall)?;
        if c.dialog.state != DialogState::Early || c.media.is_some() {
            return Err(CallError::WrongState("already answered"));
        }
        let version = c.dialog.next_sdp_version();
        let session = (c.dialog.sdp_session.0, version);
        let keep = c.srtp_key.clone();
        let answer = match sdp_glue::answer(
            &c.invite.body,
            local_rtp,
            session,
            None,
            keep.as_ref(),
            self.cfg.opus,
        ) {
            Ok(a) => a,
            Err(e) => {
                let status = e.status();
                self.reject(call, status, now)?;
                return Err(e.into());
            }
        };
        c.media = Some(answer.media.clone());
        c.local_rtp = Some(local_rtp);
        let contact = c.dialog.contact();
        let tag = c.dialog.local_tag.clone();
        let se = c.dialog.session_timer.map(|st| st.header());
        let inv = c.invite.clone();
        let id = c.invite_tx;
        let mut extra: Vec<(&str, &str)> = vec![
            ("Contact", &contact),
            ("Allow", ALLOW),
            ("Supported", SUPPORTED),
        ];
        if let Some(se) = &se {
            extra.push(("Session-Expires", se));
            extra.push(("Require", "timer"));
        }
        self.respond(
            id,
            &inv,
            200,
            Some(&tag),
            &extra,
            Some(("application/sdp", &answer.body)),
            now,
        );
        self.arm_call(call);
        self.emit(CallEvent::Answered {
            call,
            media: answer.media,
        });
        Ok(())
    }

    /// Rejects an incoming call that was not answered yet.
    pub fn reject(&mut self, call: CallRef, status: u16, now: Instant) -> Result<(), CallError> {
        let c = self.calls.get(&call).ok_or(CallError::NoSuchCall)?;
        if c.media.is_some() {
            return Err(CallError::WrongState("answered"));
        }
        let (id, inv, tag) = (c.invite_tx, c.invite.clone(), c.dialog.local_tag.clone());
        self.respond(id, &inv, status.clamp(300, 699), Some(&tag), &[], None, now);
        self.end(call, EndReason::Rejected(status));
        Ok(())
    }
}

/// SDP session id for a call: unique per call within a run.
fn now_session_id(call: CallRef) -> u64 {
    call.0.wrapping_mul(2_654_435_761) & 0x7fff_ffff_ffff
}

/// The caller's number from the From URI's user part, E.164 when it reads as one.
fn caller_number(req: &RequestView) -> Option<String> {
    admission::e164(
        crate::sip::dialog::uri_of(&req.from)
            .trim_start_matches("sip:")
            .trim_start_matches("sips:")
            .trim_start_matches("tel:")
            .split(['@', ';'])
            .next()
            .unwrap_or(""),
    )
}
