//! The embedded dialog engine: runs a compiled dialog skill, one [`DialogSession`] per
//! call. Pure computation (no I/O, no clock); a turn takes microseconds, so it runs on
//! the control thread.
//!
//! Runtime rules (Watson dialog semantics, simplified where noted):
//! - Root nodes are evaluated in sibling order; the first whose condition is true runs.
//!   Folders are transparent (their condition, if any, gates their children).
//! - A node applies its `context`, then answers with its first true
//!   `response_condition` child (or its own `output`), then follows `next_step`:
//!   `jump_to` with selector `body` (run the target), `condition` (evaluate from the
//!   target on), `user_input` (wait, then evaluate from the target on);
//!   `skip_user_input` (evaluate the children now). Without a next step, a node with
//!   children waits for input and evaluates its children first next turn (falling back
//!   to the root). A turn runs at most 64 nodes (jump loops end there, with a log line).
//! - Frames fill their slots from the input (`input` handlers), prompt for the first
//!   empty slot that has a `focus` prompt, say `nomatch` when a re-prompted turn fills
//!   nothing, run frame-level `generic` handlers, and answer when all are filled.
//! - `welcome` and `conversation_start` are true on the first turn only.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use rand::Rng;
use serde_json::{json, Map, Value};

use super::actions;
use super::classify::INTENT_THRESHOLD;
use super::condition::{self, EntityMatch, Env};
use super::context::Context;
use super::error::{AssistantError, SkillError};
use super::input::TurnInput;
use super::skill::{Dialog, LoadReport, Next, NodeType, Selector, Vocabulary};
use super::{Assistant, AssistantSession, Reply};

/// Most nodes one turn may run.
const MAX_STEPS: u32 = 64;

/// The demo skill shipped with voxgate.
pub const DEMO_SKILL_JSON: &str = include_str!("../../assets/demo-skill.json");

/// A loaded dialog skill; cheap to clone, shared by all its sessions.
#[derive(Debug, Clone)]
pub struct DialogSkill {
    dialog: Arc<Dialog>,
}

impl DialogSkill {
    /// Loads a workspace JSON export.
    pub fn from_json(text: &str) -> Result<DialogSkill, SkillError> {
        Ok(DialogSkill {
            dialog: Arc::new(Dialog::from_json(text)?),
        })
    }

    /// Loads a workspace JSON export from a file.
    pub fn from_file(path: &Path) -> Result<DialogSkill, SkillError> {
        let text = std::fs::read_to_string(path).map_err(|e| SkillError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        DialogSkill::from_json(&text)
    }

    /// The built-in demo skill (`assets/demo-skill.json`).
    pub fn demo() -> Result<DialogSkill, SkillError> {
        DialogSkill::from_json(DEMO_SKILL_JSON)
    }

    /// The skill's name.
    pub fn name(&self) -> &str {
        &self.dialog.name
    }

    /// Constructs found at load time that the engine cannot run.
    pub fn report(&self) -> &LoadReport {
        &self.dialog.report
    }

    /// Phrases for the speech recogniser's grammar.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.dialog.vocabulary
    }

    /// Intents with confidence for a text, best first (for diagnostics and tests).
    pub fn classify(&self, text: &str) -> Vec<(String, f64)> {
        self.dialog.classifier.classify(text)
    }

    /// A new session (one per call).
    pub fn session(&self) -> DialogSession {
        DialogSession {
            dialog: Arc::clone(&self.dialog),
            state: State::default(),
        }
    }
}

impl Assistant for DialogSkill {
    fn open_session(&self) -> BoxFuture<'_, Result<Box<dyn AssistantSession>, AssistantError>> {
        let s: Box<dyn AssistantSession> = Box::new(self.session());
        Box::pin(async move { Ok(s) })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    Children(usize),
    Siblings(usize),
    Frame(usize),
}

#[derive(Debug, Default)]
struct State {
    turns: u64,
    waiting: Option<Resume>,
    counters: HashMap<(usize, usize), usize>,
    focused_slot: Option<usize>,
}

/// One call's dialog state.
#[derive(Debug)]
pub struct DialogSession {
    dialog: Arc<Dialog>,
    state: State,
}

impl DialogSession {
    /// Runs one turn and returns the v2 `output` object and the updated context.
    pub fn turn(&mut self, input: &TurnInput, mut context: Context) -> (Value, Context) {
        input.apply_legacy(&mut context);
        let text = input.text_value().to_string();
        let d = Arc::clone(&self.dialog);
        let intents = d.classifier.classify(&text);
        let entities = d.classifier.entities(&text);
        let intent = intents
            .first()
            .filter(|(_, c)| *c >= INTENT_THRESHOLD)
            .map(|(n, _)| n.clone());
        let first = self.state.turns == 0;
        self.state.turns += 1;
        let mut run = Run {
            d: &d,
            state: &mut self.state,
            intent,
            entities,
            text,
            first,
            context,
            generic: Vec::new(),
            extra: Map::new(),
            steps: 0,
            fell_back: false,
        };
        let waiting = run.state.waiting.take();
        let handled = match waiting {
            Some(Resume::Frame(f)) => {
                run.frame(f, false);
                true
            }
            Some(Resume::Children(n)) => {
                let kids = d.nodes[n].children.clone();
                run.evaluate(&kids)
            }
            Some(Resume::Siblings(n)) => run.evaluate_from(n),
            None => false,
        };
        if !handled {
            let roots = d.roots.clone();
            run.evaluate(&roots);
        }
        let mut output = run.extra;
        output.insert("generic".into(), Value::Array(run.generic));
        output.insert(
            "intents".into(),
            Value::Array(
                intents
                    .iter()
                    .map(|(i, c)| json!({"intent": i, "confidence": c}))
                    .collect(),
            ),
        );
        output.insert(
            "entities".into(),
            Value::Array(
                run.entities
                    .iter()
                    .map(|e| json!({"entity": e.entity, "value": e.value, "location": [e.start, e.end]}))
                    .collect(),
            ),
        );
        let mut context = run.context;
        context
            .skill_system_mut()
            .insert("dialog_turn_counter".into(), Value::from(self.state.turns));
        (Value::Object(output), context)
    }

    /// Runs one turn and turns the output into voice actions.
    pub fn message_sync(&mut self, input: &TurnInput, context: Context) -> Reply {
        let (output, mut context) = self.turn(input, context);
        let actions = actions::from_response(&output, &mut context);
        Reply { actions, context }
    }
}

impl AssistantSession for DialogSession {
    fn message(
        &mut self,
        input: TurnInput,
        context: Context,
    ) -> BoxFuture<'_, Result<Reply, AssistantError>> {
        let reply = self.message_sync(&input, context);
        Box::pin(async move { Ok(reply) })
    }

    fn close(&mut self) -> BoxFuture<'_, Result<(), AssistantError>> {
        Box::pin(async { Ok(()) })
    }
}

struct Run<'a> {
    d: &'a Dialog,
    state: &'a mut State,
    intent: Option<String>,
    entities: Vec<EntityMatch>,
    text: String,
    first: bool,
    context: Context,
    generic: Vec<Value>,
    extra: Map<String, Value>,
    steps: u32,
    fell_back: bool,
}

fn is_dialog_node(k: NodeType) -> bool {
    matches!(k, NodeType::Standard | NodeType::Frame | NodeType::Folder)
}

impl Run<'_> {
    fn env(&self) -> Env<'_> {
        Env {
            intent: self.intent.as_deref(),
            entities: &self.entities,
            context: &self.context,
            input_text: &self.text,
            first_turn: self.first,
        }
    }

    fn cond(&self, idx: usize, default: bool) -> bool {
        match &self.d.nodes[idx].condition {
            None => default,
            Some(e) => condition::truthy(&condition::eval(e, &self.env())),
        }
    }

    fn evaluate(&mut self, list: &[usize]) -> bool {
        for &i in list {
            let kind = self.d.nodes[i].kind;
            if kind == NodeType::Folder {
                if self.cond(i, true) && self.evaluate(&self.d.nodes[i].children.clone()) {
                    return true;
                }
            } else if is_dialog_node(kind) && self.cond(i, false) {
                self.process(i);
                return true;
            }
        }
        false
    }

    fn siblings(&self, idx: usize) -> Vec<usize> {
        let list = match self.d.nodes[idx].parent {
            Some(p) => &self.d.nodes[p].children,
            None => &self.d.roots,
        };
        let pos = list.iter().position(|&n| n == idx).unwrap_or(0);
        list[pos..].to_vec()
    }

    fn evaluate_from(&mut self, idx: usize) -> bool {
        let list = self.siblings(idx);
        self.evaluate(&list)
    }

    fn fall_back_to_root(&mut self) {
        if !self.fell_back {
            self.fell_back = true;
            let roots = self.d.roots.clone();
            self.evaluate(&roots);
        }
    }

    fn process(&mut self, idx: usize) {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            tracing::warn!(node = %self.d.nodes[idx].id, "dialog turn ran {MAX_STEPS} nodes; stopping (jump loop?)");
            return;
        }
        if self.d.nodes[idx].kind == NodeType::Frame {
            self.frame(idx, true);
            return;
        }
        self.apply_context(self.d.nodes[idx].context.as_ref());
        self.respond(idx);
        self.after(idx);
    }

    fn respond(&mut self, idx: usize) {
        let node = &self.d.nodes[idx];
        let rcs: Vec<usize> = node
            .children
            .iter()
            .copied()
            .filter(|&c| self.d.nodes[c].kind == NodeType::ResponseCondition)
            .collect();
        if rcs.is_empty() {
            self.emit(idx);
            return;
        }
        for rc in rcs {
            if self.cond(rc, true) {
                self.apply_context(self.d.nodes[rc].context.as_ref());
                self.emit(rc);
                return;
            }
        }
    }

    fn after(&mut self, idx: usize) {
        match self.d.nodes[idx].next {
            Some(Next::JumpTo(t, Selector::Body)) => self.process(t),
            Some(Next::JumpTo(t, Selector::Condition)) => {
                if !self.evaluate_from(t) {
                    self.fall_back_to_root();
                }
            }
            Some(Next::JumpTo(t, Selector::UserInput)) => {
                self.state.waiting = Some(Resume::Siblings(t))
            }
            Some(Next::SkipUserInput) => {
                let kids = self.d.nodes[idx].children.clone();
                if !self.evaluate(&kids) {
                    self.fall_back_to_root();
                }
            }
            None => {
                let waits = self.d.nodes[idx]
                    .children
                    .iter()
                    .any(|&c| is_dialog_node(self.d.nodes[c].kind));
                if waits {
                    self.state.waiting = Some(Resume::Children(idx));
                }
            }
        }
    }

    fn handler(&self, parent: usize, event: &str) -> Option<usize> {
        self.d.nodes[parent].children.iter().copied().find(|&c| {
            self.d.nodes[c].kind == NodeType::EventHandler
                && self.d.nodes[c].event_name.as_deref() == Some(event)
        })
    }

    fn slot_empty(&self, slot: usize) -> bool {
        match self.d.nodes[slot].variable.as_deref() {
            Some(v) => self
                .context
                .variable(v)
                .is_none_or(|x| !condition::truthy(x)),
            None => false,
        }
    }

    fn frame(&mut self, f: usize, entering: bool) {
        if entering {
            self.apply_context(self.d.nodes[f].context.as_ref());
        } else {
            let generic: Vec<usize> = self.d.nodes[f]
                .children
                .iter()
                .copied()
                .filter(|&c| self.d.nodes[c].event_name.as_deref() == Some("generic"))
                .collect();
            for h in generic {
                if self.cond(h, false) {
                    self.apply_context(self.d.nodes[h].context.as_ref());
                    self.emit(h);
                    self.state.waiting = Some(Resume::Frame(f));
                    return;
                }
            }
        }
        let slots: Vec<usize> = self.d.nodes[f]
            .children
            .iter()
            .copied()
            .filter(|&c| self.d.nodes[c].kind == NodeType::Slot)
            .collect();
        let mut filled_any = false;
        for &s in &slots {
            let Some(h) = self.handler(s, "input") else {
                continue;
            };
            let Some(expr) = self.d.nodes[h].condition.clone() else {
                continue;
            };
            let value = condition::eval(&expr, &self.env());
            if !condition::truthy(&value) {
                continue;
            }
            match (&self.d.nodes[h].context, self.d.nodes[s].variable.clone()) {
                (Some(ctx), _) => self.apply_context(Some(&ctx.clone())),
                (None, Some(var)) => self.context.set_variable(&var, value),
                (None, None) => {}
            }
            filled_any = true;
            if let Some(filled) = self.handler(s, "filled") {
                self.emit(filled);
            }
        }
        let missing = slots
            .iter()
            .copied()
            .find(|&s| self.slot_empty(s) && self.handler(s, "focus").is_some());
        if let Some(s) = missing {
            let reprompt = !entering && !filled_any && self.state.focused_slot == Some(s);
            let h = if reprompt {
                self.handler(s, "nomatch").or(self.handler(s, "focus"))
            } else {
                self.handler(s, "focus")
            };
            if let Some(h) = h {
                self.emit(h);
            }
            self.state.focused_slot = Some(s);
            self.state.waiting = Some(Resume::Frame(f));
            return;
        }
        self.state.focused_slot = None;
        self.respond(f);
        self.after(f);
    }

    fn select(&mut self, key: (usize, usize), values: &[String], policy: &str) -> Option<String> {
        if values.is_empty() {
            return None;
        }
        Some(match policy {
            "random" => values[rand::rng().random_range(0..values.len())].clone(),
            "multiline" => values.join("\n"),
            _ => {
                let n = self.state.counters.entry(key).or_insert(0);
                let v = values[(*n).min(values.len() - 1)].clone();
                *n += 1;
                v
            }
        })
    }

    fn emit(&mut self, idx: usize) {
        let Some(out) = self.d.nodes[idx].output.clone() else {
            return;
        };
        for (k, v) in &out {
            match k.as_str() {
                "generic" => {
                    for (gi, g) in v.as_array().into_iter().flatten().enumerate() {
                        let mut item = g.as_object().cloned().unwrap_or_default();
                        let is_text =
                            item.get("response_type").and_then(Value::as_str) == Some("text");
                        if is_text && !item.contains_key("text") {
                            let values: Vec<String> = item
                                .get("values")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(|x| {
                                    x.get("text").and_then(Value::as_str).map(str::to_string)
                                })
                                .collect();
                            let policy = item
                                .get("selection_policy")
                                .and_then(Value::as_str)
                                .unwrap_or("sequential")
                                .to_string();
                            let Some(t) = self.select((idx, gi), &values, &policy) else {
                                continue;
                            };
                            item.remove("values");
                            item.remove("selection_policy");
                            item.remove("delimiter");
                            item.insert("text".into(), Value::String(t));
                        }
                        self.generic.push(self.substitute(&Value::Object(item)));
                    }
                }
                "text" => {
                    let (values, policy): (Vec<String>, String) = match v {
                        Value::String(s) => (vec![s.clone()], "sequential".into()),
                        Value::Array(a) => (
                            a.iter()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect(),
                            "multiline".into(),
                        ),
                        Value::Object(o) => (
                            o.get("values")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(Value::as_str)
                                .map(str::to_string)
                                .collect(),
                            o.get("selection_policy")
                                .and_then(Value::as_str)
                                .unwrap_or("sequential")
                                .to_string(),
                        ),
                        _ => (Vec::new(), String::new()),
                    };
                    if let Some(t) = self.select((idx, usize::MAX), &values, &policy) {
                        let t = self.substitute(&Value::String(t));
                        self.generic
                            .push(json!({"response_type": "text", "text": t}));
                    }
                }
                _ => {
                    let v = self.substitute(v);
                    self.extra.insert(k.clone(), v);
                }
            }
        }
    }

    fn apply_context(&mut self, ctx: Option<&Map<String, Value>>) {
        let Some(ctx) = ctx else { return };
        for (k, v) in ctx {
            let value = self.value_of(v);
            if k == "integrations" {
                if let Value::Object(m) = value {
                    let json = self.context.to_json();
                    let mut root = json.as_object().cloned().unwrap_or_default();
                    let integ = root
                        .entry("integrations")
                        .or_insert_with(|| Value::Object(Map::new()));
                    merge(integ, Value::Object(m));
                    self.context = Context::from_json(Value::Object(root));
                }
            } else {
                self.context.set_variable(k, value);
            }
        }
    }

    /// A context value: a string that is exactly one reference keeps its JSON type.
    fn value_of(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => {
                let t = s.trim();
                let whole =
                    if t.starts_with("<?") && t.ends_with("?>") && t.matches("<?").count() == 1 {
                        Some(&t[2..t.len() - 2])
                    } else if (t.starts_with('$') || t.starts_with('@'))
                        && t[1..]
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
                        && t.len() > 1
                    {
                        Some(t)
                    } else {
                        None
                    };
                match whole.and_then(|src| condition::parse(src).ok()) {
                    Some(e) => condition::eval(&e, &self.env()),
                    None => Value::String(self.text_of(s)),
                }
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| self.value_of(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.value_of(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn substitute(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.text_of(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.substitute(x)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), self.substitute(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    /// Replaces `<? expr ?>`, `$var` and `@entity` references in a text.
    fn text_of(&self, s: &str) -> String {
        let show = |v: Value| match v {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        };
        let mut out = String::with_capacity(s.len());
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == '<' && chars.get(i + 1) == Some(&'?') {
                let rest: String = chars[i + 2..].iter().collect();
                if let Some(end) = rest.find("?>") {
                    let src = &rest[..end];
                    if let Ok(e) = condition::parse(src) {
                        out.push_str(&show(condition::eval(&e, &self.env())));
                    }
                    i += 2 + rest[..end].chars().count() + 2;
                    continue;
                }
            }
            let escaped = i > 0 && chars[i - 1] == '\\';
            if (c == '$' || c == '@')
                && !escaped
                && chars
                    .get(i + 1)
                    .is_some_and(|n| n.is_alphabetic() || *n == '_')
            {
                let start = i + 1;
                let mut j = start;
                while j < chars.len()
                    && (chars[j].is_alphanumeric()
                        || chars[j] == '_'
                        || (c == '@' && chars[j] == '-'))
                {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                if c == '$' {
                    out.push_str(&show(
                        self.context.variable(&name).cloned().unwrap_or(Value::Null),
                    ));
                    i = j;
                    continue;
                }
                if self.d.classifier.has_entity(&name) {
                    out.push_str(&show(condition::eval(
                        &condition::Expr::Entity(name, None),
                        &self.env(),
                    )));
                    i = j;
                    continue;
                }
            }
            out.push(c);
            i += 1;
        }
        out
    }
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Loads a skill from bytes and, if it loads, runs a short call through it. For fuzzing:
/// whatever the bytes, this returns without panicking.
pub fn load_and_run(bytes: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(bytes).ok()?;
    let skill = DialogSkill::from_json(text).ok()?;
    let mut s = skill.session();
    let mut ctx = Context::new();
    let mut n = 0;
    for input in [
        TurnInput::welcome(),
        TurnInput::dtmf("1"),
        TurnInput::text("agent"),
        TurnInput::text("yes"),
    ] {
        let r = s.message_sync(&input, ctx);
        n += r.actions.len();
        ctx = r.context;
    }
    Some(n)
}
