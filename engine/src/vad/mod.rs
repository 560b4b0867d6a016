//! Speech-energy detector on decoded PCM, for barge-in.
//!
//! Each frame's energy (dBFS) is compared with an adaptive noise floor: a frame is speech
//! when it is [`SpeechDetectorConfig::margin_db`] above the floor and above an absolute
//! threshold. Speech starts after [`SpeechDetectorConfig::min_speech_ms`] of speech
//! frames and ends after [`SpeechDetectorConfig::hangover_ms`] without.

/// Detector parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeechDetectorConfig {
    /// dB above the noise floor that counts as speech.
    pub margin_db: f32,
    /// Absolute level below which nothing is speech (dBFS).
    pub floor_dbfs: f32,
    /// Speech needed before speech-start is reported.
    pub min_speech_ms: u32,
    /// Non-speech needed before speech-end is reported.
    pub hangover_ms: u32,
}

impl Default for SpeechDetectorConfig {
    fn default() -> Self {
        Self {
            margin_db: 12.0,
            floor_dbfs: -45.0,
            min_speech_ms: 60,
            hangover_ms: 500,
        }
    }
}

/// A speech boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpeechEvent {
    /// The caller started speaking.
    Start,
    /// The caller stopped speaking.
    End,
}

/// Adaptive energy speech detector.
#[derive(Debug, Clone)]
pub struct SpeechDetector {
    cfg: SpeechDetectorConfig,
    noise_db: f32,
    speaking: bool,
    run_ms: u32,
}

impl SpeechDetector {
    /// A detector with the given parameters; the noise floor starts at −70 dBFS.
    pub fn new(cfg: SpeechDetectorConfig) -> Self {
        Self {
            cfg,
            noise_db: -70.0,
            speaking: false,
            run_ms: 0,
        }
    }

    /// True between a start and an end.
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }

    /// Current noise floor estimate (dBFS).
    pub fn noise_floor_db(&self) -> f32 {
        self.noise_db
    }

    /// Energy of a frame in dBFS (−100 for silence).
    pub fn frame_dbfs(pcm: &[i16]) -> f32 {
        if pcm.is_empty() {
            return -100.0;
        }
        let sum: i64 = pcm.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
        let ms = sum as f64 / pcm.len() as f64 / (32768.0 * 32768.0);
        if ms <= 1e-10 {
            -100.0
        } else {
            (10.0 * ms.log10()) as f32
        }
    }

    /// Processes one frame of `pcm` sampled at `rate` Hz.
    pub fn process(&mut self, pcm: &[i16], rate: u32) -> Option<SpeechEvent> {
        if pcm.is_empty() || rate == 0 {
            return None;
        }
        let frame_ms = (pcm.len() as u64 * 1000 / u64::from(rate)) as u32;
        let db = Self::frame_dbfs(pcm);
        let is_speech = db > self.noise_db + self.cfg.margin_db && db > self.cfg.floor_dbfs;
        if !is_speech {
            // Track the floor: fast down, slow up.
            if db < self.noise_db {
                self.noise_db += (db - self.noise_db) * 0.5;
            } else {
                self.noise_db += (db - self.noise_db) * 0.05;
            }
            self.noise_db = self.noise_db.max(-90.0);
        } else {
            // Creep up very slowly during "speech", so a steady loud noise (a hum, a
            // line fault) is eventually learnt as the floor instead of latching speech on.
            self.noise_db += (db - self.noise_db) * 0.002;
        }
        if is_speech != self.speaking {
            self.run_ms += frame_ms;
            let need = if self.speaking {
                self.cfg.hangover_ms
            } else {
                self.cfg.min_speech_ms
            };
            if self.run_ms >= need {
                self.speaking = is_speech;
                self.run_ms = 0;
                return Some(if is_speech {
                    SpeechEvent::Start
                } else {
                    SpeechEvent::End
                });
            }
        } else {
            self.run_ms = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(amp: f32, noise: i16, seed: &mut u32) -> [i16; 160] {
        let mut f = [0i16; 160];
        for (i, s) in f.iter_mut().enumerate() {
            *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = ((*seed >> 16) as i16 % (noise.max(1))) as f32;
            *s = ((i as f32 * 0.35).sin() * amp + n) as i16;
        }
        f
    }

    #[test]
    fn speech_start_and_end_over_noise() {
        let mut d = SpeechDetector::new(SpeechDetectorConfig::default());
        let mut seed = 7;
        let mut events = Vec::new();
        // 1 s of background noise (~ -50 dBFS), 1 s speech (~ -16 dBFS), 1 s noise.
        for i in 0..150 {
            let amp = if (50..100).contains(&i) { 8000.0 } else { 0.0 };
            if let Some(e) = d.process(&frame(amp, 200, &mut seed), 8000) {
                events.push((i, e));
            }
        }
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0].1, SpeechEvent::Start);
        assert!(
            (52..=54).contains(&events[0].0),
            "start at frame {}",
            events[0].0
        );
        assert_eq!(events[1].1, SpeechEvent::End);
        assert!(
            (124..=126).contains(&events[1].0),
            "end at frame {}",
            events[1].0
        );
    }

    #[test]
    fn loud_steady_noise_is_not_speech() {
        let mut d = SpeechDetector::new(SpeechDetectorConfig::default());
        let mut seed = 3;
        // A steady -30 dBFS hum is first taken for speech, then learnt as the floor: speech
        // ends and never starts again.
        let mut late_starts = 0;
        let mut ended = false;
        for i in 0..1500 {
            let e = d.process(&frame(1000.0, 50, &mut seed), 8000);
            ended |= e == Some(SpeechEvent::End);
            if i > 1000 && e == Some(SpeechEvent::Start) {
                late_starts += 1;
            }
        }
        assert!(ended);
        assert!(!d.is_speaking());
        assert!(d.noise_floor_db() > -40.0);
        assert_eq!(late_starts, 0);
        // A short click (one frame) is not speech either.
        let mut q = SpeechDetector::new(SpeechDetectorConfig::default());
        assert_eq!(q.process(&frame(20000.0, 1, &mut seed), 8000), None);
        assert_eq!(q.process(&[0; 160], 8000), None);
        assert!(!q.is_speaking());
    }
}
