//! The v2 message context and the part of it the gateway fills in.
//!
//! Shape (Watson Assistant v2):
//! `{ "global": {...}, "skills": { "main skill": { "user_defined": {...}, "system": {...} } },
//!    "integrations": { "voice_telephony": {...} } }`.
//! Dialog `$variables` live in `skills["main skill"].user_defined`; the legacy `vgw*`
//! variables the gateway sets go there too.

use serde_json::{Map, Value};

/// Name of the dialog skill inside a v2 context.
pub const MAIN_SKILL: &str = "main skill";

/// A v2 message context, kept by the call between turns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    json: Map<String, Value>,
}

fn object_at<'a>(map: &'a mut Map<String, Value>, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut cur = map;
    for key in path {
        let slot = cur
            .entry((*key).to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        cur = match slot {
            Value::Object(m) => m,
            _ => unreachable!("slot was just made an object"),
        };
    }
    cur
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// Wraps a v2 context object; anything that is not an object gives an empty context.
    pub fn from_json(value: Value) -> Context {
        match value {
            Value::Object(json) => Context { json },
            _ => Context::default(),
        }
    }

    /// The v2 context object.
    pub fn to_json(&self) -> Value {
        Value::Object(self.json.clone())
    }

    /// The v2 context object, by reference.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.json
    }

    /// `skills["main skill"].user_defined` (dialog `$variables`).
    pub fn user_defined(&self) -> Option<&Map<String, Value>> {
        self.json
            .get("skills")?
            .get(MAIN_SKILL)?
            .get("user_defined")?
            .as_object()
    }

    /// Mutable `skills["main skill"].user_defined`, created if absent.
    pub fn user_defined_mut(&mut self) -> &mut Map<String, Value> {
        object_at(&mut self.json, &["skills", MAIN_SKILL, "user_defined"])
    }

    /// `skills["main skill"].system` (opaque dialog state).
    pub fn skill_system(&self) -> Option<&Value> {
        self.json.get("skills")?.get(MAIN_SKILL)?.get("system")
    }

    /// Mutable `skills["main skill"].system`, created if absent.
    pub fn skill_system_mut(&mut self) -> &mut Map<String, Value> {
        object_at(&mut self.json, &["skills", MAIN_SKILL, "system"])
    }

    /// `integrations.voice_telephony`.
    pub fn voice_telephony(&self) -> Option<&Map<String, Value>> {
        self.json
            .get("integrations")?
            .get("voice_telephony")?
            .as_object()
    }

    /// Mutable `integrations.voice_telephony`, created if absent.
    pub fn voice_telephony_mut(&mut self) -> &mut Map<String, Value> {
        object_at(&mut self.json, &["integrations", "voice_telephony"])
    }

    /// `integrations` (all channels), for `$integrations.voice_telephony` conditions.
    pub fn integrations(&self) -> Option<&Value> {
        self.json.get("integrations")
    }

    /// A dialog variable.
    pub fn variable(&self, name: &str) -> Option<&Value> {
        self.user_defined()?.get(name)
    }

    /// Sets a dialog variable.
    pub fn set_variable(&mut self, name: &str, value: Value) {
        self.user_defined_mut().insert(name.to_string(), value);
    }
}

/// Builder of the call-level context the gateway provides: both
/// `integrations.voice_telephony` and the legacy `vgwSIP*` variables.
#[derive(Debug, Clone, Default)]
pub struct VoiceTelephony {
    sip_call_id: Option<String>,
    custom_headers: Map<String, Value>,
    from_uri: Option<String>,
    to_uri: Option<String>,
    request_uri: Option<String>,
    user_phone_number: Option<String>,
    assistant_phone_number: Option<String>,
    session_id: Option<String>,
}

impl VoiceTelephony {
    /// Nothing set yet.
    pub fn new() -> VoiceTelephony {
        VoiceTelephony::default()
    }
    /// SIP Call-ID of the call.
    pub fn sip_call_id(mut self, v: impl Into<String>) -> Self {
        self.sip_call_id = Some(v.into());
        self
    }
    /// A header copied from the INVITE (listed in the integration settings).
    pub fn custom_invite_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.custom_headers
            .insert(name.into(), Value::String(value.into()));
        self
    }
    /// From URI of the INVITE.
    pub fn sip_from_uri(mut self, v: impl Into<String>) -> Self {
        self.from_uri = Some(v.into());
        self
    }
    /// To URI of the INVITE.
    pub fn sip_to_uri(mut self, v: impl Into<String>) -> Self {
        self.to_uri = Some(v.into());
        self
    }
    /// Request-URI of the INVITE.
    pub fn sip_request_uri(mut self, v: impl Into<String>) -> Self {
        self.request_uri = Some(v.into());
        self
    }
    /// The caller's number.
    pub fn user_phone_number(mut self, v: impl Into<String>) -> Self {
        self.user_phone_number = Some(v.into());
        self
    }
    /// The number the caller dialled.
    pub fn assistant_phone_number(mut self, v: impl Into<String>) -> Self {
        self.assistant_phone_number = Some(v.into());
        self
    }
    /// Global session ID (legacy `vgwSessionID`, from a custom INVITE header).
    pub fn session_id(mut self, v: impl Into<String>) -> Self {
        self.session_id = Some(v.into());
        self
    }

    /// Writes the values into `context` (both the v2 and the legacy places).
    pub fn apply(&self, context: &mut Context) {
        let s = |v: &Option<String>| v.clone().map(Value::String);
        {
            let vt = context.voice_telephony_mut();
            if let Some(v) = s(&self.sip_call_id) {
                vt.insert("sip_call_id".into(), v);
            }
            if !self.custom_headers.is_empty() {
                vt.insert(
                    "sip_custom_invite_headers".into(),
                    Value::Object(self.custom_headers.clone()),
                );
            }
            if let Some(v) = s(&self.assistant_phone_number) {
                vt.insert("assistant_phone_number".into(), v);
            }
            let private = object_at(vt, &["private"]);
            for (k, v) in [
                ("sip_from_uri", &self.from_uri),
                ("sip_to_uri", &self.to_uri),
                ("sip_request_uri", &self.request_uri),
                ("user_phone_number", &self.user_phone_number),
            ] {
                if let Some(v) = s(v) {
                    private.insert(k.into(), v);
                }
            }
        }
        let ud = context.user_defined_mut();
        for (k, v) in [
            ("vgwSIPCallID", &self.sip_call_id),
            ("vgwSIPFromURI", &self.from_uri),
            ("vgwSIPToURI", &self.to_uri),
            ("vgwSIPRequestURI", &self.request_uri),
            ("vgwSessionID", &self.session_id),
        ] {
            if let Some(v) = s(v) {
                ud.insert(k.into(), v);
            }
        }
        if !self.custom_headers.is_empty() {
            ud.insert(
                "vgwSIPCustomInviteHeaders".into(),
                Value::Object(self.custom_headers.clone()),
            );
        }
    }

    /// A fresh context holding these values.
    pub fn into_context(self) -> Context {
        let mut c = Context::new();
        self.apply(&mut c);
        c
    }
}
