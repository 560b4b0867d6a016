//! Call records (CDRs) and usage types, mirroring the seed's `cdr_logged` payload where
//! it applies (`reference/cdr-log-reference.md`): start/answer/stop times, Call-ID,
//! outcome, per-turn latencies, RTP stream summaries, injected custom data.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::emodel::{mos_estimate, MediaCodec};

/// Milliseconds since the Unix epoch (UTC).
pub type UnixMillis = i64;

/// How a call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum CallOutcome {
    /// The conversation ended normally (caller or assistant hung up).
    Completed,
    /// Handed to an agent with REFER and the transfer succeeded.
    Transferred,
    /// A transfer was attempted and failed.
    TransferFailed,
    /// The call failed (speech or assistant unreachable, media failure).
    CallFailed,
    /// Refused before answer with a SIP status (403, 486, 488, 503 ...).
    Rejected {
        /// SIP status code sent.
        status: u16,
    },
}

impl CallOutcome {
    /// Stable label (`completed`, `transferred`, `transfer_failed`, `call_failed`, `rejected`).
    pub fn label(&self) -> &'static str {
        match self {
            CallOutcome::Completed => "completed",
            CallOutcome::Transferred => "transferred",
            CallOutcome::TransferFailed => "transfer_failed",
            CallOutcome::CallFailed => "call_failed",
            CallOutcome::Rejected { .. } => "rejected",
        }
    }

    /// The SIP status of a rejection.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallOutcome::Rejected { status } => Some(*status),
            _ => None,
        }
    }

    /// Rebuilds an outcome from its label and status (storage form).
    pub fn from_parts(label: &str, status: Option<u16>) -> Option<Self> {
        Some(match label {
            "completed" => CallOutcome::Completed,
            "transferred" => CallOutcome::Transferred,
            "transfer_failed" => CallOutcome::TransferFailed,
            "call_failed" => CallOutcome::CallFailed,
            "rejected" => CallOutcome::Rejected {
                status: status.unwrap_or(0),
            },
            _ => return None,
        })
    }
}

/// Latencies of one conversation turn, in milliseconds (the CDR's `*_milliseconds`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TurnLatency {
    /// End of caller speech → final STT result.
    pub speech_to_text_ms: Option<u32>,
    /// Request sent → assistant response.
    pub assistant_ms: Option<u32>,
    /// Text sent → first synthesized audio.
    pub text_to_speech_ms: Option<u32>,
    /// What the caller said or keyed in this turn (absent for the welcome and events, and
    /// whenever log redaction is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// What the assistant said first in this turn (absent when it said nothing, and
    /// whenever log redaction is on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

/// Longest transcript text kept per turn and side, characters (longer text is cut).
pub const MAX_TRANSCRIPT_CHARS: usize = 2_000;

impl TurnLatency {
    /// Adds the turn's transcript: the caller's `input` and the assistant's first
    /// `response`, each cut to [`MAX_TRANSCRIPT_CHARS`]; empty text stays absent. With any
    /// log redaction on, no text is kept at all (what callers say may hold the numbers and
    /// names redaction hides).
    pub fn with_transcript(
        mut self,
        input: &str,
        response: &str,
        redaction: crate::pii::Redaction,
    ) -> Self {
        if redaction != crate::pii::Redaction::None {
            self.input = None;
            self.response = None;
            return self;
        }
        let keep = |t: &str| {
            let t = t.trim();
            (!t.is_empty()).then(|| t.chars().take(MAX_TRANSCRIPT_CHARS).collect::<String>())
        };
        self.input = keep(input);
        self.response = keep(response);
        self
    }
}

/// Statistics of one RTP direction (the CDR's `realtime_transport_network_summary`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamStats {
    /// Packets sent or received.
    pub packets: u64,
    /// Packets lost (estimate, from sequence gaps or RTCP).
    pub packets_lost: u64,
    /// Average interarrival jitter, ms.
    pub average_jitter_ms: f64,
    /// Maximum interarrival jitter, ms.
    pub maximum_jitter_ms: f64,
}

/// RTP statistics of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RtpStats {
    /// Codec used.
    pub codec: MediaCodec,
    /// Caller → gateway.
    pub inbound: StreamStats,
    /// Gateway → caller.
    pub outbound: StreamStats,
    /// Round-trip time from RTCP, ms, if known.
    pub rtt_ms: Option<f64>,
    /// Jitter-buffer playout delay, ms.
    pub playout_delay_ms: f64,
    /// SRTP in use.
    pub encrypted: bool,
}

impl RtpStats {
    /// E-model MOS estimate of the inbound stream: delay = RTT/2 (or 20 ms when unknown)
    /// + jitter-buffer delay + 20 ms packetization; loss = lost / (received + lost).
    pub fn mos(&self) -> f64 {
        let delay = self.rtt_ms.map_or(20.0, |r| r / 2.0) + self.playout_delay_ms + 20.0;
        let total = self.inbound.packets + self.inbound.packets_lost;
        let loss = if total == 0 {
            0.0
        } else {
            100.0 * self.inbound.packets_lost as f64 / total as f64
        };
        mos_estimate(delay, loss, self.codec)
    }
}

/// SIP details of a call (the CDR's `session_initiation_protocol`, `call.security`,
/// `x-global-sip-trunk-call-id` and `active_calls`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SipDetails {
    /// URI of the INVITE's From header (dropped with the caller number when numbers are
    /// not kept or are redacted).
    pub from_uri: Option<String>,
    /// URI of the INVITE's To header.
    pub to_uri: Option<String>,
    /// Trunk call id from `X-Twilio-CallSid`, `X-SID` or `X-Global-SIP-Trunk-Call-ID`.
    pub trunk_call_id: Option<String>,
    /// Calls up when this one started.
    pub active_calls: u32,
    /// Signaling over TLS.
    pub signaling_encrypted: bool,
    /// The trunk passed SIP digest authentication.
    pub sip_authenticated: bool,
}

/// A warning or error logged during the call (the CDR's `warnings_and_errors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdrWarning {
    /// Message id, e.g. `CWSMR0031W`.
    pub id: String,
    /// Text.
    pub message: String,
}

/// Maximum latencies over a call's turns (the CDR's `max_response_milliseconds`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxResponseMs {
    /// Assistant round trip.
    pub assistant: Option<u32>,
    /// Text to first synthesized audio.
    pub text_to_speech: Option<u32>,
    /// End of speech to final recognition.
    pub speech_to_text: Option<u32>,
}

/// What the call layer knows when the INVITE is admitted (or refused).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallStart {
    /// INVITE arrival, Unix ms.
    pub started_at: UnixMillis,
    /// Caller's number (From user part, normalised by the SIP layer).
    pub caller_number: String,
    /// Called number (E.164).
    pub called_number: String,
    /// SIP Call-ID.
    pub sip_call_id: String,
    /// Gateway instance (node) id.
    pub instance_id: String,
    /// SIP details.
    #[serde(default)]
    pub sip: SipDetails,
}

/// What the call layer knows when the call is over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEnd {
    /// BYE / final response time, Unix ms.
    pub ended_at: UnixMillis,
    /// Outcome.
    pub outcome: CallOutcome,
    /// Failure details, if any.
    pub failure_details: Option<String>,
    /// Conversation turns.
    pub turns: u32,
    /// Latencies of each turn.
    pub turn_latencies: Vec<TurnLatency>,
    /// RTP statistics (absent for calls that never had media).
    pub rtp: Option<RtpStats>,
    /// The assistant's `cdr_custom_data` context variable.
    pub cdr_custom_data: Option<serde_json::Value>,
    /// Warnings and errors logged during the call.
    #[serde(default)]
    pub warnings: Vec<CdrWarning>,
}

/// Row id of a call record (returned by `record_call_start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallRecordId(pub i64);

/// A stored call record, as `GET /v1/calls` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Row id.
    pub id: CallRecordId,
    /// INVITE arrival.
    pub started_at: UnixMillis,
    /// 200 OK sent, if answered.
    pub answered_at: Option<UnixMillis>,
    /// End, if ended.
    pub ended_at: Option<UnixMillis>,
    /// MD5 hex of the caller's number.
    pub caller_hash: String,
    /// Caller's number, unless redacted.
    pub caller_number: Option<String>,
    /// Called number.
    pub called_number: String,
    /// SIP Call-ID.
    pub sip_call_id: String,
    /// Gateway instance id.
    pub instance_id: String,
    /// Outcome (None while the call is up, or if the gateway died before the end).
    pub outcome: Option<CallOutcome>,
    /// Failure details.
    pub failure_details: Option<String>,
    /// Conversation turns.
    pub turns: u32,
    /// Per-turn latencies.
    pub turn_latencies: Vec<TurnLatency>,
    /// RTP statistics.
    pub rtp: Option<RtpStats>,
    /// E-model MOS estimate (from `rtp`).
    pub mos: Option<f64>,
    /// The assistant's cdr_custom_data.
    pub cdr_custom_data: Option<serde_json::Value>,
    /// SIP details.
    pub sip: SipDetails,
    /// Warnings and errors logged during the call.
    pub warnings: Vec<CdrWarning>,
}

impl CallRecord {
    /// Maximum per-provider latency over the turns.
    pub fn max_response_ms(&self) -> MaxResponseMs {
        let max =
            |f: fn(&TurnLatency) -> Option<u32>| self.turn_latencies.iter().filter_map(f).max();
        MaxResponseMs {
            assistant: max(|t| t.assistant_ms),
            text_to_speech: max(|t| t.text_to_speech_ms),
            speech_to_text: max(|t| t.speech_to_text_ms),
        }
    }
}

/// Filter for listing call records; all conditions are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallFilter {
    /// Started at or after (Unix ms).
    pub from: Option<UnixMillis>,
    /// Started before (Unix ms).
    pub to: Option<UnixMillis>,
    /// Caller or called number (E.164), or caller hash.
    pub number: Option<String>,
    /// Outcome label.
    pub outcome: Option<String>,
    /// Maximum rows (newest first); default 100, at most 10,000.
    pub limit: Option<u32>,
}

/// MD5 (128-bit, lower-case hex) of a caller number — the billing identity. The number
/// is normalised first: separators dropped, so `+1 958 555 0123` and `+19585550123`
/// hash the same; a non-numeric caller (anonymous, a SIP user name) is hashed as given.
pub fn caller_hash(number: &str) -> String {
    let t = number.trim();
    let normalised: String = if !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '.'))
    {
        t.chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    } else {
        t.to_owned()
    };
    hex::encode(Md5::digest(normalised.as_bytes()))
}

/// `YYYY-MM` of a Unix-ms time (UTC).
pub fn month_of(ms: UnixMillis) -> String {
    let (y, m, _) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}")
}

/// ISO 8601 `yyyy-MM-ddTHH:mm:ss.SSSZ` of a Unix-ms time, as the CDR reference writes times.
pub fn iso8601(ms: UnixMillis) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC only), `YYYY-MM-DD`, or integer Unix ms.
pub fn parse_time(s: &str) -> Option<UnixMillis> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut ms = days_from_civil(y, mo as u32, d as u32) * 86_400_000;
    if b.len() == 10 {
        return Some(ms);
    }
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    ms += (h * 3600 + mi * 60 + sec) * 1000;
    if b.len() > 20 {
        if b[19] != b'.' {
            return None;
        }
        let frac = s.get(20..b.len() - 1)?;
        if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let mut f: String = frac.chars().take(3).collect();
        while f.len() < 3 {
            f.push('0');
        }
        ms += f.parse::<i64>().ok()?;
    }
    Some(ms)
}

/// Validates `YYYY-MM` and returns it unchanged.
pub fn parse_month(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit)
    {
        let m: u32 = s[5..].parse().ok()?;
        (1..=12).contains(&m).then_some(s)
    } else {
        None
    }
}

// Howard Hinnant's civil-date algorithms.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Current time as Unix ms (for I/O layers; protocol code takes time as input).
pub fn now_millis() -> UnixMillis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_the_caller_number() {
        // RFC 1321 test vector, and a tampered twin.
        assert_eq!(
            hex::encode(Md5::digest(b"abc")),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(caller_hash("+1 958 555 0123"), caller_hash("+19585550123"));
        assert_ne!(caller_hash("+19585550123"), caller_hash("+19585550124"));
        assert_eq!(caller_hash("+19585550123").len(), 32);
    }

    #[test]
    fn transcript_is_kept_only_without_redaction() {
        use crate::pii::Redaction;
        let base = TurnLatency {
            assistant_ms: Some(120),
            ..TurnLatency::default()
        };
        let t = base
            .clone()
            .with_transcript(" my card number ", "Let me check.", Redaction::None);
        assert_eq!(t.input.as_deref(), Some("my card number"));
        assert_eq!(t.response.as_deref(), Some("Let me check."));
        assert_eq!(t.assistant_ms, Some(120));
        // The welcome turn has no caller input: the field stays absent on the wire.
        let w = base.clone().with_transcript("", "Hello.", Redaction::None);
        assert_eq!(w.input, None);
        let json = serde_json::to_value(&w).unwrap();
        assert!(json.get("input").is_none(), "{json}");
        assert_eq!(json["response"], "Hello.");
        for r in [Redaction::Partial, Redaction::Hash] {
            let red = base
                .clone()
                .with_transcript("my card number", "Let me check.", r);
            assert_eq!((red.input, red.response), (None, None), "{r:?}");
        }
        let long = "x".repeat(MAX_TRANSCRIPT_CHARS + 10);
        let cut = base.with_transcript(&long, "", Redaction::None);
        assert_eq!(cut.input.unwrap().len(), MAX_TRANSCRIPT_CHARS);
        assert_eq!(cut.response, None);
    }

    #[test]
    fn turn_latency_without_transcript_decodes_from_older_records() {
        let t: TurnLatency = serde_json::from_str(
            r#"{"speech_to_text_ms":5,"assistant_ms":null,"text_to_speech_ms":7}"#,
        )
        .unwrap();
        assert_eq!(t.speech_to_text_ms, Some(5));
        assert_eq!((t.input, t.response), (None, None));
    }

    #[test]
    fn times_round_trip() {
        let t = parse_time("2026-11-25T04:56:45.123Z").unwrap();
        assert_eq!(iso8601(t), "2026-11-25T04:56:45.123Z");
        assert_eq!(month_of(t), "2026-11");
        assert_eq!(parse_time("1970-01-01"), Some(0));
        assert_eq!(parse_time("2000-03-01T00:00:00Z"), Some(951_868_800_000));
        assert_eq!(parse_time("2026-13-01"), None);
        assert_eq!(parse_time("2026-11-25T04:56:45+01:00"), None);
        assert_eq!(parse_month("2026-11"), Some("2026-11"));
        assert_eq!(parse_month("2026-00"), None);
    }
}
