//! Finding every fault in a configuration file and naming its key and line.
//!
//! Syntax errors stop parsing (one fault). Type errors and unknown keys come from serde
//! one at a time, so after each one the offending key/value (or table) is blanked out
//! in a copy of the text — newlines kept, so every later line number is unchanged —
//! and deserialisation is retried, up to [`MAX_FAULTS`] times. Semantic checks run on
//! the parsed config and locate their key with `toml_edit`'s spans.

use std::ops::Range;
use std::path::Path;

use toml_edit::{ImDocument, Item, Table};

use super::{Config, ProviderConfig, ProviderKind};
use crate::numbers::parse_e164;

/// Most faults reported for one file.
pub const MAX_FAULTS: usize = 50;

/// One fault, naming the key (dotted path) and the 1-based line when known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigFault {
    /// Dotted key, e.g. `media.rtp_port_min`.
    pub key: String,
    /// 1-based line, when the key is in the file.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// A key in the document: its dotted path and the byte range from the key (or table
/// header) to the end of its value (or last child).
struct Entry {
    path: String,
    range: Range<usize>,
}

fn collect(table: &Table, prefix: &str, out: &mut Vec<Entry>) -> Option<usize> {
    let mut end_max: Option<usize> = None;
    for (k, item) in table.iter() {
        let path = if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        };
        let key_start = table
            .get_key_value(k)
            .and_then(|(key, _)| key.span())
            .map(|s| s.start);
        let (start, end) = match item {
            Item::Table(t) => {
                let child_end = collect(t, &path, out);
                let start = t.span().map(|s| s.start).or(key_start);
                let end = child_end.or(t.span().map(|s| s.end));
                (start, end)
            }
            Item::ArrayOfTables(a) => {
                let mut end = None;
                for (i, t) in a.iter().enumerate() {
                    let e = collect(t, &format!("{path}[{i}]"), out);
                    end = e.or(t.span().map(|s| s.end)).max(end);
                }
                (a.span().map(|s| s.start).or(key_start), end)
            }
            Item::Value(v) => (key_start, v.span().map(|s| s.end)),
            Item::None => (None, None),
        };
        if let (Some(s), Some(e)) = (start, end) {
            out.push(Entry {
                path,
                range: s..e.max(s),
            });
            end_max = end_max.max(Some(e));
        }
    }
    end_max
}

fn entries(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    if let Ok(doc) = ImDocument::parse(text) {
        collect(doc.as_table(), "", &mut out);
    }
    out
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The innermost entry containing `offset`.
fn entry_at(entries: &[Entry], offset: usize) -> Option<&Entry> {
    entries
        .iter()
        .filter(|e| e.range.start <= offset && offset < e.range.end.max(e.range.start + 1))
        .min_by_key(|e| e.range.len())
}

/// Line of the dotted `key` (or of its nearest present parent).
pub(super) fn locate(text: &str, key: &str) -> Option<usize> {
    let all = entries(text);
    let mut k = key;
    loop {
        if let Some(e) = all.iter().find(|e| e.path == k) {
            return Some(line_of(text, e.range.start));
        }
        k = &k[..k.rfind('.')?];
    }
}

/// Deserialises, collecting every type error / unknown key (see the module docs).
pub(super) fn parse(text: &str) -> Result<Config, Vec<ConfigFault>> {
    if let Err(e) = ImDocument::parse(text) {
        let line = e.span().map(|s| line_of(text, s.start));
        return Err(vec![ConfigFault {
            key: "(syntax)".to_owned(),
            line,
            message: e.message().trim().to_owned(),
        }]);
    }
    let mut work = text.to_owned();
    let mut faults = Vec::new();
    for _ in 0..MAX_FAULTS {
        match toml::from_str::<Config>(&work) {
            Ok(c) if faults.is_empty() => return Ok(c),
            Ok(_) => return Err(faults),
            Err(e) => {
                let all = entries(&work);
                let hit = e.span().and_then(|s| entry_at(&all, s.start));
                let message = e.message().trim().to_owned();
                match hit {
                    Some(entry) => {
                        let line = Some(line_of(&work, entry.range.start));
                        if faults
                            .iter()
                            .any(|f: &ConfigFault| f.key == entry.path && f.line == line)
                        {
                            // Blanking did not remove the fault: stop rather than repeat it.
                            return Err(faults);
                        }
                        faults.push(ConfigFault {
                            key: entry.path.clone(),
                            line: Some(line_of(&work, entry.range.start)),
                            message,
                        });
                        // Blank the entry, keeping newlines so line numbers hold.
                        let r = entry.range.clone();
                        let blanked: String = work[r.clone()]
                            .chars()
                            .map(|c| if c == '\n' { '\n' } else { ' ' })
                            .collect();
                        work.replace_range(r, &blanked);
                    }
                    None => {
                        faults.push(ConfigFault {
                            key: "(file)".to_owned(),
                            line: e.span().map(|s| line_of(&work, s.start)),
                            message,
                        });
                        return Err(faults);
                    }
                }
            }
        }
    }
    Err(faults)
}

fn check_provider(role: &str, p: &ProviderConfig, faults: &mut Vec<(String, String)>) {
    if p.kind == ProviderKind::Watson {
        match &p.url {
            None => faults.push((
                format!("providers.{role}.url"),
                "required when kind = \"watson\"".to_owned(),
            )),
            Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => faults.push((
                format!("providers.{role}.url"),
                format!("{u:?} is not an http(s) URL"),
            )),
            Some(_) => {}
        }
        let schemes = [
            p.apikey.is_some(),
            p.bearer_token.is_some(),
            p.username.is_some() || p.password.is_some(),
        ];
        if schemes.iter().filter(|s| **s).count() > 1 {
            faults.push((
                format!("providers.{role}.apikey"),
                "give one of apikey, bearer_token, or username + password".to_owned(),
            ));
        }
        if p.username.is_some() != p.password.is_some() {
            faults.push((
                format!("providers.{role}.username"),
                "username and password go together".to_owned(),
            ));
        }
        if let Some(u) = &p.iam_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                faults.push((
                    format!("providers.{role}.iam_url"),
                    format!("{u:?} is not an http(s) URL"),
                ));
            }
        }
        for (key, v) in [
            ("connect_timeout_ms", p.connect_timeout_ms),
            ("first_byte_timeout_ms", p.first_byte_timeout_ms),
            ("idle_timeout_ms", p.idle_timeout_ms),
        ] {
            if let Some(ms) = v {
                if !(1..=600_000).contains(&ms) {
                    faults.push((
                        format!("providers.{role}.{key}"),
                        format!("{ms}: must be 1..=600000 ms"),
                    ));
                }
            }
        }
        if role == "assistant" && p.assistant_id.is_none() && p.environment_id.is_none() {
            faults.push((
                "providers.assistant.environment_id".to_owned(),
                "an environment_id (or assistant_id) is required when kind = \"watson\"".to_owned(),
            ));
        }
    }
}

/// Semantic checks on a parsed config; faults located in `text`.
pub(super) fn validate(c: &Config, text: &str, base: Option<&Path>) -> Vec<ConfigFault> {
    let mut f: Vec<(String, String)> = Vec::new();
    if c.instance_id.trim().is_empty() {
        f.push(("instance_id".into(), "must not be empty".into()));
    }
    match (&c.sip.tls_cert, &c.sip.tls_key) {
        (Some(_), None) => f.push(("sip.tls_key".into(), "required with sip.tls_cert".into())),
        (None, Some(_)) => f.push(("sip.tls_cert".into(), "required with sip.tls_key".into())),
        _ => {}
    }
    for (key, path) in [
        ("sip.tls_cert", &c.sip.tls_cert),
        ("sip.tls_key", &c.sip.tls_key),
    ] {
        if let Some(p) = path {
            let full = match base {
                Some(b) if p.is_relative() => b.join(p),
                _ => p.clone(),
            };
            if !full.is_file() {
                f.push((
                    key.into(),
                    format!("{} is not a readable file", full.display()),
                ));
            }
        }
    }
    if c.sip.udp.is_empty() && c.sip.tcp.is_empty() && c.sip.tls.is_empty() {
        f.push((
            "sip".into(),
            "no SIP listener (udp, tcp and tls are all empty)".into(),
        ));
    }
    if c.media.cores == Some(0) {
        f.push(("media.cores".into(), "must be at least 1".into()));
    }
    if c.media.rtp_port_min < 1024 || c.media.rtp_port_min % 2 != 0 {
        f.push((
            "media.rtp_port_min".into(),
            format!("{} must be an even port ≥ 1024", c.media.rtp_port_min),
        ));
    }
    if c.media.opus_complexity > 10 {
        f.push((
            "media.opus_complexity".into(),
            format!("{} must be 0..=10", c.media.opus_complexity),
        ));
    }
    if c.media.rtp_port_max <= c.media.rtp_port_min {
        f.push((
            "media.rtp_port_max".into(),
            format!(
                "{} must be above rtp_port_min ({})",
                c.media.rtp_port_max, c.media.rtp_port_min
            ),
        ));
    }
    if let Some(a) = c.media.advertised_address {
        if a.is_unspecified() {
            f.push((
                "media.advertised_address".into(),
                "must be a concrete address".into(),
            ));
        }
    }
    check_provider("stt", &c.providers.stt, &mut f);
    check_provider("tts", &c.providers.tts, &mut f);
    check_provider("assistant", &c.providers.assistant, &mut f);
    if let Some(t) = &c.admin.token {
        if t.0.len() < 16 {
            f.push((
                "admin.token".into(),
                "must be at least 16 characters".into(),
            ));
        }
    }
    if c.logging.ring_lines == 0 || c.logging.ring_lines > 1_000_000 {
        f.push((
            "logging.ring_lines".into(),
            "must be between 1 and 1,000,000".into(),
        ));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&c.logging.level) {
        f.push(("logging.level".into(), e.to_string()));
    }
    for n in &c.numbers.initial {
        if let Err(e) = parse_e164(n) {
            f.push(("numbers.initial".into(), format!("{n:?}: {e}")));
        }
    }
    if let Err(errs) = c.integration.validate() {
        for e in errs {
            f.push((format!("integration.{}", e.field), e.reason));
        }
    }
    f.into_iter()
        .map(|(key, message)| ConfigFault {
            line: locate(text, &key),
            key,
            message,
        })
        .collect()
}
