//! Just enough X.509 (RFC 5280) DER reading to describe a certificate to an operator:
//! subject, issuer and validity end. A bounds-checked reader; any malformed or truncated
//! input is `None`, never a panic.

/// What the admin console shows of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Subject, e.g. `CN=sip.example.com, O=Example`.
    pub subject: String,
    /// Issuer, same form.
    pub issuer: String,
    /// End of validity, `YYYY-MM-DDTHH:MM:SSZ`.
    pub not_after: String,
}

/// One DER TLV: tag, contents, and what follows.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Reads a tag that must be `want`.
fn expect(b: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, body, rest) = tlv(b)?;
    (tag == want).then_some((body, rest))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;

/// Summarises a DER certificate.
pub fn summary(der: &[u8]) -> Option<Summary> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(cert, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, optional
    if let Some((0xa0, _, r)) = tlv(rest) {
        rest = r;
    }
    let (_serial, r) = expect(rest, 0x02)?;
    let (_sig_alg, r) = expect(r, SEQUENCE)?;
    let (issuer, r) = expect(r, SEQUENCE)?;
    let (validity, r) = expect(r, SEQUENCE)?;
    let (subject, _) = expect(r, SEQUENCE)?;
    let (_, _, after) = tlv(validity)?;
    let (tag, not_after, _) = tlv(after)?;
    Some(Summary {
        subject: name(subject)?,
        issuer: name(issuer)?,
        not_after: time(tag, not_after)?,
    })
}

/// A Name (SEQUENCE OF SET OF AttributeTypeAndValue) as `CN=…, O=…`.
fn name(mut b: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    while !b.is_empty() {
        let (set, r) = expect(b, SET)?;
        b = r;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (atv, r) = expect(atvs, SEQUENCE)?;
            atvs = r;
            let (oid, r) = expect(atv, OID)?;
            let (tag, value, _) = tlv(r)?;
            let key = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                _ => continue,
            };
            let text = match tag {
                // UTF8String, PrintableString, IA5String, TeletexString (as Latin-1)
                0x0c | 0x13 | 0x16 => String::from_utf8_lossy(value).into_owned(),
                0x14 => value.iter().map(|&c| char::from(c)).collect(),
                // BMPString: UTF-16BE
                0x1e => {
                    let units: Vec<u16> = value
                        .chunks_exact(2)
                        .map(|p| u16::from_be_bytes([p[0], p[1]]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => continue,
            };
            parts.push(format!("{key}={text}"));
        }
    }
    Some(parts.join(", "))
}

/// UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) as
/// `YYYY-MM-DDTHH:MM:SSZ`.
fn time(tag: u8, b: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(b).ok()?;
    let digits = s.strip_suffix('Z')?;
    if !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let full = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: u32 = digits[..2].parse().ok()?;
            let century = if yy < 50 { "20" } else { "19" };
            format!("{century}{digits}")
        }
        (0x18, 14) => digits.to_owned(),
        _ => return None,
    };
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[0..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str, after: (i32, u8, u8)) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::new(vec!["sip.example.com".to_owned()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example Telecom");
        p.not_after = rcgen::date_time_ymd(after.0, after.1, after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn subject_issuer_and_expiry_of_a_certificate() {
        // Before 2050: UTCTime.
        let der = cert("sip.example.com", (2031, 5, 17));
        let s = summary(&der).expect("summary");
        assert_eq!(s.subject, "CN=sip.example.com, O=Example Telecom");
        assert_eq!(s.issuer, s.subject, "self-signed");
        assert_eq!(s.not_after, "2031-05-17T00:00:00Z");
        // From 2050: GeneralizedTime.
        let far = summary(&cert("far", (2061, 1, 2))).expect("summary");
        assert_eq!(far.not_after, "2061-01-02T00:00:00Z");
    }

    #[test]
    fn truncated_or_tampered_input_is_refused() {
        let der = cert("sip.example.com", (2031, 5, 17));
        for cut in [0, 1, 2, 10, der.len() / 2, der.len() - 1] {
            assert_eq!(summary(&der[..cut]), None, "cut at {cut}");
        }
        let mut bad = der.clone();
        bad[0] = 0x31; // SET, not SEQUENCE
        assert_eq!(summary(&bad), None);
        assert_eq!(time(0x17, b"3105171200Z"), None, "UTCTime too short");
        assert_eq!(time(0x17, b"31051712000aZ"), None, "not digits");
        assert_eq!(
            time(0x17, b"990101000000Z").as_deref(),
            Some("1999-01-01T00:00:00Z")
        );
    }
}
