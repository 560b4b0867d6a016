//! Loading a Watson Assistant dialog-skill (workspace) JSON export.
//!
//! Malformed JSON, or JSON that does not fit the workspace schema, is rejected with the
//! JSON path of the fault ([`SkillError::Json`]); dangling node references and bad
//! regexes are rejected too ([`SkillError::Invalid`]). Constructs the engine cannot run
//! are listed in a [`LoadReport`], one entry per node and construct, so an import never
//! loses behaviour silently.

use std::collections::HashMap;

use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::classify::Classifier;
use super::condition::{self, Expr};
use super::error::SkillError;

#[derive(Debug, Deserialize)]
struct Workspace {
    #[serde(default)]
    name: String,
    #[serde(default)]
    intents: Vec<IntentDef>,
    #[serde(default)]
    entities: Vec<EntityDef>,
    #[serde(default)]
    dialog_nodes: Vec<NodeDef>,
    #[serde(default)]
    webhooks: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct IntentDef {
    intent: String,
    #[serde(default)]
    examples: Vec<ExampleDef>,
}

#[derive(Debug, Deserialize)]
struct ExampleDef {
    text: String,
}

#[derive(Debug, Deserialize)]
struct EntityDef {
    entity: String,
    #[serde(default)]
    values: Vec<EntityValueDef>,
    #[serde(default)]
    fuzzy_match: Option<bool>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
enum ValueType {
    #[default]
    Synonyms,
    Patterns,
}

#[derive(Debug, Deserialize)]
struct EntityValueDef {
    value: String,
    #[serde(default, rename = "type")]
    kind: ValueType,
    #[serde(default)]
    synonyms: Vec<String>,
    #[serde(default)]
    patterns: Vec<String>,
}

/// Dialog node types.
#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NodeType {
    #[default]
    Standard,
    Frame,
    Slot,
    ResponseCondition,
    EventHandler,
    Folder,
}

#[derive(Debug, Deserialize)]
struct NextStepDef {
    behavior: String,
    #[serde(default)]
    dialog_node: Option<String>,
    #[serde(default)]
    selector: Option<String>,
}

#[derive(Debug, Deserialize)]
struct NodeDef {
    dialog_node: String,
    #[serde(default, rename = "type")]
    kind: NodeType,
    #[serde(default)]
    conditions: Option<String>,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    previous_sibling: Option<String>,
    #[serde(default)]
    output: Option<Map<String, Value>>,
    #[serde(default)]
    context: Option<Map<String, Value>>,
    #[serde(default)]
    next_step: Option<NextStepDef>,
    #[serde(default)]
    event_name: Option<String>,
    #[serde(default)]
    variable: Option<String>,
    #[serde(default)]
    actions: Vec<Value>,
}

/// How a `jump_to` re-enters the dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Selector {
    Condition,
    Body,
    UserInput,
}

/// What follows a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    JumpTo(usize, Selector),
    SkipUserInput,
}

/// A compiled dialog node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub id: String,
    pub kind: NodeType,
    pub parent: Option<usize>,
    /// `None`: no condition (folders are transparent; others match only by jump).
    pub condition: Option<Expr>,
    pub children: Vec<usize>,
    pub output: Option<Map<String, Value>>,
    pub context: Option<Map<String, Value>>,
    pub next: Option<Next>,
    pub event_name: Option<String>,
    pub variable: Option<String>,
}

/// One construct the engine cannot run, found at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// `dialog_node` id, or `(workspace)` / `entity:NAME` for skill-level items.
    pub node: String,
    /// The construct, e.g. `next_step.behavior = reprompt`.
    pub construct: String,
    /// What the engine does instead.
    pub effect: String,
}

/// The load-time report of constructs the engine cannot run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// One entry per node and construct.
    pub unsupported: Vec<Unsupported>,
}

impl LoadReport {
    fn add(&mut self, node: &str, construct: impl Into<String>, effect: &str) {
        self.unsupported.push(Unsupported {
            node: node.to_string(),
            construct: construct.into(),
            effect: effect.to_string(),
        });
    }

    /// Whether everything in the skill can run.
    pub fn is_clean(&self) -> bool {
        self.unsupported.is_empty()
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for u in &self.unsupported {
            writeln!(f, "node {}: {} ({})", u.node, u.construct, u.effect)?;
        }
        Ok(())
    }
}

/// Phrases a speech recogniser's grammar should cover: intent examples, entity values
/// and synonyms (lowercase, deduplicated, sorted; pattern entities and phrases without
/// a letter, such as DTMF digits, are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    /// The phrases.
    pub phrases: Vec<String>,
}

impl Vocabulary {
    /// The distinct words of all phrases (letters, digits and apostrophes kept), sorted:
    /// what a recogniser's pronunciation dictionary must cover.
    pub fn words(&self) -> Vec<String> {
        let mut w: Vec<String> = self
            .phrases
            .iter()
            .flat_map(|p| p.split(|c: char| !(c.is_alphanumeric() || c == '\'')))
            .map(|w| w.trim_matches('\'').to_string())
            .filter(|w| !w.is_empty())
            .collect();
        w.sort();
        w.dedup();
        w
    }
}

/// A loaded, compiled dialog skill.
#[derive(Debug)]
pub(crate) struct Dialog {
    pub name: String,
    pub nodes: Vec<Node>,
    pub roots: Vec<usize>,
    pub classifier: Classifier,
    pub vocabulary: Vocabulary,
    pub report: LoadReport,
}

const PHONE_SILENT: &[&str] = &[
    "option",
    "image",
    "iframe",
    "video",
    "suggestion",
    "channel_transfer",
];

fn check_expressions(v: &Value, node: &str, what: &str, report: &mut LoadReport) {
    match v {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(i) = rest.find("<?") {
                let Some(j) = rest[i..].find("?>") else {
                    report.add(
                        node,
                        format!("{what}: unterminated `<?`"),
                        "text kept as written",
                    );
                    break;
                };
                let src = &rest[i + 2..i + j];
                if let Err(e) = condition::parse(src) {
                    report.add(
                        node,
                        format!("{what}: expression `<?{src}?>`: {e}"),
                        "replaced by empty text",
                    );
                }
                rest = &rest[i + j + 2..];
            }
        }
        Value::Array(a) => a
            .iter()
            .for_each(|x| check_expressions(x, node, what, report)),
        Value::Object(m) => m
            .values()
            .for_each(|x| check_expressions(x, node, what, report)),
        _ => {}
    }
}

impl Dialog {
    pub(crate) fn from_json(text: &str) -> Result<Dialog, SkillError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let ws: Workspace = serde_path_to_error::deserialize(de).map_err(|e| SkillError::Json {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?;
        Dialog::compile(ws)
    }

    fn compile(ws: Workspace) -> Result<Dialog, SkillError> {
        let mut report = LoadReport::default();
        if !ws.webhooks.is_empty() {
            report.add("(workspace)", "webhooks", "webhook calls are not made");
        }
        let mut classifier = Classifier::new();
        let mut phrases: Vec<String> = Vec::new();
        let mut entity_names = Vec::new();
        for (ei, e) in ws.entities.iter().enumerate() {
            entity_names.push(e.entity.clone());
            if e.fuzzy_match == Some(true) {
                report.add(
                    &format!("entity:{}", e.entity),
                    "fuzzy_match",
                    "exact word matching only",
                );
            }
            for (vi, v) in e.values.iter().enumerate() {
                match v.kind {
                    ValueType::Synonyms => {
                        classifier.add_phrase(&e.entity, &v.value, &v.value);
                        phrases.push(v.value.clone());
                        for s in &v.synonyms {
                            classifier.add_phrase(&e.entity, &v.value, s);
                            phrases.push(s.clone());
                        }
                    }
                    ValueType::Patterns => {
                        for (pi, p) in v.patterns.iter().enumerate() {
                            let re = Regex::new(p).map_err(|err| SkillError::Invalid {
                                path: format!("entities[{ei}].values[{vi}].patterns[{pi}]"),
                                message: err.to_string(),
                            })?;
                            classifier.add_pattern(&e.entity, &v.value, re);
                        }
                    }
                }
            }
        }
        classifier.sort_phrases();
        let mut intent_names = Vec::new();
        for i in &ws.intents {
            let ex: Vec<String> = i.examples.iter().map(|e| e.text.clone()).collect();
            phrases.extend(ex.iter().cloned());
            classifier.add_intent(&i.intent, &ex);
            intent_names.push(i.intent.clone());
        }

        let index: HashMap<&str, usize> = ws
            .dialog_nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.dialog_node.as_str(), i))
            .collect();
        let mut nodes = Vec::with_capacity(ws.dialog_nodes.len());
        let mut parents = Vec::with_capacity(ws.dialog_nodes.len());
        for (i, d) in ws.dialog_nodes.iter().enumerate() {
            let id = d.dialog_node.as_str();
            let parent = match &d.parent {
                Some(p) => Some(*index.get(p.as_str()).ok_or_else(|| SkillError::Invalid {
                    path: format!("dialog_nodes[{i}].parent"),
                    message: format!("no dialog node `{p}`"),
                })?),
                None => None,
            };
            parents.push(parent);
            let condition = match d
                .conditions
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
            {
                None => None,
                Some(src) => match condition::parse(src) {
                    Ok(e) => {
                        e.visit(&mut |a| match a {
                            Expr::Entity(n, _) if n.starts_with("sys-") => {
                                report.add(id, format!("system entity `@{n}`"), "never recognised");
                            }
                            Expr::Entity(n, _) if !entity_names.contains(n) => {
                                report.add(
                                    id,
                                    format!("undefined entity `@{n}`"),
                                    "never recognised",
                                );
                            }
                            Expr::Intent(n) if !intent_names.contains(n) => {
                                report.add(
                                    id,
                                    format!("undefined intent `#{n}`"),
                                    "never recognised",
                                );
                            }
                            _ => {}
                        });
                        Some(e)
                    }
                    Err(e) => {
                        report.add(id, format!("condition `{src}`: {e}"), "node never matches");
                        Some(Expr::Lit(Value::Bool(false)))
                    }
                },
            };
            let next = match &d.next_step {
                None => None,
                Some(ns) => match ns.behavior.as_str() {
                    "jump_to" => {
                        let target = ns.dialog_node.as_deref().unwrap_or("");
                        let t = *index.get(target).ok_or_else(|| SkillError::Invalid {
                            path: format!("dialog_nodes[{i}].next_step.dialog_node"),
                            message: format!("no dialog node `{target}`"),
                        })?;
                        let sel = match ns.selector.as_deref().unwrap_or("condition") {
                            "condition" => Selector::Condition,
                            "body" => Selector::Body,
                            "user_input" => Selector::UserInput,
                            other => {
                                report.add(
                                    id,
                                    format!("next_step.selector = {other}"),
                                    "treated as `condition`",
                                );
                                Selector::Condition
                            }
                        };
                        Some(Next::JumpTo(t, sel))
                    }
                    "skip_user_input" => Some(Next::SkipUserInput),
                    "get_user_input" => None,
                    other => {
                        report.add(
                            id,
                            format!("next_step.behavior = {other}"),
                            "waits for user input instead",
                        );
                        None
                    }
                },
            };
            if !d.actions.is_empty() {
                report.add(
                    id,
                    "actions (webhook or client call)",
                    "not called; their result variables stay unset",
                );
            }
            if let Some(ev) = &d.event_name {
                if !["focus", "input", "filled", "nomatch", "generic"].contains(&ev.as_str()) {
                    report.add(id, format!("event_handler `{ev}`"), "handler never runs");
                }
            }
            if d.kind == NodeType::EventHandler && d.event_name.is_none() {
                report.add(id, "event_handler without event_name", "handler never runs");
            }
            if let Some(out) = &d.output {
                for (gi, g) in out
                    .get("generic")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let rt = g.get("response_type").and_then(Value::as_str).unwrap_or("");
                    if PHONE_SILENT.contains(&rt) {
                        report.add(
                            id,
                            format!("output.generic[{gi}] response_type `{rt}`"),
                            "not spoken on the phone",
                        );
                    }
                }
                check_expressions(&Value::Object(out.clone()), id, "output", &mut report);
            }
            if let Some(ctx) = &d.context {
                check_expressions(&Value::Object(ctx.clone()), id, "context", &mut report);
            }
            nodes.push(Node {
                id: id.to_string(),
                kind: d.kind,
                parent,
                condition,
                children: Vec::new(),
                output: d.output.clone(),
                context: d.context.clone(),
                next,
                event_name: d.event_name.clone(),
                variable: d
                    .variable
                    .as_deref()
                    .map(|v| v.trim_start_matches('$').to_string()),
            });
        }

        // Sibling order follows `previous_sibling` chains; unchained nodes keep file order.
        let mut groups: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
        for (i, p) in parents.iter().enumerate() {
            groups.entry(*p).or_default().push(i);
        }
        let mut roots = Vec::new();
        for (parent, members) in groups {
            let mut ordered = Vec::with_capacity(members.len());
            let mut placed = vec![false; ws.dialog_nodes.len()];
            let after: HashMap<usize, usize> = members
                .iter()
                .filter_map(|&m| {
                    let prev = ws.dialog_nodes[m].previous_sibling.as_deref()?;
                    index.get(prev).map(|&p| (p, m))
                })
                .collect();
            let heads: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&m| {
                    ws.dialog_nodes[m]
                        .previous_sibling
                        .as_deref()
                        .and_then(|p| index.get(p))
                        .is_none_or(|p| !members.contains(p))
                })
                .collect();
            for h in heads.into_iter().chain(members.iter().copied()) {
                let mut cur = Some(h);
                while let Some(c) = cur {
                    if placed[c] {
                        break;
                    }
                    placed[c] = true;
                    ordered.push(c);
                    cur = after.get(&c).copied();
                }
            }
            match parent {
                Some(p) => nodes[p].children = ordered,
                None => roots = ordered,
            }
        }

        let mut vocab: Vec<String> = phrases
            .into_iter()
            .map(|p| p.trim().to_lowercase())
            .filter(|p| p.chars().any(char::is_alphabetic))
            .collect();
        vocab.sort();
        vocab.dedup();
        Ok(Dialog {
            name: ws.name,
            nodes,
            roots,
            classifier,
            vocabulary: Vocabulary { phrases: vocab },
            report,
        })
    }
}
