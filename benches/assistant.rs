//! Assistant layer costs on the control thread: one embedded dialog turn, intent
//! classification, and turning a v2 reply into voice actions.
//! `cargo bench --bench assistant -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use serde_json::json;
use voxgate::assistant::actions::from_response;
use voxgate::assistant::{Context, DialogSkill, TurnInput, VoiceTelephony};

fn turns(c: &mut Criterion) {
    let skill = DialogSkill::demo().expect("demo skill");
    let ctx = VoiceTelephony::new()
        .sip_call_id("bench@127.0.0.1")
        .into_context();
    c.bench_function("assistant/demo_call_4_turns", |b| {
        b.iter(|| {
            let mut s = skill.session();
            let mut ctx = ctx.clone();
            for input in [
                TurnInput::welcome(),
                TurnInput::dtmf("1"),
                TurnInput::text("talk to an agent please"),
                TurnInput::text("goodbye"),
            ] {
                ctx = s.message_sync(&input, ctx).context;
            }
            black_box(ctx)
        })
    });
    c.bench_function("assistant/classify", |b| {
        b.iter(|| black_box(skill.classify(black_box("i want to pay my bill"))))
    });
    let output = json!({"generic": [
        {"response_type": "text", "text": "I'll <b>transfer</b> you to an **agent**."},
        {"response_type": "connect_to_agent", "transfer_info": {"target": {"service_desk": {"sip": {
            "uri": "sip:agent\\@127.0.0.1", "transfer_headers": [{"name": "X-A", "value": "1"}]}}}},
         "agent_available": {"message": "Connecting."}, "agent_unavailable": {"message": "Sorry."}}
    ]});
    c.bench_function("assistant/from_response", |b| {
        b.iter(|| {
            let mut ctx = Context::new();
            black_box(from_response(black_box(&output), &mut ctx))
        })
    });
}

criterion_group!(benches, turns);
criterion_main!(benches);
