//! Which RFC 4475 "valid" messages and trunk forms rsip 0.4.0 parses, next to voxgate's
//! parser (the figures in docs/DECISIONS.md, "SIP parser").
//!
//! cargo run -p voxgate-bench --example rsip_rfc4475
use rsip::prelude::*;

fn corpus() -> String {
    let mut dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let c = dir.join("shared/conformance/rfc4475");
        if c.is_dir() {
            return c.display().to_string();
        }
        assert!(dir.pop(), "shared/conformance/rfc4475 not found");
    }
}

fn main() {
    let dir = corpus();
    let table = std::fs::read_to_string(format!("{dir}/EXPECTED.tsv")).unwrap();
    let (mut n, mut rs, mut vg) = (0, 0, 0);
    for line in table.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        if c[2] != "valid" {
            continue;
        }
        n += 1;
        let raw = std::fs::read(format!("{dir}/{}.dat", c[0])).unwrap();
        let r = rsip::SipMessage::try_from(&raw[..]).is_ok();
        let v = voxgate::sip::parse(bytes::Bytes::from(raw.clone())).is_ok();
        rs += r as u32;
        vg += v as u32;
        println!("{:<12} rsip={} voxgate={}", c[0], r, v);
    }
    println!("valid rows {n}: rsip {rs}, voxgate {vg}");
    let base = "INVITE sip:+19585550123@gw SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <tel:+15551234567>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    let m = rsip::SipMessage::try_from(base).unwrap();
    if let rsip::SipMessage::Request(r) = m {
        println!(
            "rsip typed To tel: {:?}",
            r.to_header().unwrap().typed().map(|_| ())
        );
        println!(
            "rsip typed Via IPv6: {:?}",
            r.via_header().unwrap().typed().map(|_| ())
        );
    }
}
