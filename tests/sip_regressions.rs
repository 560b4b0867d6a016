//! Every file under tests/data/sip_message and tests/data/sdp (fuzz findings and
//! hand-made edge cases) goes through the same entry points the fuzz targets use;
//! none may panic, and each SIP file must be classified (parsed or given a disposition).

use std::path::Path;

use bytes::Bytes;
use voxgate::sip::{self, fuzzing};

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(dir);
    let mut v: Vec<_> = std::fs::read_dir(&d)
        .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    v
}

#[test]
fn sip_message_files_replay() {
    let all = files("sip_message");
    assert!(!all.is_empty());
    for p in all {
        let data = std::fs::read(&p).expect("read");
        fuzzing::sip_message(&data);
        if let Err(e) = sip::parse(Bytes::from(data.clone())) {
            // A fault always has a disposition; requests get 400/513, responses drop.
            let _ = e.disposition(&data);
        }
    }
}

#[test]
fn handmade_faults_are_reported_not_panicked() {
    let data = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/sip_message/handmade-unterminated-fields.sip"),
    )
    .expect("read");
    let Ok(sip::SipMessage::Request(r)) = sip::parse(Bytes::from(data)) else {
        panic!("framed request parses structurally");
    };
    assert!(r.headers.to().is_err());
    assert!(r.headers.from().is_err());
    assert!(r.headers.vias().is_err());
    assert!(r.headers.cseq().is_err());
    assert_eq!(r.framing, Some(sip::FramingFault::Conflict));
    let rej = sip::check_request(&r, &sip::UasPolicy::GATEWAY).unwrap_err();
    assert_eq!(rej.status, 400);
}

#[test]
fn sdp_files_replay() {
    let all = files("sdp");
    assert!(!all.is_empty());
    for p in all {
        fuzzing::sdp(&std::fs::read(&p).expect("read"));
    }
}
