//! Opus SDP parameters (RFC 7587 §6.1): the `a=fmtp` of `opus/48000/2`.
//!
//! Parameters describe what the side that writes them wants to *receive*
//! (`maxplaybackrate`, `stereo`, `useinbandfec`, `usedtx`, `maxaveragebitrate`) or will
//! send (`sprop-maxcapturerate`, `sprop-stereo`). Unknown parameters are ignored and bad
//! values fall back to the RFC defaults, as the RFC asks of receivers.

/// Parsed Opus fmtp parameters (RFC 7587 defaults where absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusFmtp {
    /// Highest audio rate the writer plays out (8000–48000; default 48000).
    pub max_playback_rate: u32,
    /// Highest rate the writer captures at (default 48000).
    pub sprop_max_capture_rate: u32,
    /// The writer wants stereo (we always send mono; default false).
    pub stereo: bool,
    /// The writer decodes in-band FEC: send it (default false).
    pub use_inband_fec: bool,
    /// The writer wants DTX (default false).
    pub use_dtx: bool,
    /// Highest average bit rate the writer wants to receive (6000–510000).
    pub max_average_bitrate: Option<u32>,
    /// Shortest packet time the writer wants (ms).
    pub min_ptime: Option<u32>,
}

impl Default for OpusFmtp {
    fn default() -> Self {
        Self {
            max_playback_rate: 48000,
            sprop_max_capture_rate: 48000,
            stereo: false,
            use_inband_fec: false,
            use_dtx: false,
            max_average_bitrate: None,
            min_ptime: None,
        }
    }
}

impl OpusFmtp {
    /// Parses the parameter part of an fmtp value (`maxplaybackrate=16000;stereo=0`).
    pub fn parse(params: &str) -> Self {
        let mut f = Self::default();
        for kv in params.split(';') {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim());
            let num = v.parse::<u32>().ok();
            let flag = v == "1";
            match k.to_ascii_lowercase().as_str() {
                "maxplaybackrate" => {
                    if let Some(n) = num.filter(|n| (8000..=48000).contains(n)) {
                        f.max_playback_rate = n;
                    }
                }
                "sprop-maxcapturerate" => {
                    if let Some(n) = num.filter(|n| (8000..=48000).contains(n)) {
                        f.sprop_max_capture_rate = n;
                    }
                }
                "stereo" => f.stereo = flag,
                "useinbandfec" => f.use_inband_fec = flag,
                "usedtx" => f.use_dtx = flag,
                "maxaveragebitrate" => {
                    f.max_average_bitrate = num.filter(|n| (6000..=510_000).contains(n));
                }
                "minptime" => f.min_ptime = num.filter(|n| (3..=120).contains(n)),
                _ => {}
            }
        }
        f
    }

    /// What we write: we play out and capture at `pcm_rate` (the speech side's rate),
    /// mono, decode in-band FEC, accept (do not ask for) DTX.
    pub fn ours(pcm_rate: u32) -> Self {
        Self {
            max_playback_rate: pcm_rate,
            sprop_max_capture_rate: pcm_rate,
            stereo: false,
            use_inband_fec: true,
            use_dtx: false,
            max_average_bitrate: None,
            min_ptime: Some(10),
        }
    }

    /// The fmtp parameter string.
    pub fn to_param_string(&self) -> String {
        let mut s = format!(
            "maxplaybackrate={};sprop-maxcapturerate={};stereo={};sprop-stereo=0;useinbandfec={};usedtx={}",
            self.max_playback_rate,
            self.sprop_max_capture_rate,
            u8::from(self.stereo),
            u8::from(self.use_inband_fec),
            u8::from(self.use_dtx),
        );
        if let Some(b) = self.max_average_bitrate {
            s.push_str(&format!(";maxaveragebitrate={b}"));
        }
        if let Some(p) = self.min_ptime {
            s.push_str(&format!(";minptime={p}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc7587_example_and_defaults() {
        let f = OpusFmtp::parse("maxplaybackrate=16000; sprop-maxcapturerate=16000; stereo=0; useinbandfec=1; usedtx=1; maxaveragebitrate=20000; minptime=10");
        assert_eq!(f.max_playback_rate, 16000);
        assert_eq!(f.sprop_max_capture_rate, 16000);
        assert!(!f.stereo && f.use_inband_fec && f.use_dtx);
        assert_eq!(f.max_average_bitrate, Some(20000));
        assert_eq!(f.min_ptime, Some(10));
        assert_eq!(OpusFmtp::parse(""), OpusFmtp::default());
        // Out-of-range and malformed values keep the defaults.
        let f = OpusFmtp::parse("maxplaybackrate=96000;maxaveragebitrate=5;usedtx=yes;junk;=;x=1");
        assert_eq!(f, OpusFmtp::default());
    }

    #[test]
    fn ours_round_trips() {
        let o = OpusFmtp::ours(16000);
        assert_eq!(OpusFmtp::parse(&o.to_param_string()), o);
        assert!(o.to_param_string().contains("useinbandfec=1"));
        assert!(o.to_param_string().contains("stereo=0"));
    }
}
