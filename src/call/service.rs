//! The call service: takes the SIP core's call events, starts a [`run_call`] task for
//! each admitted call, routes later events to the call they belong to, and records
//! each refused INVITE as a call rejected with its status.

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::task::{run_call, sip_event_call, CallServices};
use crate::cdr::CallRecorder;
use crate::sip::dialog::CallRef;
use crate::sip::ua::{CallEvent as SipEvent, RefusedInvite, Transport};
use crate::store::{CallStart, SipDetails};

/// Runs until the gateway's event channel closes; returns how many calls it handled.
pub async fn dispatch(svc: CallServices, mut events: mpsc::UnboundedReceiver<SipEvent>) -> u64 {
    let mut calls: HashMap<CallRef, mpsc::UnboundedSender<SipEvent>> = HashMap::new();
    let mut handled = 0;
    while let Some(ev) = events.recv().await {
        if let SipEvent::Refused(refused) = ev {
            if let Some(recorder) = &svc.recorder {
                tokio::spawn(record_refused(recorder.clone(), refused));
            }
            continue;
        }
        let Some(call) = sip_event_call(&ev) else {
            continue;
        };
        match ev {
            SipEvent::Incoming(incoming) => {
                handled += 1;
                let (tx, rx) = mpsc::unbounded_channel();
                calls.insert(call, tx);
                let mut svc = svc.clone();
                if let Some(live) = &svc.live {
                    svc.settings = live.settings();
                }
                tokio::spawn(run_call(svc, incoming, rx));
            }
            ev => {
                let ended = matches!(ev, SipEvent::Ended { .. });
                if let Some(tx) = calls.get(&call) {
                    let _ = tx.send(ev);
                }
                if ended {
                    calls.remove(&call);
                }
            }
        }
    }
    handled
}

/// Writes the record of a refused INVITE (outcome `rejected` with its status; no MAU).
async fn record_refused(recorder: CallRecorder, r: RefusedInvite) {
    let start = CallStart {
        started_at: crate::store::records::now_millis(),
        caller_number: r.caller_number.unwrap_or_default(),
        called_number: r.called_number.unwrap_or_default(),
        sip_call_id: r.call_id,
        instance_id: recorder.instance_id().to_owned(),
        sip: SipDetails {
            from_uri: Some(r.from),
            to_uri: Some(r.to),
            signaling_encrypted: r.transport == Transport::Tls,
            ..SipDetails::default()
        },
    };
    if let Err(e) = recorder.rejected(start, r.status).await {
        tracing::error!(
            status = r.status,
            "record of a refused INVITE not written: {e}"
        );
    }
}
