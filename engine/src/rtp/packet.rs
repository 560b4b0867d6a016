//! RTP packet view and header writer.

use thiserror::Error;

/// Length of the fixed RTP header (no CSRCs, no extension).
pub const RTP_HEADER_LEN: usize = 12;

/// Why an RTP packet was rejected or could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Fewer bytes than the fixed header (or than the header fields claim).
    #[error("RTP packet too short: {len} bytes, need {need}")]
    TooShort {
        /// Bytes available.
        len: usize,
        /// Bytes the header requires.
        need: usize,
    },
    /// The version field is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding count is zero or larger than the payload.
    #[error("RTP padding count {pad} invalid for {payload} payload bytes")]
    BadPadding {
        /// The padding count from the last byte.
        pad: u8,
        /// Payload bytes (padding included) available.
        payload: usize,
    },
    /// The payload type is outside 0..=127 or in the RTCP range 72..=76 (RFC 5761).
    #[error("RTP payload type {0} not allowed")]
    BadPayloadType(u8),
    /// The output buffer is too small for what is being written.
    #[error("buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
}

/// A validated, borrowed view of an RTP packet. Parsing copies nothing.
#[derive(Debug, Clone, Copy)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    header_len: usize,
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as an RTP packet: version 2, CSRC list, header extension and
    /// padding all inside the buffer.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        if buf.len() < RTP_HEADER_LEN {
            return Err(RtpError::TooShort {
                len: buf.len(),
                need: RTP_HEADER_LEN,
            });
        }
        let b0 = buf[0];
        let version = b0 >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let pt = buf[1] & 0x7f;
        if (72..=76).contains(&pt) {
            return Err(RtpError::BadPayloadType(pt));
        }
        let cc = usize::from(b0 & 0x0f);
        let mut header_len = RTP_HEADER_LEN + 4 * cc;
        if buf.len() < header_len {
            return Err(RtpError::TooShort {
                len: buf.len(),
                need: header_len,
            });
        }
        if b0 & 0x10 != 0 {
            let need = header_len + 4;
            if buf.len() < need {
                return Err(RtpError::TooShort {
                    len: buf.len(),
                    need,
                });
            }
            let words = usize::from(u16::from_be_bytes([
                buf[header_len + 2],
                buf[header_len + 3],
            ]));
            header_len = need + 4 * words;
            if buf.len() < header_len {
                return Err(RtpError::TooShort {
                    len: buf.len(),
                    need: header_len,
                });
            }
        }
        let mut payload_end = buf.len();
        if b0 & 0x20 != 0 {
            let pad = buf[buf.len() - 1];
            let payload = buf.len() - header_len;
            if pad == 0 || usize::from(pad) > payload {
                return Err(RtpError::BadPadding { pad, payload });
            }
            payload_end -= usize::from(pad);
        }
        Ok(Self {
            buf,
            header_len,
            payload_end,
        })
    }

    /// The marker bit.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }
    /// The payload type (0..=127).
    pub fn payload_type(&self) -> u8 {
        self.buf[1] & 0x7f
    }
    /// The 16-bit sequence number.
    pub fn sequence_number(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }
    /// The RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }
    /// The synchronisation source.
    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]])
    }
    /// The contributing sources.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let cc = usize::from(self.buf[0] & 0x0f);
        self.buf[RTP_HEADER_LEN..RTP_HEADER_LEN + 4 * cc]
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
    /// The header extension: (profile-defined 16 bits, extension data), if present.
    pub fn extension(&self) -> Option<(u16, &'a [u8])> {
        if self.buf[0] & 0x10 == 0 {
            return None;
        }
        let at = RTP_HEADER_LEN + 4 * usize::from(self.buf[0] & 0x0f);
        let profile = u16::from_be_bytes([self.buf[at], self.buf[at + 1]]);
        Some((profile, &self.buf[at + 4..self.header_len]))
    }
    /// Length of the header including CSRCs and extension.
    pub fn header_len(&self) -> usize {
        self.header_len
    }
    /// The payload, padding removed.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.header_len..self.payload_end]
    }
    /// The whole packet as parsed.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }
}

/// The fields of an outgoing RTP header (no CSRCs, no extension, no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// Marker bit (start of a talkspurt for audio).
    pub marker: bool,
    /// Payload type, 0..=127.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// Writes the 12-byte header to the start of `buf`; the payload goes at
    /// `buf[RTP_HEADER_LEN..]`. Returns the header length.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, RtpError> {
        if self.payload_type > 127 {
            return Err(RtpError::BadPayloadType(self.payload_type));
        }
        let Some(out) = buf.get_mut(..RTP_HEADER_LEN) else {
            return Err(RtpError::BufferTooSmall {
                need: RTP_HEADER_LEN,
                have: buf.len(),
            });
        };
        out[0] = 0x80;
        out[1] = (u8::from(self.marker) << 7) | self.payload_type;
        out[2..4].copy_from_slice(&self.sequence_number.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        Ok(RTP_HEADER_LEN)
    }

    /// Writes the header followed by `payload`; returns the packet length.
    pub fn write_packet(&self, buf: &mut [u8], payload: &[u8]) -> Result<usize, RtpError> {
        let need = RTP_HEADER_LEN + payload.len();
        if buf.len() < need {
            return Err(RtpError::BufferTooSmall {
                need,
                have: buf.len(),
            });
        }
        self.write(buf)?;
        buf[RTP_HEADER_LEN..need].copy_from_slice(payload);
        Ok(need)
    }
}

/// RFC 5761 demultiplexing for rtcp-mux: true when the second byte is an RTCP packet
/// type (192..=223), i.e. the packet is RTCP, not RTP.
pub fn is_rtcp(packet: &[u8]) -> bool {
    matches!(packet.get(1), Some(192..=223))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = RtpHeader {
            marker: true,
            payload_type: 8,
            sequence_number: 65535,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
        };
        let mut buf = [0u8; 64];
        let n = h.write_packet(&mut buf, &[1, 2, 3]).unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert!(p.marker());
        assert_eq!(p.payload_type(), 8);
        assert_eq!(p.sequence_number(), 65535);
        assert_eq!(p.timestamp(), 0xdead_beef);
        assert_eq!(p.ssrc(), 0x0102_0304);
        assert_eq!(p.payload(), &[1, 2, 3]);
        assert_eq!(p.csrcs().count(), 0);
        assert!(p.extension().is_none());
        assert!(!is_rtcp(&buf[..n]));
    }

    #[test]
    fn csrc_extension_padding() {
        // V=2 P=1 X=1 CC=2, PT=0
        let mut pkt = vec![0xb2, 0x00, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        pkt.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 11]); // CSRCs
        pkt.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension, 1 word
        pkt.extend_from_slice(&[7, 7, 0, 0, 3]); // payload 7 7 + 3 bytes padding
        let p = RtpPacket::parse(&pkt).unwrap();
        assert_eq!(p.csrcs().collect::<Vec<_>>(), vec![10, 11]);
        assert_eq!(p.extension(), Some((0xbede, &[9u8, 9, 9, 9][..])));
        assert_eq!(p.payload(), &[7, 7]);
    }

    #[test]
    fn rejects_malformed() {
        assert!(matches!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::TooShort { .. })
        ));
        let mut hdr = [0x80u8, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        hdr[0] = 0x40;
        assert_eq!(RtpPacket::parse(&hdr).unwrap_err(), RtpError::BadVersion(1));
        hdr[0] = 0x81; // one CSRC missing
        assert!(matches!(
            RtpPacket::parse(&hdr),
            Err(RtpError::TooShort { need: 16, .. })
        ));
        hdr[0] = 0x90; // extension header missing
        assert!(matches!(
            RtpPacket::parse(&hdr),
            Err(RtpError::TooShort { .. })
        ));
        let mut padded = hdr.to_vec();
        padded[0] = 0xa0;
        padded.push(0); // padding count 0
        assert!(matches!(
            RtpPacket::parse(&padded),
            Err(RtpError::BadPadding { .. })
        ));
        *padded.last_mut().unwrap() = 2; // more than the 1 payload byte
        assert!(matches!(
            RtpPacket::parse(&padded),
            Err(RtpError::BadPadding { .. })
        ));
        let mut rtcp = hdr;
        rtcp[1] = 200;
        assert!(is_rtcp(&rtcp));
        assert!(RtpPacket::parse(&rtcp).is_err());
    }

    #[test]
    fn writer_checks_buffer() {
        let h = RtpHeader::default();
        assert!(matches!(
            h.write(&mut [0u8; 11]),
            Err(RtpError::BufferTooSmall { .. })
        ));
        assert!(matches!(
            h.write_packet(&mut [0u8; 13], &[1, 2]),
            Err(RtpError::BufferTooSmall { .. })
        ));
        let bad = RtpHeader {
            payload_type: 128,
            ..h
        };
        assert!(bad.write(&mut [0u8; 12]).is_err());
    }
}
