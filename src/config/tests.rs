use super::*;

#[test]
fn empty_file_is_the_embedded_defaults() {
    let c = Config::from_toml("", None).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.admin.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.sip.tls[0].port(), 5061);
    assert_eq!(c.numbers.initial, vec!["+19585550123".to_owned()]);
}

#[test]
fn every_fault_is_named_with_key_and_line() {
    let text = "\
instance_id = \"n1\"
[media]
rtp_port_min = \"twenty\"
rtp_port_max = 30000
bogus = 1

[admin]
listen = \"not an address\"

[integration]
plan = \"enterprise\"
transfer_failure_message = \"xx\"
";
    let faults = Config::from_toml(text, None).unwrap_err();
    let got: Vec<(String, Option<usize>)> =
        faults.iter().map(|f| (f.key.clone(), f.line)).collect();
    assert!(
        got.contains(&("media.rtp_port_min".into(), Some(3))),
        "{faults:#?}"
    );
    assert!(
        got.contains(&("media.bogus".into(), Some(5))),
        "{faults:#?}"
    );
    assert!(
        got.contains(&("admin.listen".into(), Some(8))),
        "{faults:#?}"
    );
    assert_eq!(faults.len(), 3, "{faults:#?}");
}

#[test]
fn semantic_faults_point_at_their_line() {
    let long = "a".repeat(1025);
    let text = format!(
        "[media]\nrtp_port_min = 20001\nrtp_port_max = 100\n\n[providers.stt]\nkind = \"watson\"\n\n[integration]\ntransfer_failure_message = \"{long}\"\nplan = {{ custom = 0 }}\n"
    );
    let faults = Config::from_toml(&text, None).unwrap_err();
    let find = |k: &str| faults.iter().find(|f| f.key == k).map(|f| f.line);
    assert_eq!(find("media.rtp_port_min"), Some(Some(2)), "{faults:#?}");
    assert_eq!(find("media.rtp_port_max"), Some(Some(3)));
    assert_eq!(
        find("providers.stt.url"),
        Some(Some(5)),
        "parent table line"
    );
    assert_eq!(find("integration.transfer_failure_message"), Some(Some(9)));
    assert_eq!(find("integration.plan"), Some(Some(10)));
}

#[test]
fn syntax_errors_name_the_line() {
    let faults = Config::from_toml("[media]\ncores = = 2\n", None).unwrap_err();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].line, Some(2));
}

#[test]
fn environment_overrides_secrets() {
    let mut c = Config::from_toml(
        "[integration]\nsip_auth = { username = \"trunk\", password = \"file\" }\n",
        None,
    )
    .unwrap();
    c.apply_env(|k| match k {
        "VOXGATE_ADMIN_TOKEN" => Some("t".repeat(20)),
        "VOXGATE_STT_APIKEY" => Some("stt-key".into()),
        "VOXGATE_DATA_DIR" => Some("/var/lib/voxgate".into()),
        "VOXGATE_SIP_AUTH_PASSWORD" => Some("env".into()),
        _ => None,
    });
    assert_eq!(c.admin.token, Some(Secret("t".repeat(20))));
    assert_eq!(c.providers.stt.apikey, Some(Secret("stt-key".into())));
    assert_eq!(c.data.dir, PathBuf::from("/var/lib/voxgate"));
    assert_eq!(c.integration.sip_auth.as_ref().unwrap().password, "env");
    assert!(!format!("{c:?}").contains("stt-key"));
}

#[test]
fn mutated_files_never_panic() {
    use rand::{Rng, SeedableRng};
    let base = "instance_id = \"n1\"\n[sip]\nudp = [\"127.0.0.1:5060\"]\n[media]\ncores = 2\nrtp_port_min = 20000\n[providers.stt]\nkind = \"watson\"\nurl = \"http://x\"\n[integration]\nplan = { custom = 3 }\nsip_auth = { username = \"u\", password = \"p\" }\n";
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let alphabet = b"[]{}=\"'.,#\n azAZ09_-+";
    let mut faulty = 0;
    for _ in 0..1000 {
        let mut b = base.as_bytes().to_vec();
        for _ in 0..rng.random_range(1..4) {
            let i = rng.random_range(0..b.len());
            b[i] = alphabet[rng.random_range(0..alphabet.len())];
        }
        let text = String::from_utf8(b).unwrap();
        if let Err(faults) = Config::from_toml(&text, None) {
            faulty += 1;
            assert!(!faults.is_empty());
            for f in &faults {
                assert!(
                    f.line
                        .is_none_or(|l| l >= 1 && l <= text.lines().count() + 1),
                    "{f:?}"
                );
            }
        }
    }
    assert!(faulty > 30);
}

#[test]
fn the_example_file_is_valid_and_equals_the_defaults() {
    let text = include_str!("../../voxgate.example.toml");
    let c = Config::from_toml(text, None).unwrap_or_else(|f| panic!("{f:#?}"));
    let mut expected = Config::default();
    expected.media.io_backend = IoBackend::Auto;
    assert_eq!(c, expected, "the example documents the defaults");
}

#[test]
fn opus_keys() {
    use crate::sip::ua::sdp_glue::OpusPolicy;
    let c = Config::from_toml("[media]\nopus = \"prefer\"\nopus_complexity = 3\n", None).unwrap();
    assert_eq!(c.media.opus, OpusPolicy::Prefer);
    assert_eq!(c.media.opus_complexity, 3);
    let d = Config::from_toml("", None).unwrap();
    assert_eq!(d.media.opus, OpusPolicy::Accept);
    assert_eq!(d.media.opus_complexity, 5);
    let faults = Config::from_toml("[media]\nopus_complexity = 11\n", None).unwrap_err();
    assert!(
        faults.iter().any(|f| f.key == "media.opus_complexity"),
        "{faults:?}"
    );
    assert!(Config::from_toml("[media]\nopus = \"maybe\"\n", None).is_err());
}
