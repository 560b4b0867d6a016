//! RTCP packet views.

use thiserror::Error;

/// Sender report packet type.
pub const PT_SR: u8 = 200;
/// Receiver report packet type.
pub const PT_RR: u8 = 201;
/// Source description packet type.
pub const PT_SDES: u8 = 202;
/// Goodbye packet type.
pub const PT_BYE: u8 = 203;
/// SDES CNAME item type.
pub const SDES_CNAME: u8 = 1;

const REPORT_BLOCK_LEN: usize = 24;

/// Why an RTCP packet was rejected or could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Fewer bytes than a header or a fixed part needs.
    #[error("RTCP packet too short at byte {at}: need {need} more bytes")]
    TooShort {
        /// Offset in the compound packet.
        at: usize,
        /// Bytes missing.
        need: usize,
    },
    /// Version is not 2.
    #[error("RTCP version {version} at byte {at}")]
    BadVersion {
        /// Offset in the compound packet.
        at: usize,
        /// Version found.
        version: u8,
    },
    /// The length field points past the end of the buffer.
    #[error("RTCP length {declared} bytes at byte {at}, only {available} available")]
    BadLength {
        /// Offset in the compound packet.
        at: usize,
        /// Bytes the length field declares.
        declared: usize,
        /// Bytes available.
        available: usize,
    },
    /// Padding on a packet other than the last, or a bad padding count.
    #[error("RTCP padding invalid at byte {at}")]
    BadPadding {
        /// Offset in the compound packet.
        at: usize,
    },
    /// The count field needs more bytes than the packet holds.
    #[error("RTCP count {count} does not fit the packet at byte {at}")]
    BadCount {
        /// Offset in the compound packet.
        at: usize,
        /// The count field.
        count: u8,
    },
    /// An SDES chunk or item runs past the packet.
    #[error("RTCP SDES chunk malformed at byte {at}")]
    BadSdes {
        /// Offset in the compound packet.
        at: usize,
    },
    /// A compound packet must start with SR or RR (RFC 3550 6.1).
    #[error("RTCP compound packet starts with type {0}, not SR/RR")]
    NotCompound(u8),
    /// Output buffer too small.
    #[error("buffer too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// More than 31 report blocks, SSRCs or chunks, or an item over 255 bytes.
    #[error("too many items for one RTCP packet")]
    TooMany,
}

/// A reception report block (RFC 3550 6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// Source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub extended_highest_seq: u32,
    /// Interarrival jitter (timestamp units).
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (0 if none).
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> Self {
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
        // Sign-extend the 24-bit field.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        Self {
            ssrc: u32_at(0),
            fraction_lost: b[4],
            cumulative_lost,
            extended_highest_seq: u32_at(8),
            jitter: u32_at(12),
            last_sr: u32_at(16),
            delay_since_last_sr: u32_at(20),
        }
    }

    pub(crate) fn write(&self, b: &mut [u8]) {
        b[0..4].copy_from_slice(&self.ssrc.to_be_bytes());
        b[4] = self.fraction_lost;
        let lost = (self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32).to_be_bytes();
        b[5..8].copy_from_slice(&lost[1..4]);
        b[8..12].copy_from_slice(&self.extended_highest_seq.to_be_bytes());
        b[12..16].copy_from_slice(&self.jitter.to_be_bytes());
        b[16..20].copy_from_slice(&self.last_sr.to_be_bytes());
        b[20..24].copy_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

fn blocks(b: &[u8]) -> impl Iterator<Item = ReportBlock> + '_ {
    b.chunks_exact(REPORT_BLOCK_LEN).map(ReportBlock::parse)
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// NTP timestamp, seconds.
    pub ntp_seconds: u32,
    /// NTP timestamp, fraction.
    pub ntp_fraction: u32,
    /// RTP timestamp corresponding to the NTP timestamp.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packet_count: u32,
    /// Payload octets sent.
    pub octet_count: u32,
}

impl SenderInfo {
    /// The middle 32 bits of the NTP timestamp (what LSR echoes).
    pub fn ntp_middle(&self) -> u32 {
        (self.ntp_seconds << 16) | (self.ntp_fraction >> 16)
    }
}

/// A sender report.
#[derive(Debug, Clone, Copy)]
pub struct SenderReport<'a> {
    /// Sender SSRC.
    pub ssrc: u32,
    /// Sender information.
    pub info: SenderInfo,
    blocks: &'a [u8],
}

impl<'a> SenderReport<'a> {
    /// The reception report blocks.
    pub fn report_blocks(&self) -> impl Iterator<Item = ReportBlock> + 'a {
        blocks(self.blocks)
    }
}

/// A receiver report.
#[derive(Debug, Clone, Copy)]
pub struct ReceiverReport<'a> {
    /// Reporter SSRC.
    pub ssrc: u32,
    blocks: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    /// The reception report blocks.
    pub fn report_blocks(&self) -> impl Iterator<Item = ReportBlock> + 'a {
        blocks(self.blocks)
    }
}

/// One SDES chunk.
#[derive(Debug, Clone, Copy)]
pub struct SdesChunk<'a> {
    /// Source described.
    pub ssrc: u32,
    items: &'a [u8],
}

impl<'a> SdesChunk<'a> {
    /// (item type, value) pairs, up to the END item.
    pub fn items(&self) -> impl Iterator<Item = (u8, &'a [u8])> + 'a {
        let mut rest = self.items;
        std::iter::from_fn(move || {
            let (&kind, tail) = rest.split_first()?;
            if kind == 0 {
                return None;
            }
            let (&len, tail) = tail.split_first()?;
            let value = tail.get(..usize::from(len))?;
            rest = &tail[usize::from(len)..];
            Some((kind, value))
        })
    }
    /// The CNAME item, if present.
    pub fn cname(&self) -> Option<&'a [u8]> {
        self.items().find(|&(k, _)| k == SDES_CNAME).map(|(_, v)| v)
    }
}

/// A source description packet.
#[derive(Debug, Clone, Copy)]
pub struct SourceDescription<'a> {
    count: u8,
    body: &'a [u8],
}

impl<'a> SourceDescription<'a> {
    /// The chunks (validated at parse time).
    pub fn chunks(&self) -> impl Iterator<Item = SdesChunk<'a>> + 'a {
        let mut rest = self.body;
        let mut left = self.count;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let len = sdes_chunk_len(rest).ok()?;
            let chunk = &rest[..len];
            rest = &rest[len..];
            let ssrc = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            Some(SdesChunk {
                ssrc,
                items: &chunk[4..],
            })
        })
    }
}

/// Length of the SDES chunk at the start of `b` (SSRC, items, END, padding to 32 bits).
fn sdes_chunk_len(b: &[u8]) -> Result<usize, ()> {
    let mut i = 4;
    if b.len() < i {
        return Err(());
    }
    loop {
        match b.get(i) {
            None => return Err(()),
            Some(0) => {
                i += 1;
                let padded = i.div_ceil(4) * 4;
                return if padded <= b.len() {
                    Ok(padded)
                } else {
                    Err(())
                };
            }
            Some(_) => {
                let len = usize::from(*b.get(i + 1).ok_or(())?);
                i += 2 + len;
            }
        }
    }
}

/// A BYE packet.
#[derive(Debug, Clone, Copy)]
pub struct Goodbye<'a> {
    ssrcs: &'a [u8],
    /// The reason for leaving, if given.
    pub reason: Option<&'a [u8]>,
}

impl<'a> Goodbye<'a> {
    /// Sources leaving.
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.ssrcs
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// One packet of a compound RTCP packet.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum RtcpPacket<'a> {
    /// SR.
    SenderReport(SenderReport<'a>),
    /// RR.
    ReceiverReport(ReceiverReport<'a>),
    /// SDES.
    SourceDescription(SourceDescription<'a>),
    /// BYE.
    Goodbye(Goodbye<'a>),
    /// Any other type (APP, RTPFB, PSFB, XR...), not interpreted.
    Other {
        /// Packet type.
        packet_type: u8,
        /// The count/subtype field.
        count: u8,
        /// Body after the 4-byte header, padding removed.
        body: &'a [u8],
    },
}

impl<'a> RtcpPacket<'a> {
    /// Parses one packet at offset `at` of `buf`; returns it and the offset after it.
    fn parse_at(buf: &'a [u8], at: usize) -> Result<(Self, usize), RtcpError> {
        let b = &buf[at..];
        if b.len() < 4 {
            return Err(RtcpError::TooShort {
                at,
                need: 4 - b.len(),
            });
        }
        let version = b[0] >> 6;
        if version != 2 {
            return Err(RtcpError::BadVersion { at, version });
        }
        let count = b[0] & 0x1f;
        let pt = b[1];
        let len = (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1) * 4;
        if len > b.len() {
            return Err(RtcpError::BadLength {
                at,
                declared: len,
                available: b.len(),
            });
        }
        let mut body = &b[4..len];
        if b[0] & 0x20 != 0 {
            // Padding is only allowed on the last packet of a compound (RFC 3550 A.2).
            let pad = usize::from(*body.last().ok_or(RtcpError::BadPadding { at })?);
            if at + len != buf.len() || pad == 0 || pad > body.len() {
                return Err(RtcpError::BadPadding { at });
            }
            body = &body[..body.len() - pad];
        }
        let u32_at = |b: &[u8], i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let need_blocks = |fixed: usize| -> Result<&'a [u8], RtcpError> {
            let need = fixed + usize::from(count) * REPORT_BLOCK_LEN;
            if body.len() < need {
                return Err(RtcpError::BadCount { at, count });
            }
            Ok(&body[fixed..need])
        };
        let packet = match pt {
            PT_SR => {
                let blocks = need_blocks(24)?;
                let info = SenderInfo {
                    ntp_seconds: u32_at(body, 4),
                    ntp_fraction: u32_at(body, 8),
                    rtp_timestamp: u32_at(body, 12),
                    packet_count: u32_at(body, 16),
                    octet_count: u32_at(body, 20),
                };
                RtcpPacket::SenderReport(SenderReport {
                    ssrc: u32_at(body, 0),
                    info,
                    blocks,
                })
            }
            PT_RR => {
                let blocks = need_blocks(4)?;
                RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: u32_at(body, 0),
                    blocks,
                })
            }
            PT_SDES => {
                let mut rest = body;
                let mut off = at + 4;
                for _ in 0..count {
                    let n = sdes_chunk_len(rest).map_err(|()| RtcpError::BadSdes { at: off })?;
                    rest = &rest[n..];
                    off += n;
                }
                RtcpPacket::SourceDescription(SourceDescription { count, body })
            }
            PT_BYE => {
                let n = usize::from(count) * 4;
                if body.len() < n {
                    return Err(RtcpError::BadCount { at, count });
                }
                let reason = match body.get(n) {
                    None => None,
                    Some(&rlen) => {
                        let r = body.get(n + 1..n + 1 + usize::from(rlen)).ok_or(
                            RtcpError::TooShort {
                                at,
                                need: usize::from(rlen),
                            },
                        )?;
                        Some(r)
                    }
                };
                RtcpPacket::Goodbye(Goodbye {
                    ssrcs: &body[..n],
                    reason,
                })
            }
            _ => RtcpPacket::Other {
                packet_type: pt,
                count,
                body,
            },
        };
        Ok((packet, at + len))
    }

    /// The packet type.
    pub fn packet_type(&self) -> u8 {
        match self {
            Self::SenderReport(_) => PT_SR,
            Self::ReceiverReport(_) => PT_RR,
            Self::SourceDescription(_) => PT_SDES,
            Self::Goodbye(_) => PT_BYE,
            Self::Other { packet_type, .. } => *packet_type,
        }
    }
}

/// A validated compound RTCP packet.
#[derive(Debug, Clone, Copy)]
pub struct RtcpCompound<'a> {
    buf: &'a [u8],
}

impl<'a> RtcpCompound<'a> {
    /// Validates every packet in `buf` and that the first is an SR or RR.
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtcpError> {
        let mut at = 0;
        let mut first = true;
        if buf.is_empty() {
            return Err(RtcpError::TooShort { at: 0, need: 4 });
        }
        while at < buf.len() {
            let (p, next) = RtcpPacket::parse_at(buf, at)?;
            if first
                && !matches!(
                    p,
                    RtcpPacket::SenderReport(_) | RtcpPacket::ReceiverReport(_)
                )
            {
                return Err(RtcpError::NotCompound(p.packet_type()));
            }
            first = false;
            at = next;
        }
        Ok(Self { buf })
    }

    /// The packets, in order.
    pub fn packets(&self) -> impl Iterator<Item = RtcpPacket<'a>> + 'a {
        let buf = self.buf;
        let mut at = 0;
        std::iter::from_fn(move || {
            if at >= buf.len() {
                return None;
            }
            let (p, next) = RtcpPacket::parse_at(buf, at).ok()?;
            at = next;
            Some(p)
        })
    }
}
