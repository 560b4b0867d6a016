//! `voxgate check-config`, SIGHUP reload and SIGTERM drain, against real processes and
//! signals. Own test binary: it signals itself.

#[path = "ops_common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Duration;

use common::{eventually, TempDir};
use voxgate::config::Config;
use voxgate::lifecycle::{bootstrap, spawn_signal_tasks};
use voxgate::settings::Plan;

#[test]
fn check_config_names_key_and_line_and_exits_non_zero() {
    let dir = TempDir::new("checkcfg");
    let bad = dir.0.join("bad.toml");
    std::fs::write(
        &bad,
        "instance_id = \"n1\"\n[media]\nrtp_port_min = \"x\"\n[admin]\nlisten = \"nowhere\"\n[integration]\nplan = { custom = 0 }\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxgate"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = bad.display().to_string();
    assert!(
        err.contains(&format!("{file}:3: media.rtp_port_min:")),
        "{err}"
    );
    assert!(err.contains(&format!("{file}:5: admin.listen:")), "{err}");
    // Type faults are reported first; once fixed, the semantic fault is reported.
    std::fs::write(&bad, "[integration]\nplan = { custom = 0 }\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxgate"))
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{file}:2: integration.plan:")),
        "{err}"
    );

    let good = dir.0.join("good.toml");
    std::fs::write(
        &good,
        "[sip]\nudp = [\"127.0.0.1:5070\"]\n[integration]\nplan = \"trial\"\ndisable_ringing = true\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxgate"))
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn kill(sig: &str) {
    let st = Command::new("kill")
        .args([sig, &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_settings_and_sigterm_drains() {
    let dir = TempDir::new("signals");
    let path = dir.0.join("voxgate.toml");
    let write = |extra: &str| {
        std::fs::write(
            &path,
            format!(
                "[data]\ndir = \"{}\"\n[admin]\ntoken = \"0123456789abcdef0123\"\n[integration]\n{extra}\n",
                dir.0.join("data").display()
            ),
        )
        .unwrap()
    };
    write("plan = \"trial\"");
    let config = Config::load(Some(&path)).unwrap();
    let ops = tokio::task::spawn_blocking(move || bootstrap(&config))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ops.live.settings().plan,
        Plan::Trial,
        "seeded from the file"
    );
    spawn_signal_tasks(
        Some(path.clone()),
        Duration::from_secs(30),
        ops.store.clone(),
        ops.live.clone(),
    )
    .unwrap();

    write("plan = \"enterprise\"\ndisable_ringing = true");
    kill("-HUP");
    let live = ops.live.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let live = live.clone();
            async move { live.settings().plan == Plan::Enterprise }
        })
        .await,
        "SIGHUP applied the new plan"
    );
    assert!(ops.live.settings().disable_ringing);

    // A faulty file is refused (seen in the log ring) and changes nothing; a later good
    // one applies.
    let ring = common::log_ring();
    write(&format!(
        "transfer_failure_message = \"{}\"",
        "x".repeat(1025)
    ));
    kill("-HUP");
    let needle = vec!["reload refused".to_owned()];
    assert!(
        eventually(Duration::from_secs(10), || {
            let hit = !ring.search(&needle, 1).is_empty();
            async move { hit }
        })
        .await,
        "the refusal was logged"
    );
    let refusal = ring.search(&needle, 1).remove(0);
    assert!(
        refusal.contains("integration.transfer_failure_message"),
        "{refusal}"
    );
    assert_eq!(ops.live.settings().plan, Plan::Enterprise, "unchanged");
    write("plan = \"plus\"");
    kill("-HUP");
    let live2 = ops.live.clone();
    let mut saw_bad = false;
    let ok = eventually(Duration::from_secs(10), || {
        let live = live2.clone();
        saw_bad |= live.settings().transfer_failure_message.len() > 1024;
        async move { live.settings().plan == Plan::Plus }
    })
    .await;
    assert!(ok && !saw_bad);
    let stored = ops
        .store
        .run(|s| s.load_integration())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.plan, Plan::Plus, "reload is stored too");

    assert!(ops.live.is_ready());
    kill("-TERM");
    let live3 = ops.live.clone();
    assert!(
        eventually(Duration::from_secs(10), || {
            let l = live3.clone();
            async move { l.is_draining() }
        })
        .await
    );
    assert!(!ops.live.is_ready());
    match ops.live.phase() {
        voxgate::live::Phase::Draining { deadline } => {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(left > Duration::from_secs(20) && left <= Duration::from_secs(30));
        }
        p => panic!("phase {p:?}"),
    }
}
