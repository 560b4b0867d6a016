//! RFC 4475 torture messages, handled as /work/shared/conformance/rfc4475/EXPECTED.tsv
//! says, at the parser + classification level.

use std::path::PathBuf;

use bytes::Bytes;
use voxgate::sip::{
    self, check_request, check_response, Disposition, HeaderName, Method, SipMessage, UasPolicy,
};

fn corpus_dir() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for _ in 0..6 {
        let cand = dir.join("shared/conformance/rfc4475");
        if cand.is_dir() {
            return cand;
        }
        if !dir.pop() {
            break;
        }
    }
    panic!("shared/conformance/rfc4475 not found above CARGO_MANIFEST_DIR");
}

fn load(name: &str) -> Bytes {
    let p = corpus_dir().join(format!("{name}.dat"));
    Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

/// Our UA plus REGISTER, standing in for the registrar the application rows assume.
const REGISTRAR: UasPolicy<'static> = UasPolicy {
    allowed: &[
        Method::Invite,
        Method::Ack,
        Method::Bye,
        Method::Cancel,
        Method::Options,
        Method::Register,
        Method::Refer,
        Method::Notify,
        Method::Info,
    ],
    ..UasPolicy::GATEWAY
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Parsed and accepted for processing.
    Process,
    /// Parsed; only the parse is specified by the table.
    Parsed,
    Respond(u16),
    Drop,
}

fn classify(raw: &Bytes, policy: &UasPolicy<'_>) -> Outcome {
    match sip::parse(raw.clone()) {
        Err(e) => match e.disposition(raw) {
            Disposition::Respond(c) => Outcome::Respond(c),
            Disposition::Drop => Outcome::Drop,
        },
        Ok(SipMessage::Request(r)) => match check_request(&r, policy) {
            Ok(()) => Outcome::Process,
            Err(rej) => Outcome::Respond(rej.status),
        },
        Ok(SipMessage::Response(r)) => match check_response(&r) {
            Ok(()) => Outcome::Process,
            Err(_) => Outcome::Drop,
        },
    }
}

/// Our chosen outcome for every row (where the RFC allows a choice, the comment says
/// which one we take).
fn want(name: &str) -> Outcome {
    use Outcome::*;
    match name {
        "wsinv" | "esc01" | "lwsdisp" | "longreq" | "dblreq" | "semiuri" | "transports" => Process,
        "escnull" | "baddate" | "zeromf" | "inv2543" | "badbranch" => Process,
        "cparam01" | "cparam02" | "regescrt" | "regaut01" => Process,
        // Liberal choices the RFC permits.
        "lwsstart" | "trws" | "escruri" => Process,
        "mpart01" | "unreason" | "noreason" => Parsed,
        "intmeth" | "esc02" | "mismatch02" => Respond(501),
        "badinv01" | "clerr" | "ncl" | "scalar02" | "quotbal" | "ltgtruri" | "lwsruri" => {
            Respond(400)
        }
        "regbadct" | "badaspec" | "baddn" | "mismatch01" | "insuf" | "unksm2" | "multi01"
        | "mcl01" => Respond(400),
        "badvers" => Respond(505),
        "unkscm" | "novelsc" => Respond(416),
        "bext01" => Respond(420),
        "invut" => Respond(415),
        "sdp01" => Respond(406),
        "scalarlg" | "bigcode" | "bcast" => Drop,
        other => panic!("row {other} has no expectation in this test"),
    }
}

/// Our outcome must be one the table's text allows.
fn allowed_by_table(outcome: Outcome, text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    match outcome {
        Outcome::Respond(c) => t.contains(&c.to_string()),
        Outcome::Drop => t.contains("discard") || t.contains("drop"),
        Outcome::Parsed => t.starts_with("parse ok"),
        Outcome::Process => {
            t.starts_with("parse ok")
                || t.starts_with("accept")
                || t.contains("process")
                || t.contains("liberal accept")
                || t.contains("ignore")
                || t.contains("respond 200")
                || t.contains("fall back")
        }
    }
}

#[test]
fn every_row_is_handled_as_the_table_says() {
    let table = std::fs::read_to_string(corpus_dir().join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    let mut rows = 0;
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".dat"))
        .collect();
    files.sort();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "row {line}");
        let (name, expected) = (cols[0], cols[3]);
        let raw = load(name);
        let w = want(name);
        assert!(
            allowed_by_table(w, expected),
            "{name}: our choice {w:?} vs table '{expected}'"
        );
        let got = classify(&raw, &REGISTRAR);
        match w {
            Outcome::Parsed => assert!(sip::parse(raw.clone()).is_ok(), "{name} must parse"),
            _ => assert_eq!(got, w, "{name}: table says '{expected}'"),
        }
        files.retain(|f| f != &format!("{name}.dat"));
        rows += 1;
    }
    assert_eq!(rows, 49, "EXPECTED.tsv rows");
    assert!(files.is_empty(), "messages without a row: {files:?}");
}

fn request(name: &str) -> sip::Request {
    match sip::parse(load(name)) {
        Ok(SipMessage::Request(r)) => r,
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn wsinv_fields() {
    let r = request("wsinv");
    let h = &r.headers;
    assert_eq!(h.cseq().unwrap().seq, 9);
    assert_eq!(h.cseq().unwrap().method, Method::Invite);
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    let to = h.to().unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    assert_eq!(to.uri.user, Some("vivekg"));
    let from = h.from().unwrap();
    assert_eq!(from.display_name().unwrap(), "J Rosenberg \\\"");
    assert_eq!(from.tag(), Some("98asjd8"));
    let vias = h.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[0].branch(), Some("390skdjuw"));
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    assert_eq!(vias[2].host.to_string(), "192.168.255.111");
    assert_eq!(r.body.len(), 150);
    let c = h.contacts().unwrap();
    assert_eq!(c[0].display_name().unwrap(), "Quoted string \"\"");
    assert_eq!(c[0].param("q"), Some(Some("0.33")));
    assert_eq!(c[0].param("newparam"), Some(Some("newvalue")));
    assert_eq!(h.get(HeaderName::Subject), Some(""));
}

#[test]
fn escapes_are_decoded() {
    let r = request("esc01");
    let u = r.uri().unwrap();
    assert_eq!(u.user_unescaped().unwrap(), "sips:user@example.com");
    assert_eq!(
        r.headers.to().unwrap().uri.user_unescaped().unwrap(),
        "user"
    );
    assert_eq!(
        r.headers.from().unwrap().uri.user_unescaped().unwrap(),
        "I have spaces"
    );
    let c = r.headers.contacts().unwrap();
    assert_eq!(c[0].uri.user_unescaped().unwrap(), "caller");
    assert_eq!(c[0].uri.param("lr"), None);
    assert_eq!(sip::unescape(c[0].uri.params.as_str()), ";lr;name=value%41");

    let r = request("escnull");
    assert_eq!(
        r.headers.to().unwrap().uri.user_unescaped().unwrap(),
        "null-\0-null"
    );
    let c = r.headers.contacts().unwrap();
    assert_eq!(c.len(), 2);
    assert!(!c[0].uri.equivalent(&c[1].uri));

    let r = request("esc02");
    assert!(matches!(r.method, Method::Extension(ref m) if &**m == "RE%47IST%45R"));
    assert_eq!(
        r.headers.contacts().unwrap().len(),
        2,
        "C%6Fntact is not Contact"
    );
}

#[test]
fn unusual_but_valid_requests() {
    let r = request("intmeth");
    assert_eq!(
        r.method.as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    let u = r.uri().unwrap();
    assert_eq!(
        u.password,
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    let mut out = Vec::new();
    let rej = check_request(&r, &UasPolicy::GATEWAY).unwrap_err();
    assert_eq!(rej.status, 501);
    rej.write_response(&r, Some("x1"), &mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("SIP/2.0 501 Not Implemented\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nAllow: INVITE, ACK, BYE"), "{text}");
    assert!(
        text.contains("CSeq: 139122385 !interesting-Method"),
        "{text}"
    );

    let r = request("lwsdisp");
    assert_eq!(r.headers.from().unwrap().display_name().unwrap(), "caller");
    let r = request("semiuri");
    assert_eq!(
        r.uri().unwrap().user_unescaped().unwrap(),
        "user;par=u@example.net"
    );
    let r = request("transports");
    let t: Vec<&str> = r
        .headers
        .vias()
        .unwrap()
        .iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
    let r = request("longreq");
    let vias = r.headers.vias().unwrap();
    assert_eq!(vias.len(), 34);
    assert_eq!(vias[0].host.to_string(), "sip33.example.com");
    assert_eq!(vias[33].received(), Some("192.0.2.5"));
    assert_eq!(r.headers.to().unwrap().uri.port, Some(6000));
    let r = request("dblreq");
    assert_eq!(r.method, Method::Register);
    assert!(r.body.is_empty(), "trailing request ignored");
    let r = request("badbranch");
    assert_eq!(r.headers.top_via().unwrap().rfc3261_branch(), None);
    let r = request("inv2543");
    assert_eq!(r.headers.from().unwrap().tag(), None);
    assert_eq!(
        r.uri().unwrap().telephone_number(),
        None,
        "UserB is not a number"
    );
    assert_eq!(
        r.called_number().as_deref(),
        Some("+16505552222"),
        "falls back to To"
    );
    let r = request("zeromf");
    assert_eq!(r.headers.max_forwards().unwrap(), Some(0));
    let r = request("regaut01");
    let rej = check_request(&r, &UasPolicy::GATEWAY).unwrap_err();
    assert_eq!(
        rej.status, 405,
        "a non-registrar UA answers REGISTER with 405"
    );
}

#[test]
fn registrar_rows_keep_the_right_params() {
    let r = request("cparam01");
    let c = r.headers.contacts().unwrap();
    assert!(c[0].uri.params.is_empty());
    assert_eq!(c[0].param("unknownparam"), Some(None));
    let r = request("cparam02");
    let c = r.headers.contacts().unwrap();
    assert_eq!(c[0].uri.param("unknownparam"), Some(None));
    assert!(c[0].params.is_empty());
    let r = request("regescrt");
    let c = r.headers.contacts().unwrap();
    assert_eq!(c[0].uri.headers, Some("Route=%3Csip:sip.example.com%3E"));
    let r = request("unksm2");
    assert!(!r.headers.to().unwrap().uri.is_sip());
}

#[test]
fn responses() {
    for (name, status, reason) in [("unreason", 200, None), ("noreason", 100, Some(""))] {
        match sip::parse(load(name)) {
            Ok(SipMessage::Response(r)) => {
                assert_eq!(r.status, status);
                if let Some(reason) = reason {
                    assert_eq!(r.reason(), reason);
                }
                assert!(check_response(&r).is_ok());
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    match sip::parse(load("mpart01")) {
        Ok(SipMessage::Request(r)) => {
            assert_eq!(r.body.len(), 553);
            assert!(r.body.contains(&0));
        }
        other => panic!("mpart01: {other:?}"),
    }
}

#[test]
fn special_rejections_carry_their_headers() {
    let r = request("bext01");
    let rej = check_request(&r, &UasPolicy::GATEWAY).unwrap_err();
    assert_eq!(
        rej.headers,
        vec![(
            "Unsupported",
            "nothingSupportsThis, nothingSupportsThisEither".to_string()
        )]
    );
    let r = request("sdp01");
    let rej = check_request(&r, &UasPolicy::GATEWAY).unwrap_err();
    assert!(rej.headers[0].1.starts_with("399 "), "{:?}", rej.headers);
    let r = request("invut");
    let rej = check_request(&r, &UasPolicy::GATEWAY).unwrap_err();
    assert_eq!(rej.headers[0].0, "Accept");
}

#[test]
fn truncations_of_every_message_never_panic() {
    for entry in std::fs::read_dir(corpus_dir())
        .expect("dir")
        .filter_map(|e| e.ok())
    {
        let raw = std::fs::read(entry.path()).expect("read");
        for cut in 0..raw.len() {
            let b = Bytes::copy_from_slice(&raw[..cut]);
            if let Ok(SipMessage::Request(r)) = sip::parse(b.clone()) {
                let _ = check_request(&r, &UasPolicy::GATEWAY);
                let _ = r.called_number();
            }
            let _ = sip::frame_len(&b);
        }
    }
}
