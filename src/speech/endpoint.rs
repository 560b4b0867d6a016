//! Energy-based speech endpointing over 10 ms windows, sans-IO: samples in, speech
//! start/end out. The noise floor adapts (a slow minimum tracker), so the threshold follows
//! line noise; speech starts after 30 ms above it and ends after a configured silence.

/// A boundary found in the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// Speech began `n` samples before the end of the last push.
    Start,
    /// The configured silence followed speech.
    End,
}

/// Finds where speech starts and ends.
#[derive(Debug, Clone)]
pub struct Endpointer {
    window: usize,
    acc: f64,
    acc_n: usize,
    floor: f64,
    in_speech: bool,
    loud_windows: u32,
    quiet_windows: u32,
    end_windows: u32,
    /// Windows since speech last ended (or since the start) without speech.
    idle_windows: u64,
}

/// RMS below which a window is never speech (i16 units).
const ABS_MIN_RMS: f64 = 300.0;

impl Endpointer {
    /// For audio at `rate` Hz; `end_silence_ms` of non-speech ends an utterance.
    pub fn new(rate: u32, end_silence_ms: u32) -> Self {
        Endpointer {
            window: (rate / 100) as usize,
            acc: 0.0,
            acc_n: 0,
            floor: ABS_MIN_RMS / 3.0,
            in_speech: false,
            loud_windows: 0,
            quiet_windows: 0,
            end_windows: (end_silence_ms / 10).max(1),
            idle_windows: 0,
        }
    }

    /// Whether the last window was inside speech.
    pub fn in_speech(&self) -> bool {
        self.in_speech
    }

    /// Milliseconds of audio without speech since the last utterance (or the start).
    pub fn idle_ms(&self) -> u64 {
        self.idle_windows * 10
    }

    /// Feed samples; boundaries found, in order, are appended to `out`.
    pub fn push(&mut self, pcm: &[i16], out: &mut Vec<Boundary>) {
        for &s in pcm {
            self.acc += (s as f64) * (s as f64);
            self.acc_n += 1;
            if self.acc_n == self.window {
                let rms = (self.acc / self.window as f64).sqrt();
                self.acc = 0.0;
                self.acc_n = 0;
                self.window_done(rms, out);
            }
        }
    }

    fn window_done(&mut self, rms: f64, out: &mut Vec<Boundary>) {
        // Floor: follow quiet windows quickly, loud ones very slowly.
        if rms < self.floor {
            self.floor = 0.7 * self.floor + 0.3 * rms.max(1.0);
        } else {
            self.floor *= 1.002;
        }
        let loud = rms > ABS_MIN_RMS.max(self.floor * 4.0);
        if self.in_speech {
            if loud {
                self.quiet_windows = 0;
            } else {
                self.quiet_windows += 1;
                if self.quiet_windows >= self.end_windows {
                    self.in_speech = false;
                    self.quiet_windows = 0;
                    self.loud_windows = 0;
                    self.idle_windows = 0;
                    out.push(Boundary::End);
                }
            }
        } else {
            self.idle_windows += 1;
            if loud {
                self.loud_windows += 1;
                if self.loud_windows >= 3 {
                    self.in_speech = true;
                    self.quiet_windows = 0;
                    out.push(Boundary::Start);
                }
            } else {
                self.loud_windows = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u32, amp: f32) -> Vec<i16> {
        (0..ms * 8)
            .map(|i| ((i as f32 * 0.3).sin() * amp) as i16)
            .collect()
    }

    #[test]
    fn finds_start_and_end_over_noise() {
        let mut ep = Endpointer::new(8000, 300);
        let mut ev = Vec::new();
        ep.push(&tone(500, 100.0), &mut ev); // line noise
        assert!(ev.is_empty());
        ep.push(&tone(400, 6000.0), &mut ev);
        assert_eq!(ev, [Boundary::Start]);
        ep.push(&tone(200, 100.0), &mut ev);
        assert_eq!(
            ev,
            [Boundary::Start],
            "200 ms pause must not end the utterance"
        );
        ep.push(&tone(400, 100.0), &mut ev);
        assert_eq!(ev, [Boundary::Start, Boundary::End]);
        assert!(!ep.in_speech());
    }
}
