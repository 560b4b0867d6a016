//! The demo skill's conversations, end to end through the embedded engine.

use voxgate::assistant::{
    Assistant, CallEvent, CallVariable, Context, DialogSkill, TurnInput, VoiceAction,
    VoiceTelephony,
};

fn spoken(actions: &[VoiceAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            VoiceAction::Speak { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn call_context() -> Context {
    VoiceTelephony::new()
        .sip_call_id("a84b4c76e66710@pc33.example.com")
        .sip_from_uri("sip:+15551230000@trunk.example.com")
        .sip_to_uri("sip:+19585550123@127.0.0.1")
        .sip_request_uri("sip:+19585550123@127.0.0.1:5060")
        .user_phone_number("+15551230000")
        .assistant_phone_number("+19585550123")
        .custom_invite_header("X-Account", "42")
        .session_id("gsid-1")
        .into_context()
}

#[test]
fn welcome_billing_agent_transfer_failure_goodbye() {
    let skill = DialogSkill::demo().expect("demo skill loads");
    assert!(
        skill.report().is_clean(),
        "demo skill must be fully supported:\n{}",
        skill.report()
    );
    let mut s = skill.session();

    let r = s.message_sync(&TurnInput::welcome(), call_context());
    let said = spoken(&r.actions);
    assert_eq!(said.len(), 1, "{:?}", r.actions);
    assert!(
        said[0].starts_with("Hello, thanks for calling voxgate."),
        "{said:?}"
    );
    assert!(r
        .actions
        .iter()
        .any(|a| matches!(a, VoiceAction::CollectDtmf(c) if c.count == Some(1))));
    assert!(r
        .actions
        .contains(&VoiceAction::Set(CallVariable::PostResponseTimeout(
            std::time::Duration::from_millis(8000)
        ))));
    // Variables come before anything spoken.
    assert!(
        matches!(r.actions[0], VoiceAction::Set(_)),
        "{:?}",
        r.actions
    );
    // The gateway's context survives the turn.
    assert_eq!(
        r.context.variable("vgwSIPCallID").and_then(|v| v.as_str()),
        Some("a84b4c76e66710@pc33.example.com")
    );

    let r = s.message_sync(&TurnInput::dtmf("1"), r.context);
    assert_eq!(
        spoken(&r.actions),
        vec!["Your balance is twelve dollars. Say agent, or goodbye."]
    );
    assert_eq!(
        r.context.variable("vgwIsDTMF").and_then(|v| v.as_str()),
        Some("Yes")
    );

    let r = s.message_sync(&TurnInput::text("talk to an agent please"), r.context);
    assert_eq!(spoken(&r.actions), vec!["Connecting you to an agent."]);
    let transfer = r.actions.iter().find_map(|a| match a {
        VoiceAction::Transfer(t) => Some(t.clone()),
        _ => None,
    });
    let t = transfer.expect("agent path transfers");
    assert_eq!(t.target.as_deref(), Some("sip:agent@127.0.0.1:5070"));
    assert_eq!(
        t.headers[0].value, "billing",
        "context variable substituted into the header"
    );
    assert_eq!(
        t.failure_message.as_deref(),
        Some("Sorry, no agent is free.")
    );
    assert!(r.actions.contains(&VoiceAction::Set(
        CallVariable::DisconnectOnTransferFailure(false)
    )));

    let r = s.message_sync(&TurnInput::event(CallEvent::CallTransferFailed), r.context);
    assert_eq!(
        spoken(&r.actions),
        vec!["Sorry, no agent is free right now. Say billing or goodbye."]
    );
    assert_eq!(
        r.context
            .variable("vgwCallTransferFailed")
            .and_then(|v| v.as_str()),
        Some("Yes")
    );

    let r = s.message_sync(&TurnInput::text("goodbye"), r.context);
    assert_eq!(spoken(&r.actions), vec!["Goodbye, thanks for calling."]);
    assert!(
        matches!(r.actions.last(), Some(VoiceAction::Hangup { .. })),
        "{:?}",
        r.actions
    );
    assert!(
        r.context.variable("vgwCallTransferFailed").is_none(),
        "per-turn flags are cleared"
    );
}

#[test]
fn dtmf_menu_keys_route() {
    let skill = DialogSkill::demo().expect("demo");
    for (key, expect) in [
        ("1", "Your balance"),
        ("2", "Connecting you"),
        ("9", "Goodbye"),
    ] {
        let mut s = skill.session();
        let r = s.message_sync(&TurnInput::welcome(), Context::new());
        let r = s.message_sync(&TurnInput::dtmf(key), r.context);
        assert!(
            spoken(&r.actions)[0].starts_with(expect),
            "key {key}: {:?}",
            r.actions
        );
    }
}

#[test]
fn silence_reprompts_then_hangs_up() {
    let skill = DialogSkill::demo().expect("demo");
    let mut s = skill.session();
    let r = s.message_sync(&TurnInput::welcome(), Context::new());
    let r = s.message_sync(&TurnInput::event(CallEvent::PostResponseTimeout), r.context);
    assert_eq!(
        spoken(&r.actions),
        vec!["Are you still there? Say billing, agent or goodbye."]
    );
    assert!(!r
        .actions
        .iter()
        .any(|a| matches!(a, VoiceAction::Hangup { .. })));
    let r = s.message_sync(
        &TurnInput::event(CallEvent::FinalUtteranceTimeout),
        r.context,
    );
    assert_eq!(
        spoken(&r.actions),
        vec!["I still cannot hear you. Goodbye."]
    );
    assert!(matches!(r.actions.last(), Some(VoiceAction::Hangup { .. })));
}

#[test]
fn not_understood_uses_sequential_variants_and_hangup_event_is_silent() {
    let skill = DialogSkill::demo().expect("demo");
    let mut s = skill.session();
    let r = s.message_sync(&TurnInput::welcome(), Context::new());
    let r = s.message_sync(&TurnInput::text("what is the weather"), r.context);
    assert_eq!(
        spoken(&r.actions),
        vec!["Sorry, I did not get that. Say billing, agent or goodbye."]
    );
    let r = s.message_sync(&TurnInput::text("purple elephants"), r.context);
    assert_eq!(
        spoken(&r.actions),
        vec!["Please press 1 for billing, 2 for an agent, or 9 to hang up."]
    );
    let r = s.message_sync(&TurnInput::event(CallEvent::HangUp), r.context);
    assert!(spoken(&r.actions).is_empty(), "{:?}", r.actions);
}

#[tokio::test]
async fn demo_through_the_assistant_trait() {
    let skill = DialogSkill::demo().expect("demo");
    let provider: Box<dyn Assistant> = Box::new(skill);
    let mut session = provider.open_session().await.expect("session");
    let r = session
        .message(TurnInput::welcome(), Context::new())
        .await
        .expect("turn");
    let r = session
        .message(TurnInput::text("my bill"), r.context)
        .await
        .expect("turn");
    assert!(spoken(&r.actions)[0].starts_with("Your balance"));
    session.close().await.expect("close");
}

#[test]
fn vocabulary_holds_examples_and_synonyms_without_digits() {
    let skill = DialogSkill::demo().expect("demo");
    let v = &skill.vocabulary().phrases;
    for p in [
        "billing",
        "talk to an agent",
        "goodbye",
        "invoice",
        "statement",
    ] {
        assert!(v.contains(&p.to_string()), "{p} missing from {v:?}");
    }
    assert!(
        !v.iter().any(|p| p.chars().all(|c| c.is_ascii_digit())),
        "{v:?}"
    );
    let mut sorted = v.clone();
    sorted.dedup();
    assert_eq!(&sorted, v);
    let words = skill.vocabulary().words();
    for w in ["agent", "representative", "goodbye", "balance"] {
        assert!(words.contains(&w.to_string()), "{w} missing from {words:?}");
    }
    assert!(words.iter().all(|w| !w.contains(' ')));
}

/// Paraphrases not in the skill's examples, with the intent a caller means (None =
/// out of domain). The accuracy figure is printed and must stay at or above 90%.
#[test]
fn intent_accuracy_on_demo_paraphrases() {
    let skill = DialogSkill::demo().expect("demo");
    let cases: &[(&str, Option<&str>)] = &[
        ("i want to pay my bill", Some("billing")),
        ("what is my balance", Some("billing")),
        ("billing please", Some("billing")),
        ("check the bill", Some("billing")),
        ("my balance please", Some("billing")),
        ("i need an agent", Some("agent")),
        ("can i talk to a person", Some("agent")),
        ("operator please", Some("agent")),
        ("give me a representative", Some("agent")),
        ("speak to an agent", Some("agent")),
        ("a real person please", Some("agent")),
        ("bye bye", Some("goodbye")),
        ("goodbye now", Some("goodbye")),
        ("no thanks that is all", Some("goodbye")),
        ("please hang up", Some("goodbye")),
        ("that is all thanks", Some("goodbye")),
        ("what is the weather", None),
        ("purple elephants", None),
        ("tell me a joke", None),
        ("open the door", None),
    ];
    let mut right = 0;
    for (text, want) in cases {
        let got = skill
            .classify(text)
            .into_iter()
            .next()
            .filter(|(_, c)| *c >= 0.5)
            .map(|(i, _)| i);
        if got.as_deref() == *want {
            right += 1;
        } else {
            eprintln!("miss: {text:?} -> {got:?}, want {want:?}");
        }
    }
    let accuracy = right as f64 / cases.len() as f64;
    eprintln!(
        "demo intent accuracy: {right}/{} = {:.0}%",
        cases.len(),
        accuracy * 100.0
    );
    assert!(accuracy >= 0.9, "accuracy {accuracy}");
}
