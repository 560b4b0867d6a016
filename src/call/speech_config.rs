//! The call's speech configuration as the assistant changes it mid-call: the
//! `speech_to_text` and `text_to_speech` `configure` commands (and the legacy
//! `vgwActSetSTTConfig` / `vgwActSetTTSConfig`), with their update strategies.
//!
//! A [`SpeechConfig`] holds the configuration for the rest of the call and, after a
//! `*_once` update, an override for the next turn only. Root-level fields are the unit of
//! `replace` (a new `narrowband_recognize` object replaces the old one whole; fields not
//! named keep their value); `merge` merges objects field by field, recursively. What the
//! fields mean to a provider is read by [`SttSettings::from_config`] and
//! [`TtsSettings::from_config`].

use serde_json::{Map, Value};

use crate::assistant::UpdateStrategy;
use crate::speech::{RecognizeOptions, SynthesisRequest};

/// One service's configuration: for the rest of the call, and for the next turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpeechConfig {
    call: Map<String, Value>,
    next_turn: Option<Map<String, Value>>,
}

impl SpeechConfig {
    /// Applies a `configure` command.
    pub fn apply(&mut self, config: Map<String, Value>, strategy: UpdateStrategy) {
        match strategy {
            UpdateStrategy::Replace => {
                replace_roots(&mut self.call, config);
                // A lasting change also ends a pending one-turn override.
                self.next_turn = None;
            }
            UpdateStrategy::Merge => {
                merge(&mut self.call, config);
                self.next_turn = None;
            }
            UpdateStrategy::ReplaceOnce => {
                let mut once = self.call.clone();
                replace_roots(&mut once, config);
                self.next_turn = Some(once);
            }
            UpdateStrategy::MergeOnce => {
                let mut once = self.call.clone();
                merge(&mut once, config);
                self.next_turn = Some(once);
            }
        }
    }

    /// The configuration in force now.
    pub fn current(&self) -> &Map<String, Value> {
        self.next_turn.as_ref().unwrap_or(&self.call)
    }

    /// A turn went to the assistant: a one-turn override ends. Returns whether the
    /// configuration in force changed.
    pub fn end_turn(&mut self) -> bool {
        match self.next_turn.take() {
            Some(once) => once != self.call,
            None => false,
        }
    }
}

fn replace_roots(into: &mut Map<String, Value>, config: Map<String, Value>) {
    for (k, v) in config {
        into.insert(k, v);
    }
}

fn merge(into: &mut Map<String, Value>, config: Map<String, Value>) {
    for (k, v) in config {
        match (into.get_mut(&k), v) {
            (Some(Value::Object(old)), Value::Object(new)) => merge(old, new),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// The narrowband recognition parameters: `narrowband_recognize`, or the legacy `config`.
fn section<'a>(cfg: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Map<String, Value>> {
    keys.iter()
        .find_map(|k| cfg.get(*k))
        .and_then(Value::as_object)
}

/// Watson STT WebSocket query parameters other than the model and custom language
/// model, which [`RecognizeOptions`] carries as fields.
const STT_QUERY_PARAMETERS: &[&str] = &[
    "acoustic_customization_id",
    "version",
    "x-watson-learning-opt-out",
    "base_model_version",
];

/// Parameters the phone integration fixes; an assistant cannot change them.
const STT_FIXED_PARAMETERS: &[&str] = &[
    "action",
    "content-type",
    "interim_results",
    "continuous",
    "inactivity_timeout",
];

/// What the call's speech-to-text configuration asks of recognition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SttSettings {
    /// Model (`model`).
    pub model: Option<String>,
    /// Custom language model (`language_customization_id`, legacy `customization_id`).
    pub customization_id: Option<String>,
    /// Grammar known to the service (`grammar_name`).
    pub grammar_name: Option<String>,
    /// `smart_formatting`.
    pub smart_formatting: Option<bool>,
    /// Other query parameters (`acoustic_customization_id`, `version`, …).
    pub query: Vec<(String, String)>,
    /// Other start-message parameters, passed through.
    pub message: Map<String, Value>,
    /// Final results under this confidence are not sent to the assistant
    /// (`confidenceScoreThreshold`; 0 = all).
    pub confidence_threshold: f32,
}

impl SttSettings {
    /// Reads a configuration (see the module docs).
    pub fn from_config(cfg: &Map<String, Value>) -> Self {
        let mut s = SttSettings {
            confidence_threshold: ["confidenceScoreThreshold", "confidence_score_threshold"]
                .iter()
                .find_map(|k| cfg.get(*k).and_then(Value::as_f64))
                .unwrap_or(0.0)
                .clamp(0.0, 1.0) as f32,
            ..SttSettings::default()
        };
        let Some(params) = section(cfg, &["narrowband_recognize", "config"]) else {
            return s;
        };
        for (k, v) in params {
            let text = || match v {
                Value::String(t) => Some(t.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            };
            match k.as_str() {
                "model" => s.model = text(),
                "language_customization_id" | "customization_id" => s.customization_id = text(),
                "grammar_name" => s.grammar_name = text(),
                "smart_formatting" => s.smart_formatting = v.as_bool(),
                k if STT_QUERY_PARAMETERS.contains(&k) => {
                    if let Some(t) = text() {
                        s.query.push((k.to_owned(), t));
                    }
                }
                k if STT_FIXED_PARAMETERS.contains(&k) => {
                    tracing::warn!(
                        parameter = k,
                        "speech-to-text parameter fixed by the phone integration; not changed"
                    );
                }
                _ => {
                    s.message.insert(k.clone(), v.clone());
                }
            }
        }
        s
    }

    /// Lays these settings over the call's base options.
    pub fn apply_to(&self, opts: &mut RecognizeOptions) {
        if let Some(m) = &self.model {
            opts.model = Some(m.clone());
        }
        if let Some(c) = &self.customization_id {
            opts.customization_id = Some(c.clone());
        }
        if let Some(g) = &self.grammar_name {
            opts.grammar_name = Some(g.clone());
        }
        if let Some(f) = self.smart_formatting {
            opts.smart_formatting = f;
        }
        opts.extra_query.extend(self.query.iter().cloned());
        opts.extra_message.extend(self.message.clone());
    }
}

/// Watson TTS query parameters a `synthesize` configuration may set besides the voice.
const TTS_QUERY_PARAMETERS: &[&str] = &[
    "customization_id",
    "spell_out_mode",
    "rate_percentage",
    "pitch_percentage",
];

/// What the call's text-to-speech configuration asks of synthesis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TtsSettings {
    /// Voice (`voice`).
    pub voice: Option<String>,
    /// Other query parameters.
    pub query: Vec<(String, String)>,
}

impl TtsSettings {
    /// Reads a configuration: `synthesize`, or the legacy `config`.
    pub fn from_config(cfg: &Map<String, Value>) -> Self {
        let mut s = TtsSettings::default();
        let Some(params) = section(cfg, &["synthesize", "config"]) else {
            return s;
        };
        for (k, v) in params {
            let text = match v {
                Value::String(t) => t.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            match k.as_str() {
                "voice" => s.voice = Some(text),
                k if TTS_QUERY_PARAMETERS.contains(&k) => s.query.push((k.to_owned(), text)),
                k => tracing::warn!(
                    parameter = k,
                    "text-to-speech parameter not supported by the phone integration; ignored"
                ),
            }
        }
        s
    }

    /// Lays these settings over a request that carries the integration's voice.
    pub fn apply_to(&self, req: &mut SynthesisRequest) {
        if let Some(v) = &self.voice {
            req.voice = Some(v.clone());
        }
        req.extra_query.extend(self.query.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn replace_swaps_root_fields_and_keeps_the_others() {
        let mut c = SpeechConfig::default();
        c.apply(
            obj(json!({"narrowband_recognize": {"model": "a", "smart_formatting": true}, "x": 1})),
            UpdateStrategy::Replace,
        );
        c.apply(
            obj(json!({"narrowband_recognize": {"model": "b"}})),
            UpdateStrategy::Replace,
        );
        assert_eq!(
            c.current(),
            &obj(json!({"narrowband_recognize": {"model": "b"}, "x": 1}))
        );
    }

    #[test]
    fn merge_changes_only_the_named_fields() {
        let mut c = SpeechConfig::default();
        c.apply(
            obj(json!({"narrowband_recognize": {"model": "a", "smart_formatting": true}})),
            UpdateStrategy::Replace,
        );
        c.apply(
            obj(json!({"narrowband_recognize": {"language_customization_id": "cust"}})),
            UpdateStrategy::Merge,
        );
        assert_eq!(
            c.current(),
            &obj(
                json!({"narrowband_recognize": {"model": "a", "smart_formatting": true, "language_customization_id": "cust"}})
            )
        );
        assert!(!c.end_turn(), "a lasting change survives the turn");
    }

    #[test]
    fn once_strategies_last_one_turn() {
        let mut c = SpeechConfig::default();
        c.apply(
            obj(json!({"narrowband_recognize": {"model": "a"}})),
            UpdateStrategy::Replace,
        );
        c.apply(
            obj(json!({"narrowband_recognize": {"language_customization_id": "medical"}})),
            UpdateStrategy::MergeOnce,
        );
        let s = SttSettings::from_config(c.current());
        assert_eq!(s.model.as_deref(), Some("a"));
        assert_eq!(s.customization_id.as_deref(), Some("medical"));
        assert!(c.end_turn(), "the override ends with the turn");
        let s = SttSettings::from_config(c.current());
        assert_eq!(s.customization_id, None);
        assert!(!c.end_turn());

        c.apply(
            obj(json!({"narrowband_recognize": {"smart_formatting": true}})),
            UpdateStrategy::ReplaceOnce,
        );
        let s = SttSettings::from_config(c.current());
        assert_eq!(s.model, None, "replace_once replaced the root field whole");
        assert_eq!(s.smart_formatting, Some(true));
        c.end_turn();
        assert_eq!(
            SttSettings::from_config(c.current()).model.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn stt_parameters_go_where_watson_takes_them() {
        let cfg = obj(json!({
            "narrowband_recognize": {
                "model": "en-US_Telephony",
                "language_customization_id": "81d3630",
                "acoustic_customization_id": "e4766090",
                "profanity_filter": false,
                "interim_results": false,
                "end_of_phrase_silence_time": 0.8
            },
            "confidenceScoreThreshold": 0.4
        }));
        let s = SttSettings::from_config(&cfg);
        let mut opts = RecognizeOptions::default();
        s.apply_to(&mut opts);
        assert_eq!(opts.model.as_deref(), Some("en-US_Telephony"));
        assert_eq!(opts.customization_id.as_deref(), Some("81d3630"));
        assert_eq!(
            opts.extra_query,
            vec![("acoustic_customization_id".into(), "e4766090".into())]
        );
        assert_eq!(
            opts.extra_message,
            obj(json!({"profanity_filter": false, "end_of_phrase_silence_time": 0.8}))
        );
        assert!(opts.interim_results, "fixed parameters are not changed");
        assert!((s.confidence_threshold - 0.4).abs() < 1e-6);
    }

    #[test]
    fn legacy_config_sections_are_read() {
        let stt = SttSettings::from_config(&obj(json!({"config": {"model": "m"}})));
        assert_eq!(stt.model.as_deref(), Some("m"));
        let tts = TtsSettings::from_config(&obj(json!({
            "config": {"voice": "en-GB_KateV3Voice"}
        })));
        assert_eq!(tts.voice.as_deref(), Some("en-GB_KateV3Voice"));
        let tts = TtsSettings::from_config(&obj(json!({
            "synthesize": {"voice": "es-ES_LauraV3Voice", "customization_id": "c1", "rate_percentage": -10}
        })));
        let mut req = SynthesisRequest::text("hola");
        req.voice = Some("en-US_AllisonV3Voice".into());
        tts.apply_to(&mut req);
        assert_eq!(req.voice.as_deref(), Some("es-ES_LauraV3Voice"));
        assert_eq!(
            req.extra_query,
            vec![
                ("customization_id".into(), "c1".into()),
                ("rate_percentage".into(), "-10".into())
            ]
        );
    }
}
