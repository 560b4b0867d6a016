//! A client of rtpengine's "ng" control protocol, for the same-run comparison of the
//! media engine with rtpengine (`voxgate-load-rtpengine`): one UDP datagram per request,
//! `<cookie> <bencoded dictionary>`, answered by `<cookie> <bencoded dictionary>`.
//!
//! Only what the benchmark needs: `offer`, `answer` and `delete` of a call whose two
//! legs are the generator's own socket, and the RTP port rtpengine gives each leg.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

/// A bencoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bencode {
    /// A byte string.
    Bytes(Vec<u8>),
    /// An integer.
    Int(i64),
    /// A list.
    List(Vec<Bencode>),
    /// A dictionary (keys sorted, as bencoding requires).
    Dict(BTreeMap<Vec<u8>, Bencode>),
}

impl Bencode {
    /// A dictionary of string values, the shape of every ng request.
    pub fn dict<'a>(pairs: impl IntoIterator<Item = (&'a str, Bencode)>) -> Bencode {
        Bencode::Dict(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v))
                .collect(),
        )
    }

    /// A byte string from text.
    pub fn str(s: &str) -> Bencode {
        Bencode::Bytes(s.as_bytes().to_vec())
    }

    /// Appends the encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Bytes(b) => {
                out.extend_from_slice(b.len().to_string().as_bytes());
                out.push(b':');
                out.extend_from_slice(b);
            }
            Bencode::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(i.to_string().as_bytes());
                out.push(b'e');
            }
            Bencode::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode(out);
                }
                out.push(b'e');
            }
            Bencode::Dict(map) => {
                out.push(b'd');
                for (k, v) in map {
                    Bencode::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// Decodes one value from the start of `input`; returns it and the rest.
    pub fn decode(input: &[u8]) -> Result<(Bencode, &[u8]), String> {
        Self::decode_depth(input, 0)
    }

    fn decode_depth(input: &[u8], depth: usize) -> Result<(Bencode, &[u8]), String> {
        if depth > 32 {
            return Err("bencode nested deeper than 32".into());
        }
        match input.first() {
            Some(b'i') => {
                let end = find(input, b'e')?;
                let text = std::str::from_utf8(&input[1..end]).map_err(|e| e.to_string())?;
                let i = text
                    .parse()
                    .map_err(|_| format!("bad bencode integer {text:?}"))?;
                Ok((Bencode::Int(i), &input[end + 1..]))
            }
            Some(b'l') => {
                let mut rest = &input[1..];
                let mut items = Vec::new();
                while rest.first() != Some(&b'e') {
                    let (v, r) = Self::decode_depth(rest, depth + 1)?;
                    items.push(v);
                    rest = r;
                }
                Ok((Bencode::List(items), &rest[1..]))
            }
            Some(b'd') => {
                let mut rest = &input[1..];
                let mut map = BTreeMap::new();
                while rest.first() != Some(&b'e') {
                    let (k, r) = Self::decode_depth(rest, depth + 1)?;
                    let Bencode::Bytes(k) = k else {
                        return Err("bencode dictionary key is not a string".into());
                    };
                    let (v, r) = Self::decode_depth(r, depth + 1)?;
                    map.insert(k, v);
                    rest = r;
                }
                Ok((Bencode::Dict(map), &rest[1..]))
            }
            Some(b'0'..=b'9') => {
                let colon = find(input, b':')?;
                let text = std::str::from_utf8(&input[..colon]).map_err(|e| e.to_string())?;
                let len: usize = text
                    .parse()
                    .map_err(|_| format!("bad bencode length {text:?}"))?;
                let body = input
                    .get(colon + 1..colon + 1 + len)
                    .ok_or("bencode string runs past the end")?;
                Ok((Bencode::Bytes(body.to_vec()), &input[colon + 1 + len..]))
            }
            Some(c) => Err(format!("unexpected bencode byte {c:#04x}")),
            None => Err("bencode ends early".into()),
        }
    }

    /// The value of `key` in a dictionary, as text.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self {
            Bencode::Dict(map) => match map.get(key.as_bytes()) {
                Some(Bencode::Bytes(b)) => std::str::from_utf8(b).ok(),
                _ => None,
            },
            _ => None,
        }
    }
}

fn find(input: &[u8], byte: u8) -> Result<usize, String> {
    input
        .iter()
        .position(|&c| c == byte)
        .ok_or_else(|| format!("bencode: no {:?} found", byte as char))
}

/// An ng control connection to one rtpengine.
#[derive(Debug)]
pub struct NgClient {
    socket: UdpSocket,
    nonce: u64,
    seq: u64,
}

impl NgClient {
    /// Binds a local socket and sets `server` (rtpengine's `--listen-ng`) as its peer.
    pub fn connect(server: SocketAddr) -> io::Result<NgClient> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(server)?;
        socket.set_read_timeout(Some(Duration::from_secs(2)))?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(NgClient {
            socket,
            nonce,
            seq: 0,
        })
    }

    /// Sends `request` and returns rtpengine's reply dictionary; an error reply
    /// (`result` other than `ok`) is an error carrying its `error-reason`.
    pub fn request(&mut self, request: &Bencode) -> io::Result<Bencode> {
        self.seq += 1;
        // rtpengine answers a cookie it has seen from its reply cache (retransmissions),
        // so cookies must not repeat across runs either.
        let cookie = format!("vg{}-{}-{}", std::process::id(), self.nonce, self.seq);
        let mut datagram = format!("{cookie} ").into_bytes();
        request.encode(&mut datagram);
        let mut buf = vec![0u8; 65536];
        for _attempt in 0..3 {
            self.socket.send(&datagram)?;
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(e),
            };
            let reply = &buf[..n];
            let Some(body) = reply
                .strip_prefix(cookie.as_bytes())
                .and_then(|r| r.strip_prefix(b" "))
            else {
                continue; // a late reply to an earlier attempt
            };
            let (value, _) = Bencode::decode(body).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("ng reply: {e}"))
            })?;
            return match value.get_str("result") {
                Some("ok") => Ok(value),
                other => Err(io::Error::other(format!(
                    "ng {}: result {:?}, {}",
                    request.get_str("command").unwrap_or("?"),
                    other,
                    value.get_str("error-reason").unwrap_or("no reason given")
                ))),
            };
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "rtpengine did not answer the ng request (3 tries)",
        ))
    }

    /// Sets up call `call_id` with both legs at `leg` (the generator's socket), plain
    /// PCMU, or SRTP on the caller's leg when `caller_crypto` (an `a=crypto` value) is
    /// given. Returns the relay's port on each leg and, with SRTP, the `a=crypto` value
    /// rtpengine protects with towards the caller.
    pub fn relay_call(
        &mut self,
        call_id: &str,
        leg: SocketAddr,
        caller_crypto: Option<&str>,
    ) -> io::Result<RelayedCall> {
        let caller_sdp = sdp(leg, caller_crypto);
        let mut offer = vec![
            ("command", Bencode::str("offer")),
            ("call-id", Bencode::str(call_id)),
            ("from-tag", Bencode::str("caller")),
            ("sdp", Bencode::str(&caller_sdp)),
        ];
        if caller_crypto.is_some() {
            offer.push(("transport-protocol", Bencode::str("RTP/AVP")));
        }
        let offered = self.request(&Bencode::dict(offer))?;
        let callee_side = sdp_port(offered.get_str("sdp").unwrap_or(""))?;
        let answer = Bencode::dict([
            ("command", Bencode::str("answer")),
            ("call-id", Bencode::str(call_id)),
            ("from-tag", Bencode::str("caller")),
            ("to-tag", Bencode::str("callee")),
            ("sdp", Bencode::str(&sdp(leg, None))),
        ]);
        let answered = self.request(&answer)?;
        let answer_sdp = answered.get_str("sdp").unwrap_or("");
        let caller_side = sdp_port(answer_sdp)?;
        let relay_crypto = answer_sdp
            .lines()
            .find_map(|l| l.trim_end().strip_prefix("a=crypto:"))
            .map(str::to_string);
        if caller_crypto.is_some() && relay_crypto.is_none() {
            return Err(io::Error::other("rtpengine's answer has no a=crypto line"));
        }
        Ok(RelayedCall {
            caller_side,
            callee_side,
            relay_crypto,
        })
    }

    /// Deletes call `call_id`.
    pub fn delete(&mut self, call_id: &str) -> io::Result<()> {
        self.request(&Bencode::dict([
            ("command", Bencode::str("delete")),
            ("call-id", Bencode::str(call_id)),
            ("from-tag", Bencode::str("caller")),
        ]))
        .map(|_| ())
    }
}

/// The relay's side of one call (see [`NgClient::relay_call`]).
#[derive(Debug, Clone)]
pub struct RelayedCall {
    /// The relay's port on the caller's leg: the caller sends to it, and the relay sends
    /// what the callee sent to the caller from it.
    pub caller_side: u16,
    /// The relay's port on the callee's leg: the callee sends to it, and the relay sends
    /// what the caller sent to the callee from it.
    pub callee_side: u16,
    /// With SRTP on the caller's leg: the relay's `a=crypto` value (what it protects
    /// with towards the caller).
    pub relay_crypto: Option<String>,
}

fn sdp(leg: SocketAddr, crypto: Option<&str>) -> String {
    let proto = if crypto.is_some() {
        "RTP/SAVP"
    } else {
        "RTP/AVP"
    };
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} {proto} 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ip = leg.ip(),
        port = leg.port()
    );
    if let Some(c) = crypto {
        s.push_str(&format!("a=crypto:{c}\r\n"));
    }
    s
}

fn sdp_port(sdp: &str) -> io::Result<u16> {
    sdp.lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "no m=audio port in rtpengine's SDP",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bencode_round_trips_an_ng_reply() {
        let reply = b"d5:emptyde4:listli1ei-2ee6:result2:ok3:sdp5:v=0\r\ne";
        let (v, rest) = Bencode::decode(reply).expect("decodes");
        assert!(rest.is_empty());
        assert_eq!(v.get_str("result"), Some("ok"));
        assert_eq!(v.get_str("sdp"), Some("v=0\r\n"));
        let mut again = Vec::new();
        v.encode(&mut again);
        assert_eq!(again, reply);
    }

    #[test]
    fn bencode_rejects_truncated_and_foreign_input() {
        for bad in [
            &b"d6:result2:o"[..],
            b"i12",
            b"5:abc",
            b"x",
            b"",
            b"d1:ai1e",
        ] {
            assert!(
                Bencode::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = vec![b'l'; 100];
        assert!(Bencode::decode(&deep).is_err());
    }

    #[test]
    fn the_port_comes_from_the_audio_line() {
        let s = sdp(
            "127.0.0.1:4000".parse().expect("addr"),
            Some("1 AES_CM_128_HMAC_SHA1_80 inline:x"),
        );
        assert_eq!(sdp_port(&s).expect("port"), 4000);
        assert!(s.contains("RTP/SAVP"));
        assert!(sdp_port("v=0\r\n").is_err());
    }
}
