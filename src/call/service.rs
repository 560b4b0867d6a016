//! The call service: takes the SIP core's call events, starts a [`run_call`] task for
//! each admitted call, and routes later events to the call they belong to.

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::task::{run_call, sip_event_call, CallServices};
use crate::sip::dialog::CallRef;
use crate::sip::ua::CallEvent as SipEvent;

/// Runs until the gateway's event channel closes; returns how many calls it handled.
pub async fn dispatch(svc: CallServices, mut events: mpsc::UnboundedReceiver<SipEvent>) -> u64 {
    let mut calls: HashMap<CallRef, mpsc::UnboundedSender<SipEvent>> = HashMap::new();
    let mut handled = 0;
    while let Some(ev) = events.recv().await {
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
