//! Building compound RTCP packets into a caller buffer.

use super::packet::{
    ReportBlock, RtcpError, SenderInfo, PT_BYE, PT_RR, PT_SDES, PT_SR, SDES_CNAME,
};

/// Appends RTCP packets to a caller-owned buffer.
#[derive(Debug)]
pub struct RtcpWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> RtcpWriter<'a> {
    /// A writer over `buf`, starting empty.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0 }
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn reserve(&mut self, n: usize) -> Result<&mut [u8], RtcpError> {
        let have = self.buf.len() - self.len;
        if n > have {
            return Err(RtcpError::BufferTooSmall { need: n, have });
        }
        Ok(&mut self.buf[self.len..self.len + n])
    }

    fn header(b: &mut [u8], count: u8, pt: u8, len: usize) {
        b[0] = 0x80 | count;
        b[1] = pt;
        b[2..4].copy_from_slice(&((len / 4 - 1) as u16).to_be_bytes());
    }

    /// Appends a sender report.
    pub fn sender_report(
        &mut self,
        ssrc: u32,
        info: &SenderInfo,
        blocks: &[ReportBlock],
    ) -> Result<(), RtcpError> {
        if blocks.len() > 31 {
            return Err(RtcpError::TooMany);
        }
        let len = 28 + 24 * blocks.len();
        let b = self.reserve(len)?;
        Self::header(b, blocks.len() as u8, PT_SR, len);
        b[4..8].copy_from_slice(&ssrc.to_be_bytes());
        b[8..12].copy_from_slice(&info.ntp_seconds.to_be_bytes());
        b[12..16].copy_from_slice(&info.ntp_fraction.to_be_bytes());
        b[16..20].copy_from_slice(&info.rtp_timestamp.to_be_bytes());
        b[20..24].copy_from_slice(&info.packet_count.to_be_bytes());
        b[24..28].copy_from_slice(&info.octet_count.to_be_bytes());
        for (i, rb) in blocks.iter().enumerate() {
            rb.write(&mut b[28 + 24 * i..52 + 24 * i]);
        }
        self.len += len;
        Ok(())
    }

    /// Appends a receiver report.
    pub fn receiver_report(&mut self, ssrc: u32, blocks: &[ReportBlock]) -> Result<(), RtcpError> {
        if blocks.len() > 31 {
            return Err(RtcpError::TooMany);
        }
        let len = 8 + 24 * blocks.len();
        let b = self.reserve(len)?;
        Self::header(b, blocks.len() as u8, PT_RR, len);
        b[4..8].copy_from_slice(&ssrc.to_be_bytes());
        for (i, rb) in blocks.iter().enumerate() {
            rb.write(&mut b[8 + 24 * i..32 + 24 * i]);
        }
        self.len += len;
        Ok(())
    }

    /// Appends an SDES packet with one chunk carrying a CNAME.
    pub fn sdes_cname(&mut self, ssrc: u32, cname: &[u8]) -> Result<(), RtcpError> {
        if cname.len() > 255 {
            return Err(RtcpError::TooMany);
        }
        // header + SSRC + type + len + value + END, padded to 32 bits.
        let len = (4 + 4 + 2 + cname.len() + 1).div_ceil(4) * 4;
        let b = self.reserve(len)?;
        Self::header(b, 1, PT_SDES, len);
        b[4..8].copy_from_slice(&ssrc.to_be_bytes());
        b[8] = SDES_CNAME;
        b[9] = cname.len() as u8;
        b[10..10 + cname.len()].copy_from_slice(cname);
        b[10 + cname.len()..].fill(0);
        self.len += len;
        Ok(())
    }

    /// Appends a BYE for `ssrcs` with an optional reason.
    pub fn bye(&mut self, ssrcs: &[u32], reason: Option<&[u8]>) -> Result<(), RtcpError> {
        if ssrcs.len() > 31 || reason.is_some_and(|r| r.len() > 255) {
            return Err(RtcpError::TooMany);
        }
        let rlen = reason.map_or(0, |r| 1 + r.len());
        let len = (4 + 4 * ssrcs.len() + rlen).div_ceil(4) * 4;
        let b = self.reserve(len)?;
        Self::header(b, ssrcs.len() as u8, PT_BYE, len);
        for (i, s) in ssrcs.iter().enumerate() {
            b[4 + 4 * i..8 + 4 * i].copy_from_slice(&s.to_be_bytes());
        }
        let at = 4 + 4 * ssrcs.len();
        b[at..].fill(0);
        if let Some(r) = reason {
            b[at] = r.len() as u8;
            b[at + 1..at + 1 + r.len()].copy_from_slice(r);
        }
        self.len += len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn block(n: u32) -> ReportBlock {
        ReportBlock {
            ssrc: n,
            fraction_lost: 12,
            cumulative_lost: -3,
            extended_highest_seq: 70000,
            jitter: 40,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        }
    }

    #[test]
    fn compound_round_trip() {
        let mut buf = [0u8; 512];
        let mut w = RtcpWriter::new(&mut buf);
        let info = SenderInfo {
            ntp_seconds: 0xe000_0000,
            ntp_fraction: 0x8000_0000,
            rtp_timestamp: 1234,
            packet_count: 50,
            octet_count: 8000,
        };
        w.sender_report(0xaaaa, &info, &[block(1), block(2)])
            .unwrap();
        w.sdes_cname(0xaaaa, b"voxgate@host").unwrap();
        w.bye(&[0xaaaa, 0xbbbb], Some(b"call ended")).unwrap();
        let n = w.len();
        assert_eq!(n % 4, 0);
        let c = RtcpCompound::parse(&buf[..n]).unwrap();
        let packets: Vec<_> = c.packets().collect();
        assert_eq!(packets.len(), 3);
        let RtcpPacket::SenderReport(sr) = packets[0] else {
            panic!("not SR")
        };
        assert_eq!(sr.ssrc, 0xaaaa);
        assert_eq!(sr.info, info);
        assert_eq!(sr.info.ntp_middle(), 0x0000_8000);
        assert_eq!(
            sr.report_blocks().collect::<Vec<_>>(),
            vec![block(1), block(2)]
        );
        let RtcpPacket::SourceDescription(sd) = packets[1] else {
            panic!("not SDES")
        };
        let chunks: Vec<_> = sd.chunks().collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].ssrc, 0xaaaa);
        assert_eq!(chunks[0].cname(), Some(&b"voxgate@host"[..]));
        let RtcpPacket::Goodbye(bye) = packets[2] else {
            panic!("not BYE")
        };
        assert_eq!(bye.ssrcs().collect::<Vec<_>>(), vec![0xaaaa, 0xbbbb]);
        assert_eq!(bye.reason, Some(&b"call ended"[..]));
    }

    #[test]
    fn receiver_report_round_trip() {
        let mut buf = [0u8; 40];
        let mut w = RtcpWriter::new(&mut buf);
        w.receiver_report(7, &[block(9)]).unwrap();
        assert!(matches!(
            w.receiver_report(7, &[block(9)]),
            Err(RtcpError::BufferTooSmall { .. })
        ));
        let n = w.len();
        let c = RtcpCompound::parse(&buf[..n]).unwrap();
        let Some(RtcpPacket::ReceiverReport(rr)) = c.packets().next() else {
            panic!()
        };
        assert_eq!(rr.ssrc, 7);
        let b = rr.report_blocks().next().unwrap();
        assert_eq!(b.cumulative_lost, -3);
        assert_eq!(b, block(9));
    }

    mod rfc3550 {
        use super::super::super::*;

        /// An RR with one report block as laid out in RFC 3550 6.4.2, and a tampered twin.
        const RR: [u8; 32] = [
            0x81, 0xc9, 0x00, 0x07, // V=2, RC=1, PT=201, length 7
            0x00, 0x00, 0x04, 0xd2, // SSRC 1234
            0x00, 0x00, 0x16, 0x2e, // SSRC_1 5678
            0x40, 0x00, 0x00, 0x05, // fraction 64/256, cumulative 5
            0x00, 0x01, 0x00, 0x10, // ext highest 65552
            0x00, 0x00, 0x00, 0x20, // jitter 32
            0x00, 0x00, 0x00, 0x00, // LSR
            0x00, 0x00, 0x00, 0x00, // DLSR
        ];

        #[test]
        fn parses_vector() {
            let c = RtcpCompound::parse(&RR).unwrap();
            let Some(RtcpPacket::ReceiverReport(rr)) = c.packets().next() else {
                panic!()
            };
            assert_eq!(rr.ssrc, 1234);
            let b = rr.report_blocks().next().unwrap();
            assert_eq!(
                (
                    b.ssrc,
                    b.fraction_lost,
                    b.cumulative_lost,
                    b.extended_highest_seq,
                    b.jitter
                ),
                (5678, 64, 5, 65552, 32)
            );
        }

        #[test]
        fn tampered_length_fails() {
            let mut t = RR;
            t[3] = 0x08; // length one word too long
            assert!(matches!(
                RtcpCompound::parse(&t),
                Err(RtcpError::BadLength { .. })
            ));
            let mut t = RR;
            t[0] = 0x82; // RC=2, blocks missing
            assert!(matches!(
                RtcpCompound::parse(&t),
                Err(RtcpError::BadCount { .. })
            ));
            let mut t = RR;
            t[0] = 0x41; // version 1
            assert!(matches!(
                RtcpCompound::parse(&t),
                Err(RtcpError::BadVersion { .. })
            ));
        }
    }

    #[test]
    fn rejects_malformed() {
        assert!(RtcpCompound::parse(&[]).is_err());
        assert!(RtcpCompound::parse(&[0x80, 0xc9, 0]).is_err());
        // Compound must start with SR/RR.
        let mut buf = [0u8; 64];
        let mut w = RtcpWriter::new(&mut buf);
        w.sdes_cname(1, b"x").unwrap();
        let n = w.len();
        assert_eq!(
            RtcpCompound::parse(&buf[..n]).unwrap_err(),
            RtcpError::NotCompound(PT_SDES)
        );
        // SDES item running past the packet.
        let bad = [
            0x80, 0xc9, 0, 1, 0, 0, 0, 1, 0x81, 0xca, 0, 2, 0, 0, 0, 1, 1, 9, b'a', b'b',
        ];
        assert!(matches!(
            RtcpCompound::parse(&bad),
            Err(RtcpError::BadSdes { .. })
        ));
        // Padding on a packet that is not the last.
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&[0xa0, 0xc9, 0, 1, 0, 0, 0, 4]);
        p[8..].copy_from_slice(&[0x80, 0xc9, 0, 1, 0, 0, 0, 1]);
        assert!(matches!(
            RtcpCompound::parse(&p),
            Err(RtcpError::BadPadding { .. })
        ));
        // BYE reason longer than the packet.
        let bye = [
            0x80, 0xc9, 0, 1, 0, 0, 0, 1, 0x81, 0xcb, 0, 2, 0, 0, 0, 1, 9, b'x', 0, 0,
        ];
        assert!(RtcpCompound::parse(&bye).is_err());
    }
}
