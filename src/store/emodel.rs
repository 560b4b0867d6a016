//! E-model MOS estimate (ITU-T G.107, simplified to delay, packet loss and codec).
//!
//! `R = 93.2 − Id − Ie,eff` (the default Ro − Is with no echo/noise terms), where
//! `Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)` for one-way mouth-to-ear delay `d` in ms,
//! and `Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)` with random loss (BurstR = 1).
//! MOS from R per G.107 Annex B: 1 for R < 0, 4.5 for R > 100, otherwise
//! `1 + 0.035R + R(R − 60)(100 − R)·7·10⁻⁶`.

use serde::{Deserialize, Serialize};

/// Codec of a stream, for its equipment-impairment factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaCodec {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
    /// Opus (narrowband/wideband VoIP mode).
    Opus,
}

impl MediaCodec {
    /// The record's codec for the engine's.
    pub fn of(codec: voxgate_engine::codec::CodecKind) -> MediaCodec {
        use voxgate_engine::codec::CodecKind;
        match codec {
            CodecKind::Pcma => MediaCodec::Pcma,
            CodecKind::Opus => MediaCodec::Opus,
            _ => MediaCodec::Pcmu,
        }
    }

    /// (Ie, Bpl): G.113 Appendix I values for G.711 with packet-loss concealment
    /// (Ie 0, Bpl 25.1). Opus has no G.113 entry; Ie 0 / Bpl 20 is our estimate for its
    /// built-in concealment at narrowband VoIP rates (documented, not standardised).
    pub fn impairment(self) -> (f64, f64) {
        match self {
            MediaCodec::Pcmu | MediaCodec::Pcma => (0.0, 25.1),
            MediaCodec::Opus => (0.0, 20.0),
        }
    }
}

/// The E-model rating factor R.
pub fn r_factor(one_way_delay_ms: f64, loss_percent: f64, codec: MediaCodec) -> f64 {
    let d = one_way_delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ppl = loss_percent.clamp(0.0, 100.0);
    let (ie, bpl) = codec.impairment();
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl);
    93.2 - id - ie_eff
}

/// MOS (1.0–4.5) from R.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6
    }
}

/// MOS estimate for a stream.
pub fn mos_estimate(one_way_delay_ms: f64, loss_percent: f64, codec: MediaCodec) -> f64 {
    mos_from_r(r_factor(one_way_delay_ms, loss_percent, codec))
}

#[cfg(test)]
mod g107 {
    use super::*;

    #[test]
    fn default_r_gives_the_g107_default_mos() {
        // G.107: all defaults give R = 93.2, MOS ≈ 4.41.
        let r = r_factor(0.0, 0.0, MediaCodec::Pcmu);
        assert!((r - 93.2).abs() < 1e-9);
        assert!((mos_from_r(r) - 4.409).abs() < 0.001, "{}", mos_from_r(r));
    }

    #[test]
    fn loss_and_delay_lower_the_score() {
        let clean = mos_estimate(20.0, 0.0, MediaCodec::Pcmu);
        let lossy = mos_estimate(20.0, 5.0, MediaCodec::Pcmu);
        let late = mos_estimate(300.0, 0.0, MediaCodec::Pcmu);
        assert!(lossy < clean && late < clean);
        // 5 % random loss on G.711+PLC: Ie,eff = 95·5/30.1 = 15.78 → R = 77.42.
        let r = r_factor(0.0, 5.0, MediaCodec::Pcmu);
        assert!((r - 77.42).abs() < 0.01, "{r}");
        // Tampered twin: the same loss must not score like a clean line.
        assert!((mos_from_r(r) - mos_from_r(93.2)).abs() > 0.3);
    }

    #[test]
    fn mos_is_clamped() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
        assert_eq!(mos_estimate(5000.0, 100.0, MediaCodec::Opus), 1.0);
    }

    #[test]
    fn the_record_codec_follows_the_negotiated_one() {
        use voxgate_engine::codec::CodecKind;
        assert_eq!(MediaCodec::of(CodecKind::Pcmu), MediaCodec::Pcmu);
        assert_eq!(MediaCodec::of(CodecKind::Pcma), MediaCodec::Pcma);
        assert_eq!(MediaCodec::of(CodecKind::Opus), MediaCodec::Opus);
        // Which matters: the same loss is scored with each codec's own Bpl.
        let g711 = mos_estimate(40.0, 5.0, MediaCodec::of(CodecKind::Pcmu));
        let opus = mos_estimate(40.0, 5.0, MediaCodec::of(CodecKind::Opus));
        assert!((opus - g711).abs() > 0.05, "opus {opus} g711 {g711}");
    }
}
