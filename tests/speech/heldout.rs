//! Accuracy on the held-out phrase set (never used while tuning), clean and at 5% packet
//! loss through the engine's jitter buffer with G.711 concealment; and whether the
//! embedded recogniser's confidence separates its right results from its wrong ones there.

use voxgate::speech::*;

use crate::common::*;

struct Outcome {
    ok: usize,
    total: usize,
    misses: Vec<String>,
    /// (final result right, its confidence) for every final.
    scored: Vec<(bool, f32)>,
}

async fn accuracy(stt: &PocketSphinxStt, loss: f64) -> Outcome {
    let mut out = Outcome {
        ok: 0,
        total: 0,
        misses: Vec::new(),
        scored: Vec::new(),
    };
    for (vi, voice) in HELD_OUT_VOICES.iter().enumerate() {
        for (pi, phrase) in HELD_OUT.iter().enumerate() {
            let pcm = speak_8k(phrase, voice).await;
            let pcm = telephone_path(&pcm, loss, (vi * 100 + pi) as u64);
            let (finals, _) = recognize(stt, &pcm, SampleRate::Hz8000)
                .await
                .expect("recognize");
            out.total += 1;
            let right = text_of(&finals) == *phrase;
            if right {
                out.ok += 1;
            } else {
                out.misses
                    .push(format!("{voice}: {phrase:?} -> {:?}", text_of(&finals)));
            }
            for f in &finals {
                let c = f.confidence.expect("a final result carries a confidence");
                assert!((0.0..=1.0).contains(&c), "{c}");
                out.scored.push((right && finals.len() == 1, c));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_out_accuracy_clean_and_at_5_percent_loss() {
    let stt = PocketSphinxStt::new(grammar());
    let clean = accuracy(&stt, 0.0).await;
    println!(
        "held-out accuracy, clean µ-law: {}/{}; misses {:?}",
        clean.ok, clean.total, clean.misses
    );
    let lossy = accuracy(&stt, 0.05).await;
    println!(
        "held-out accuracy, 5% loss through the jitter buffer: {}/{}; misses {:?}",
        lossy.ok, lossy.total, lossy.misses
    );
    assert!(
        clean.ok * 100 >= clean.total * 60,
        "clean {}/{}: {:#?}",
        clean.ok,
        clean.total,
        clean.misses
    );
    assert!(
        lossy.ok * 100 >= lossy.total * 55,
        "5% loss {}/{}: {:#?}",
        lossy.ok,
        lossy.total,
        lossy.misses
    );

    // Confidence, both conditions pooled.
    let scored: Vec<(bool, f32)> = clean.scored.into_iter().chain(lossy.scored).collect();
    let summary = ConfidenceSummary::of(&scored);
    println!("held-out confidence: {summary}");
    assert!(
        summary.right_median >= 0.5 && summary.wrong_median < 0.5,
        "confidence does not separate right from wrong results: {summary}"
    );
}
