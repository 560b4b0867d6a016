//! Bad input never panics: truncated and mutated skills are rejected with an error, and
//! every field of every voice-action fixture replaced by a value of each other JSON type
//! is parsed without a panic (bounded, deterministic loops).

use serde_json::{json, Value};
use voxgate::assistant::actions::from_response;
use voxgate::assistant::engine::DEMO_SKILL_JSON;
use voxgate::assistant::{Context, DialogSkill, TurnInput};

#[test]
fn truncated_skill_json_is_an_error_not_a_panic() {
    let text = DEMO_SKILL_JSON;
    let mut cuts = 0;
    for end in (0..text.len()).step_by(13) {
        if !text.is_char_boundary(end) {
            continue;
        }
        assert!(
            DialogSkill::from_json(&text[..end]).is_err(),
            "prefix of {end} bytes accepted"
        );
        cuts += 1;
    }
    assert!(cuts > 100);
}

fn mutate_all(v: &Value, path: &mut Vec<String>, out: &mut Vec<(String, Value)>, root: &Value) {
    let replacements = [
        json!(null),
        json!(7),
        json!(-1.5),
        json!("x\\@y <b>"),
        json!([]),
        json!({}),
        json!(true),
    ];
    let children: Vec<(String, Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, x)| (k.clone(), x.clone())).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, x)| (i.to_string(), x.clone()))
            .collect(),
        _ => return,
    };
    for (k, child) in children {
        path.push(k);
        let pointer = format!("/{}", path.join("/"));
        for r in &replacements {
            let mut m = root.clone();
            if let Some(slot) = m.pointer_mut(&pointer) {
                *slot = r.clone();
            }
            out.push((pointer.clone(), m));
        }
        mutate_all(&child, path, out, root);
        path.pop();
    }
}

#[test]
fn mutated_action_fixtures_never_panic() {
    let dir = format!(
        "{}/tests/data/assistant/actions",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut runs = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        let root: Value = serde_json::from_str(&text).expect("json");
        let mut variants = Vec::new();
        mutate_all(&root, &mut Vec::new(), &mut variants, &root);
        for (_, v) in variants {
            let mut ctx = Context::from_json(v.get("context").cloned().unwrap_or(Value::Null));
            let _ = from_response(v.get("output").unwrap_or(&Value::Null), &mut ctx);
            runs += 1;
        }
    }
    assert!(runs > 1000, "{runs}");
}

#[test]
fn mutated_demo_skill_loads_or_fails_and_runs_without_panic() {
    let root: Value = serde_json::from_str(DEMO_SKILL_JSON).expect("json");
    let mut variants = Vec::new();
    mutate_all(&root, &mut Vec::new(), &mut variants, &root);
    let mut loaded = 0;
    for (_, v) in variants.iter().step_by(3) {
        if let Ok(skill) = DialogSkill::from_json(&v.to_string()) {
            loaded += 1;
            let mut s = skill.session();
            let mut ctx = Context::new();
            for input in [
                TurnInput::welcome(),
                TurnInput::dtmf("2"),
                TurnInput::text("bye"),
            ] {
                ctx = s.message_sync(&input, ctx).context;
            }
        }
    }
    assert!(loaded > 50, "{loaded}");
}
