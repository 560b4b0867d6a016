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

#[test]
fn provider_credentials_and_timeouts() {
    use crate::credentials::{Credentials, IBM_IAM_URL};
    let c = Config::from_toml(
        r#"
[providers.stt]
kind = "watson"
url = "https://stt.example"
apikey = "k1"
iam_url = "https://iam.example/identity/token"
connect_timeout_ms = 1500
first_byte_timeout_ms = 2500
idle_timeout_ms = 3500
[providers.tts]
kind = "watson"
url = "http://127.0.0.1:9001"
username = "apikey"
password = "pw"
[providers.assistant]
kind = "watson"
url = "http://127.0.0.1:9002"
bearer_token = "tok"
environment_id = "env-1"
version = "2024-08-25"
"#,
        None,
    )
    .unwrap_or_else(|f| panic!("{f:#?}"));
    assert_eq!(
        c.providers.stt.credentials(),
        Credentials::IamApiKey {
            api_key: "k1".into(),
            iam_url: "https://iam.example/identity/token".into()
        }
    );
    let t = c.providers.stt.timeouts();
    assert_eq!(
        (t.connect, t.first_byte, t.idle),
        (
            Duration::from_millis(1500),
            Duration::from_millis(2500),
            Duration::from_millis(3500)
        )
    );
    assert_eq!(
        c.providers.tts.credentials(),
        Credentials::Basic {
            username: "apikey".into(),
            password: "pw".into()
        }
    );
    assert_eq!(
        c.providers.tts.timeouts(),
        crate::speech::Timeouts::default()
    );
    assert_eq!(
        c.providers.assistant.credentials(),
        Credentials::Bearer("tok".into())
    );
    // An API key alone goes to IBM Cloud's token endpoint; nothing at all is no auth.
    let mut p = ProviderConfig {
        apikey: Some(Secret("k".into())),
        ..ProviderConfig::default()
    };
    assert!(
        matches!(p.credentials(), Credentials::IamApiKey { iam_url, .. } if iam_url == IBM_IAM_URL)
    );
    p.apikey = None;
    assert_eq!(p.credentials(), Credentials::None);
}

#[test]
fn provider_credential_faults_name_the_key() {
    let faults = Config::from_toml(
        r#"
[providers.stt]
kind = "watson"
url = "https://stt.example"
apikey = "k1"
bearer_token = "t"
idle_timeout_ms = 0
[providers.tts]
kind = "watson"
url = "https://tts.example"
username = "apikey"
iam_url = "iam.example"
"#,
        None,
    )
    .unwrap_err();
    let keys: Vec<&str> = faults.iter().map(|f| f.key.as_str()).collect();
    for k in [
        "providers.stt.apikey",
        "providers.stt.idle_timeout_ms",
        "providers.tts.username",
        "providers.tts.iam_url",
    ] {
        assert!(keys.contains(&k), "{k} not in {faults:#?}");
    }
}

#[test]
fn provider_secrets_come_from_the_environment() {
    let mut c = Config::default();
    c.apply_env(|k| match k {
        "VOXGATE_TTS_BEARER_TOKEN" => Some("from-env".into()),
        "VOXGATE_ASSISTANT_PASSWORD" => Some("pw-env".into()),
        _ => None,
    });
    assert_eq!(
        c.providers.tts.credentials(),
        crate::credentials::Credentials::Bearer("from-env".into())
    );
    assert_eq!(
        c.providers
            .assistant
            .password
            .as_ref()
            .map(|s| s.0.as_str()),
        Some("pw-env")
    );
}
