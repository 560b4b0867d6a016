//! RFC 4733 telephone-events (DTMF digits 0-9 * # A-D): payload format, a receiver that
//! reports each digit once however many end packets arrive (and even if all of them are
//! lost, when the next event starts), and a sender that produces the packet sequence.

use thiserror::Error;

/// Length of one telephone-event block.
pub const EVENT_LEN: usize = 4;
/// Times the end packet is sent (RFC 4733 2.5.1.4 recommends three).
pub const END_REPEATS: u8 = 3;

/// Telephone-event faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DtmfError {
    /// Payload shorter than one event block.
    #[error("telephone-event payload of {0} bytes, need 4")]
    TooShort(usize),
    /// Not a DTMF digit.
    #[error("not a DTMF digit: {0:?}")]
    NotADigit(char),
    /// An event is already being sent.
    #[error("a DTMF event is already being sent")]
    Busy,
    /// Output buffer too small.
    #[error("buffer too small")]
    BufferTooSmall,
}

/// One telephone-event block (RFC 4733 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-15 for DTMF).
    pub event: u8,
    /// End bit.
    pub end: bool,
    /// Volume in −dBm0 (0..=63).
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first event block of a payload (redundant blocks are ignored).
    pub fn parse(payload: &[u8]) -> Result<Self, DtmfError> {
        let b = payload
            .get(..EVENT_LEN)
            .ok_or(DtmfError::TooShort(payload.len()))?;
        Ok(Self {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }
    /// Writes the block; returns 4.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, DtmfError> {
        let b = out.get_mut(..EVENT_LEN).ok_or(DtmfError::BufferTooSmall)?;
        b[0] = self.event;
        b[1] = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        b[2..4].copy_from_slice(&self.duration.to_be_bytes());
        Ok(EVENT_LEN)
    }
}

/// The DTMF digit of an event code.
pub fn event_digit(event: u8) -> Option<char> {
    b"0123456789*#ABCD"
        .get(usize::from(event))
        .map(|&c| char::from(c))
}

/// The event code of a DTMF digit (case-insensitive for A-D).
pub fn digit_event(digit: char) -> Option<u8> {
    let d = digit.to_ascii_uppercase();
    b"0123456789*#ABCD"
        .iter()
        .position(|&c| char::from(c) == d)
        .map(|p| p as u8)
}

/// A digit received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedDigit {
    /// The digit.
    pub digit: char,
    /// Its duration in RTP timestamp units.
    pub duration: u32,
}

/// Turns a stream of telephone-event packets into digits, each reported once.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    /// (RTP timestamp, event, duration, reported) of the current event.
    current: Option<(u32, u8, u16, bool)>,
}

impl DtmfReceiver {
    /// A receiver with no event in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports the current event if it was never reported (all its end packets lost and no
    /// event followed); call when telephone-events have stopped for a while.
    pub fn flush(&mut self) -> Option<ReceivedDigit> {
        let (_, event, duration, reported) = self.current.as_mut()?;
        if *reported {
            return None;
        }
        *reported = true;
        event_digit(*event).map(|digit| ReceivedDigit {
            digit,
            duration: u32::from(*duration),
        })
    }

    /// Handles one telephone-event packet (its RTP timestamp and payload). Returns the
    /// digit when it ends, or the previous digit if a new event starts before the previous
    /// one's end packets were seen. Non-DTMF events (codes > 15) are ignored.
    pub fn handle(
        &mut self,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Option<ReceivedDigit>, DtmfError> {
        let ev = TelephoneEvent::parse(payload)?;
        let mut out = None;
        match self.current {
            Some((ts, _, _, _)) if ts == timestamp => {}
            Some((_, event, duration, false)) => {
                // A new event started while the previous one never saw its end.
                out = event_digit(event).map(|digit| ReceivedDigit {
                    digit,
                    duration: u32::from(duration),
                });
                self.current = Some((timestamp, ev.event, ev.duration, false));
            }
            _ => self.current = Some((timestamp, ev.event, ev.duration, false)),
        }
        if let Some((_, event, duration, reported)) = self.current.as_mut() {
            *duration = (*duration).max(ev.duration);
            // When this call already reports the previous event, this one's end is left
            // for its repeated end packets.
            if ev.end && !*reported && out.is_none() {
                *reported = true;
                out = event_digit(*event).map(|digit| ReceivedDigit {
                    digit,
                    duration: u32::from(*duration),
                });
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy)]
struct Sending {
    event: u8,
    start_ts: u32,
    total: u32,
    elapsed: u32,
    ends_sent: u8,
    first: bool,
}

/// One packet of an outgoing event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// Payload bytes written.
    pub len: usize,
    /// RTP timestamp (the event's start, for every packet of it).
    pub timestamp: u32,
    /// Marker bit (first packet of the event).
    pub marker: bool,
    /// This is an end packet.
    pub end: bool,
}

/// Produces the packets of one telephone event, one per packet interval.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    samples_per_packet: u32,
    volume: u8,
    sending: Option<Sending>,
}

impl DtmfSender {
    /// A sender whose packets each cover `samples_per_packet` RTP timestamp units.
    pub fn new(samples_per_packet: u32) -> Self {
        Self {
            samples_per_packet: samples_per_packet.max(1),
            volume: 10,
            sending: None,
        }
    }

    /// True while an event is being sent.
    pub fn is_active(&self) -> bool {
        self.sending.is_some()
    }

    /// Starts sending `digit` for `duration` timestamp units (clamped to 1..=65535),
    /// with the event's timestamp `start_ts`.
    pub fn start(&mut self, digit: char, duration: u32, start_ts: u32) -> Result<(), DtmfError> {
        let event = digit_event(digit).ok_or(DtmfError::NotADigit(digit))?;
        if self.sending.is_some() {
            return Err(DtmfError::Busy);
        }
        self.sending = Some(Sending {
            event,
            start_ts,
            total: duration.clamp(1, 0xffff),
            elapsed: 0,
            ends_sent: 0,
            first: true,
        });
        Ok(())
    }

    /// Writes the next packet's payload into `out`; `None` when no event is active.
    pub fn next_packet(&mut self, out: &mut [u8]) -> Result<Option<DtmfPacket>, DtmfError> {
        let Some(s) = self.sending.as_mut() else {
            return Ok(None);
        };
        s.elapsed = (s.elapsed + self.samples_per_packet).min(s.total);
        let end = s.elapsed >= s.total;
        if end {
            s.ends_sent += 1;
        }
        let ev = TelephoneEvent {
            event: s.event,
            end,
            volume: self.volume,
            duration: s.elapsed as u16,
        };
        let len = ev.write(out)?;
        let pkt = DtmfPacket {
            len,
            timestamp: s.start_ts,
            marker: s.first,
            end,
        };
        s.first = false;
        if s.ends_sent >= END_REPEATS {
            self.sending = None;
        }
        Ok(Some(pkt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_map_both_ways() {
        for (i, d) in "0123456789*#ABCD".chars().enumerate() {
            assert_eq!(digit_event(d), Some(i as u8));
            assert_eq!(event_digit(i as u8), Some(d));
        }
        assert_eq!(digit_event('a'), Some(12));
        assert_eq!(digit_event('x'), None);
        assert_eq!(event_digit(16), None);
    }

    #[test]
    fn rfc4733_payload_layout() {
        // Digit 5, end, volume 10, duration 800: 05 8a 03 20
        let ev = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        let mut b = [0u8; 4];
        ev.write(&mut b).unwrap();
        assert_eq!(b, [0x05, 0x8a, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&b).unwrap(), ev);
        assert_eq!(TelephoneEvent::parse(&b[..3]), Err(DtmfError::TooShort(3)));
    }

    #[test]
    fn sender_to_receiver_reports_each_digit_once() {
        let mut tx = DtmfSender::new(160);
        let mut rx = DtmfReceiver::new();
        let mut got = Vec::new();
        let mut buf = [0u8; 4];
        for (n, d) in "19#".chars().enumerate() {
            tx.start(d, 800, 1000 + n as u32 * 4000).unwrap();
            assert_eq!(tx.start('2', 800, 0), Err(DtmfError::Busy));
            let mut packets = 0;
            while let Some(p) = tx.next_packet(&mut buf).unwrap() {
                assert_eq!(p.marker, packets == 0);
                assert_eq!(p.timestamp, 1000 + n as u32 * 4000);
                packets += 1;
                if let Some(r) = rx.handle(p.timestamp, &buf).unwrap() {
                    got.push(r);
                }
            }
            assert_eq!(packets, 5 + 2); // 4 progress + 3 end packets for 800 units / 160
        }
        assert_eq!(
            got,
            vec![
                ReceivedDigit {
                    digit: '1',
                    duration: 800
                },
                ReceivedDigit {
                    digit: '9',
                    duration: 800
                },
                ReceivedDigit {
                    digit: '#',
                    duration: 800
                },
            ]
        );
    }

    #[test]
    fn lost_end_packets_still_report_on_next_event() {
        let mut rx = DtmfReceiver::new();
        let start = |e| [e, 0x0a, 0, 160];
        assert_eq!(rx.handle(100, &start(3)).unwrap(), None);
        assert_eq!(rx.handle(100, &start(3)).unwrap(), None);
        let r = rx.handle(900, &start(4)).unwrap();
        assert_eq!(
            r,
            Some(ReceivedDigit {
                digit: '3',
                duration: 160
            })
        );
        assert_eq!(
            rx.handle(900, &[4, 0x8a, 1, 0]).unwrap().map(|d| d.digit),
            Some('4')
        );
        assert_eq!(rx.handle(900, &[4, 0x8a, 1, 0]).unwrap(), None);
        assert_eq!(rx.handle(900, &[4, 0x8a, 1, 0]).unwrap(), None);
        assert!(rx.handle(1, &[1]).is_err());
    }

    #[test]
    fn flush_reports_an_unended_event_once() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.flush(), None);
        rx.handle(100, &[7, 0x0a, 1, 64]).unwrap();
        assert_eq!(
            rx.flush(),
            Some(ReceivedDigit {
                digit: '7',
                duration: 320
            })
        );
        assert_eq!(rx.flush(), None);
        // Its late end packet is not reported again.
        assert_eq!(rx.handle(100, &[7, 0x8a, 1, 64]).unwrap(), None);
    }

    #[test]
    fn new_event_starting_with_end_is_reported_on_its_repeat() {
        let mut rx = DtmfReceiver::new();
        assert_eq!(rx.handle(100, &[3, 0x0a, 0, 160]).unwrap(), None);
        // Event at 900 arrives as end packets only: the first flushes '3', the second reports '4'.
        assert_eq!(
            rx.handle(900, &[4, 0x8a, 1, 0]).unwrap().map(|d| d.digit),
            Some('3')
        );
        assert_eq!(
            rx.handle(900, &[4, 0x8a, 1, 0]).unwrap().map(|d| d.digit),
            Some('4')
        );
        assert_eq!(rx.handle(900, &[4, 0x8a, 1, 0]).unwrap(), None);
    }

    /// The payload format of RFC 4733 section 2.3 (event, E/R/volume, duration), with an
    /// update sequence for one digit as section 2.5 describes it, and tampered twins.
    mod rfc4733 {
        use super::super::*;

        // Digit 9, volume 7: updates every 400 units, then three end packets at 1600.
        const SEQUENCE: [[u8; 4]; 7] = [
            [0x09, 0x07, 0x01, 0x90],
            [0x09, 0x07, 0x03, 0x20],
            [0x09, 0x07, 0x04, 0xb0],
            [0x09, 0x07, 0x06, 0x40],
            [0x09, 0x87, 0x06, 0x40],
            [0x09, 0x87, 0x06, 0x40],
            [0x09, 0x87, 0x06, 0x40],
        ];

        #[test]
        fn vector_reports_digit_once() {
            let mut rx = DtmfReceiver::new();
            let got: Vec<_> = SEQUENCE
                .iter()
                .filter_map(|p| rx.handle(0x1234, p).unwrap())
                .collect();
            assert_eq!(
                got,
                vec![ReceivedDigit {
                    digit: '9',
                    duration: 1600
                }]
            );
            let ev = TelephoneEvent::parse(&SEQUENCE[4]).unwrap();
            assert_eq!(
                ev,
                TelephoneEvent {
                    event: 9,
                    end: true,
                    volume: 7,
                    duration: 1600
                }
            );
        }

        #[test]
        fn tampered_twins() {
            // Event 17 (not a DTMF digit) is never reported as one.
            let mut rx = DtmfReceiver::new();
            for p in SEQUENCE {
                let mut t = p;
                t[0] = 17;
                assert_eq!(rx.handle(0x1234, &t).unwrap(), None);
            }
            // Without the E bit nothing is reported until the next event starts.
            let mut rx = DtmfReceiver::new();
            for p in SEQUENCE {
                let mut t = p;
                t[1] &= 0x7f;
                assert_eq!(rx.handle(0x1234, &t).unwrap(), None);
            }
            assert_eq!(
                rx.handle(0x9999, &SEQUENCE[0]).unwrap().map(|d| d.digit),
                Some('9')
            );
            assert!(TelephoneEvent::parse(&SEQUENCE[0][..2]).is_err());
        }
    }
}
