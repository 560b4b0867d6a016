//! One test per condition form and node type, on tests/data/assistant/skills/features.json
//! (nodes stored in scrambled file order, so sibling order must come from
//! `previous_sibling`), plus load errors and the load-time report.

use serde_json::json;
use voxgate::assistant::{
    Context, DialogSession, DialogSkill, SkillError, TurnInput, VoiceAction, VoiceTelephony,
};

fn skill_text() -> String {
    let path = format!(
        "{}/tests/data/assistant/skills/features.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

struct Call {
    s: DialogSession,
    ctx: Context,
}

impl Call {
    fn new() -> Call {
        Call::with_context(Context::new())
    }
    fn with_context(ctx: Context) -> Call {
        let skill = DialogSkill::from_json(&skill_text()).expect("features skill loads");
        let mut c = Call {
            s: skill.session(),
            ctx,
        };
        assert_eq!(c.say_turn(TurnInput::welcome()), vec!["Features ready."]);
        c
    }
    fn say_turn(&mut self, input: TurnInput) -> Vec<String> {
        let r = self.s.message_sync(&input, std::mem::take(&mut self.ctx));
        self.ctx = r.context;
        r.actions
            .iter()
            .filter_map(|a| match a {
                VoiceAction::Speak { text, .. } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }
    fn say(&mut self, text: &str) -> Vec<String> {
        self.say_turn(TurnInput::text(text))
    }
}

#[test]
fn conversation_start_and_context_update() {
    let c = Call::new();
    assert_eq!(c.ctx.variable("count"), Some(&json!(0)));
    assert_eq!(c.ctx.variable("vip"), Some(&json!("yes")));
}

#[test]
fn intent_and_negated_entity_inside_conditioned_folder() {
    let mut c = Call::new();
    assert_eq!(
        c.say("where is my order"),
        vec!["Your order is on its way."]
    );
    // Folder condition false: its children are not evaluated.
    c.ctx.set_variable("vip", json!("no"));
    assert_eq!(c.say("where is my order"), vec!["Fallback."]);
}

#[test]
fn entity_value_condition_and_synonym() {
    let mut c = Call::new();
    assert_eq!(c.say("huge"), vec!["Large chosen."]);
    assert_eq!(c.say("small"), vec!["Fallback."]);
}

#[test]
fn pattern_entity_and_entity_reference_in_text() {
    let mut c = Call::new();
    assert_eq!(c.say("my account is 123456"), vec!["Account 123456."]);
}

#[test]
fn frame_prompts_fills_and_answers() {
    let mut c = Call::new();
    assert_eq!(c.say("i want pizza"), vec!["What size?"]);
    assert_eq!(
        c.say("purple"),
        vec!["Small, medium or large?"],
        "nomatch handler"
    );
    assert_eq!(
        c.say("cancel"),
        vec!["Say a size, or hang up."],
        "frame-level generic handler"
    );
    assert_eq!(c.say("big"), vec!["Ordering a large pizza."]);
    assert_eq!(c.ctx.variable("size"), Some(&json!("large")));
}

#[test]
fn frame_filled_from_first_utterance() {
    let mut c = Call::new();
    assert_eq!(
        c.say("order a medium pizza"),
        vec!["Ordering a medium pizza."]
    );
}

#[test]
fn jump_to_body_and_expression_context_update() {
    let mut c = Call::new();
    assert_eq!(c.say("help"), vec!["Help here.", "Count is 1."]);
    assert_eq!(c.say("check"), vec!["Count below two."], "comparison <");
    assert_eq!(c.say("help"), vec!["Help here.", "Count is 2."]);
    assert_eq!(c.say("check"), vec!["Count at least two."], "comparison >=");
}

#[test]
fn children_wait_for_input() {
    let mut c = Call::new();
    assert_eq!(c.say("menu"), vec!["Menu. Say one or two."]);
    assert_eq!(
        c.say("two"),
        vec!["You chose two."],
        "single-quoted literal"
    );
    // Children are only evaluated right after their parent.
    assert_eq!(c.say("two"), vec!["Fallback."]);
}

#[test]
fn skip_user_input_runs_children_now() {
    let mut c = Call::new();
    assert_eq!(c.say("skip"), vec!["Skipping.", "Child ran."]);
}

#[test]
fn jump_to_condition_evaluates_from_target_on() {
    let mut c = Call::new();
    assert_eq!(c.say("jumpc"), vec!["Jumping.", "B."]);
}

#[test]
fn jump_to_user_input_waits_then_evaluates_target() {
    let mut c = Call::new();
    assert_eq!(c.say("ask"), vec!["Ask what?"]);
    assert_eq!(c.say("nope"), vec!["A."]);
}

#[test]
fn channel_specific_responses_choose_phone() {
    let mut c = Call::new();
    assert_eq!(c.say("channels"), vec!["Phone only.", "Everyone."]);
}

#[test]
fn response_conditions_on_integration() {
    let mut c = Call::new();
    assert_eq!(c.say("integ"), vec!["Not on the phone."]);
    let mut c = Call::with_context(VoiceTelephony::new().sip_call_id("x").into_context());
    assert_eq!(c.say("integ"), vec!["On the phone."]);
}

#[test]
fn or_and_not_keywords() {
    let mut c = Call::new();
    assert_eq!(c.say("y"), vec!["X or Y."]);
    c.ctx.set_variable("blocked", json!(true));
    assert_eq!(c.say("x"), vec!["Fallback."]);
}

#[test]
fn not_equal_and_numeric_string_comparisons() {
    let mut c = Call::new();
    assert_eq!(c.say("ne"), vec!["Not equal works."]);
    assert_eq!(c.say("gt"), vec!["Greater works."]);
}

#[test]
fn selection_policies() {
    let mut c = Call::new();
    assert_eq!(c.say("seq"), vec!["S1."]);
    assert_eq!(c.say("seq"), vec!["S2."]);
    assert_eq!(
        c.say("seq"),
        vec!["S2."],
        "sequential sticks at the last value"
    );
    assert_eq!(c.say("multi"), vec!["Line one. Line two."]);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..64 {
        let said = c.say("random");
        assert_eq!(said.len(), 1);
        seen.insert(said[0].clone());
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec!["R1.", "R2."]);
}

#[test]
fn node_context_sets_integration_variables() {
    let mut c = Call::new();
    let r = c.s.message_sync(&TurnInput::text("slow"), c.ctx.clone());
    assert!(r.actions.contains(&VoiceAction::Set(
        voxgate::assistant::CallVariable::PostResponseTimeout(std::time::Duration::from_millis(
            12000
        ))
    )));
}

#[test]
fn unsupported_constructs_are_reported_by_node() {
    let skill = DialogSkill::from_json(&skill_text()).expect("loads");
    let report = skill.report();
    let has = |node: &str, needle: &str| {
        report
            .unsupported
            .iter()
            .any(|u| u.node == node && u.construct.contains(needle))
    };
    assert!(has("webhook_node", "actions"), "{report}");
    assert!(has("confidence_node", "intents"), "{report}");
    assert!(has("reprompt_node", "reprompt"), "{report}");
    assert_eq!(report.unsupported.len(), 3, "{report}");
    // The node with an unparsable condition never matches.
    let mut c = Call::new();
    assert_eq!(c.say("anything at all"), vec!["Fallback."]);
}

#[test]
fn malformed_json_is_rejected_with_its_path() {
    let mut v: serde_json::Value = serde_json::from_str(&skill_text()).expect("json");
    v["dialog_nodes"][3]["type"] = json!("bogus");
    let err = DialogSkill::from_json(&v.to_string()).expect_err("bad type");
    match err {
        SkillError::Json { path, .. } => assert_eq!(path, "dialog_nodes[3].type"),
        other => panic!("{other:?}"),
    }
    let err =
        DialogSkill::from_json(r#"{"intents": [{"intent": "a", "examples": [{"text": 5}]}]}"#)
            .expect_err("bad example");
    assert!(
        matches!(err, SkillError::Json { ref path, .. } if path == "intents[0].examples[0].text"),
        "{err}"
    );
    let err = DialogSkill::from_json(
        r#"{"dialog_nodes": [{"dialog_node": "a", "output": {"generic": [}}]}"#,
    )
    .expect_err("syntax");
    assert!(
        matches!(err, SkillError::Json { ref path, .. } if path.starts_with("dialog_nodes[0].output")),
        "{err}"
    );
}

#[test]
fn dangling_references_and_bad_patterns_are_rejected_with_path() {
    let err = DialogSkill::from_json(
        r#"{"dialog_nodes": [{"dialog_node": "a", "next_step": {"behavior": "jump_to", "dialog_node": "zz"}}]}"#,
    )
    .expect_err("dangling");
    assert!(
        matches!(err, SkillError::Invalid { ref path, .. } if path == "dialog_nodes[0].next_step.dialog_node"),
        "{err}"
    );
    let err = DialogSkill::from_json(
        r#"{"entities": [{"entity": "e", "values": [{"value": "v", "type": "patterns", "patterns": ["("]}]}]}"#,
    )
    .expect_err("regex");
    assert!(
        matches!(err, SkillError::Invalid { ref path, .. } if path == "entities[0].values[0].patterns[0]"),
        "{err}"
    );
}

#[test]
fn jump_loop_is_bounded() {
    let skill = DialogSkill::from_json(
        r#"{"dialog_nodes": [{"dialog_node": "a", "conditions": "true",
            "output": {"text": "again"},
            "next_step": {"behavior": "jump_to", "dialog_node": "a", "selector": "body"}}]}"#,
    )
    .expect("loads");
    let r = skill
        .session()
        .message_sync(&TurnInput::text("x"), Context::new());
    let n = r
        .actions
        .iter()
        .filter(|a| matches!(a, VoiceAction::Speak { .. }))
        .count();
    assert_eq!(n, 64, "a turn runs at most 64 nodes");
}
