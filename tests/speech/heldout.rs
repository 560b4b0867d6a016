//! Accuracy on the held-out phrase set (never used while tuning), clean and at 5% packet
//! loss through the engine's jitter buffer with G.711 concealment.

use voxgate::speech::*;

use crate::common::*;

async fn accuracy(stt: &PocketSphinxStt, loss: f64) -> (usize, usize, Vec<String>) {
    let mut ok = 0;
    let mut total = 0;
    let mut misses = Vec::new();
    for (vi, voice) in HELD_OUT_VOICES.iter().enumerate() {
        for (pi, phrase) in HELD_OUT.iter().enumerate() {
            let pcm = speak_8k(phrase, voice).await;
            let pcm = telephone_path(&pcm, loss, (vi * 100 + pi) as u64);
            let (finals, _) = recognize(stt, &pcm, SampleRate::Hz8000)
                .await
                .expect("recognize");
            total += 1;
            if text_of(&finals) == *phrase {
                ok += 1;
            } else {
                misses.push(format!("{voice}: {phrase:?} -> {:?}", text_of(&finals)));
            }
        }
    }
    (ok, total, misses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_out_accuracy_clean_and_at_5_percent_loss() {
    let stt = PocketSphinxStt::new(grammar());
    let (ok, total, misses) = accuracy(&stt, 0.0).await;
    println!("held-out accuracy, clean µ-law: {ok}/{total}; misses {misses:?}");
    let (lok, ltotal, lmisses) = accuracy(&stt, 0.05).await;
    println!(
        "held-out accuracy, 5% loss through the jitter buffer: {lok}/{ltotal}; misses {lmisses:?}"
    );
    assert!(ok * 100 >= total * 60, "clean {ok}/{total}: {misses:#?}");
    assert!(
        lok * 100 >= ltotal * 55,
        "5% loss {lok}/{ltotal}: {lmisses:#?}"
    );
}
