//! RTP (RFC 3550): a zero-copy parse view over a received packet, a header writer that
//! fills a caller-owned buffer, and receive statistics (extended sequence numbers, RFC 3550
//! A.1; interarrival jitter, A.8).

mod packet;
mod stats;

pub use packet::{is_rtcp, RtpError, RtpHeader, RtpPacket, RTP_HEADER_LEN};
pub use stats::{ReceiveStats, ReportCounts, SeqOutcome};
