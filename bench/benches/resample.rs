//! Resampling one 20 ms frame: voxgate's polyphase FIR vs rubato (FFT, sinc, and
//! polynomial), all i16 in/out as the session uses them (rubato converts to/from f32).
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rubato::{
    FastFixedIn, FftFixedInOut, PolynomialDegree, Resampler as _, SincFixedIn,
    SincInterpolationParameters, SincInterpolationType, WindowFunction,
};
use voxgate_engine::codec::Resampler;

fn frame(rate: u32) -> Vec<i16> {
    let n = (rate / 50) as usize;
    (0..n)
        .map(|i| {
            ((i as f32 * 2.0 * std::f32::consts::PI * 440.0 / rate as f32).sin() * 9000.0) as i16
        })
        .collect()
}

fn n_out_max(n_in: usize, from: u32, to: u32) -> usize {
    (n_in as u64 * u64::from(to) / u64::from(from)) as usize * 2 + 16
}

/// i16 → f32 buffers → rubato → i16, as the session would have to use it.
struct F32Io {
    fin: Vec<Vec<f32>>,
    fout: Vec<Vec<f32>>,
    out16: Vec<i16>,
}

impl F32Io {
    fn run(
        &mut self,
        input: &[i16],
        mut r: impl FnMut(&[Vec<f32>], &mut [Vec<f32>]) -> usize,
    ) -> usize {
        for (d, &s) in self.fin[0].iter_mut().zip(input) {
            *d = f32::from(s) / 32768.0;
        }
        let n = r(&self.fin, &mut self.fout);
        for (d, &s) in self.out16.iter_mut().zip(&self.fout[0][..n]) {
            *d = (s * 32768.0).clamp(-32768.0, 32767.0) as i16;
        }
        n
    }
}

fn resample(c: &mut Criterion) {
    for (from, to) in [
        (8000u32, 16000u32),
        (16000, 8000),
        (8000, 48000),
        (48000, 8000),
    ] {
        let input = frame(from);
        let n_in = input.len();
        let mut ours = Resampler::new(from, to, n_in).unwrap();
        let mut out = vec![0i16; ours.max_output(n_in)];
        c.bench_function(&format!("resample_{from}_{to}_polyphase"), |b| {
            b.iter(|| black_box(ours.process(black_box(&input), &mut out).unwrap()))
        });

        let mut io = F32Io {
            fin: vec![vec![0f32; n_in]],
            fout: vec![vec![0f32; n_out_max(n_in, from, to)]],
            out16: vec![0i16; n_out_max(n_in, from, to)],
        };
        let mut fft = FftFixedInOut::<f32>::new(from as usize, to as usize, n_in, 1).unwrap();
        assert_eq!(fft.input_frames_next(), n_in);
        c.bench_function(&format!("resample_{from}_{to}_rubato_fft"), |b| {
            b.iter(|| {
                black_box(io.run(&input, |i, o| {
                    fft.process_into_buffer(i, o, None).unwrap().1
                }))
            })
        });

        let params = SincInterpolationParameters {
            sinc_len: 64,
            f_cutoff: 0.91,
            interpolation: SincInterpolationType::Linear,
            oversampling_factor: 128,
            window: WindowFunction::BlackmanHarris2,
        };
        let mut sinc =
            SincFixedIn::<f32>::new(f64::from(to) / f64::from(from), 1.0, params, n_in, 1).unwrap();
        c.bench_function(&format!("resample_{from}_{to}_rubato_sinc64"), |b| {
            b.iter(|| {
                black_box(io.run(&input, |i, o| {
                    sinc.process_into_buffer(i, o, None).unwrap().1
                }))
            })
        });

        let mut fast = FastFixedIn::<f32>::new(
            f64::from(to) / f64::from(from),
            1.0,
            PolynomialDegree::Linear,
            n_in,
            1,
        )
        .unwrap();
        c.bench_function(&format!("resample_{from}_{to}_rubato_linear"), |b| {
            b.iter(|| {
                black_box(io.run(&input, |i, o| {
                    fast.process_into_buffer(i, o, None).unwrap().1
                }))
            })
        });
    }
}

criterion_group!(benches, resample);
criterion_main!(benches);
