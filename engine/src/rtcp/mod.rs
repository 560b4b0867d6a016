//! RTCP (RFC 3550 section 6): sender and receiver reports, source description, BYE and
//! compound packets. Parsing validates a whole packet up front and then hands out
//! borrowed views whose iterators cannot fail; [`RtcpWriter`] builds a compound packet
//! into a caller buffer.

mod packet;
mod writer;

pub use packet::{
    Goodbye, ReceiverReport, ReportBlock, RtcpCompound, RtcpError, RtcpPacket, SdesChunk,
    SenderInfo, SenderReport, SourceDescription, PT_BYE, PT_RR, PT_SDES, PT_SR, SDES_CNAME,
};
pub use writer::RtcpWriter;
