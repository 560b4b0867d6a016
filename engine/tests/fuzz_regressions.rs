//! Replays every committed fuzz crash (`tests/data/<target>/`) and every seed
//! (`fuzz/corpus/<target>/`) through the fuzz entry points, so a fixed crash stays fixed.

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 5] = [
    ("rtp", voxgate_engine::fuzz::rtp),
    ("rtcp", voxgate_engine::fuzz::rtcp),
    ("telephone_event", voxgate_engine::fuzz::telephone_event),
    ("jitter_ops", voxgate_engine::fuzz::jitter_ops),
    ("session", voxgate_engine::fuzz::session),
];

fn replay(dir: &Path, f: Target) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            f(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn replay_crashes_and_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, f) in TARGETS {
        let crashes = replay(&root.join("tests/data").join(name), f);
        let seeds = replay(&root.join("../fuzz/corpus").join(name), f);
        assert!(seeds >= 3, "{name}: only {seeds} seeds");
        eprintln!("{name}: {crashes} crash files, {seeds} seeds replayed");
    }
}

#[test]
fn entry_points_survive_edge_inputs() {
    for (_, f) in TARGETS {
        f(&[]);
        f(&[0xff; 3]);
        f(&[0x80; 64]);
        f(&(0..=255u8).collect::<Vec<_>>());
    }
}
