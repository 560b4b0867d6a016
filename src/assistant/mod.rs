//! The assistant side of a call: what to say and do next.
//!
//! Model: a call opens one [`AssistantSession`] through an [`Assistant`] provider and
//! sends it one [`TurnInput`] per turn (recognised text, DTMF digits, or an event word
//! such as `vgwPostResponseTimeout`) together with the call's [`Context`]. The session
//! answers with a [`Reply`]: one ordered list of typed [`VoiceAction`]s and the updated
//! context, which the call layer keeps and passes back on the next turn.
//!
//! Two providers implement the same traits:
//! - [`DialogSkill`] (embedded default): runs a Watson Assistant dialog-skill JSON
//!   export in process, no network ([`DialogSkill::demo`] is the built-in demo skill);
//! - [`WatsonClient`]: the Watson Assistant v2 HTTP API (`voxgate assistant-server`
//!   serves the same API from a [`DialogSkill`]).
//!
//! Both produce a v2-format response (`output.generic`, `context`) that
//! [`actions::from_response`] turns into voice actions, so a reply means the same thing
//! whichever provider made it. Every failure is an [`AssistantError`]; the call layer maps
//! any of them to its call-failure path (play the failure message, transfer).
//!
//! ```no_run
//! # async fn run() -> Result<(), voxgate::assistant::AssistantError> {
//! use voxgate::assistant::{Assistant, Context, DialogSkill, TurnInput, VoiceTelephony};
//! let skill = DialogSkill::demo()?;
//! let mut session = skill.open_session().await?;
//! let mut context = VoiceTelephony::new().sip_call_id("abc@10.0.0.1").into_context();
//! let reply = session.message(TurnInput::welcome(), context).await?;
//! context = reply.context;
//! let reply = session.message(TurnInput::dtmf("2"), context).await?;
//! for action in &reply.actions { println!("{action:?}"); }
//! # Ok(()) }
//! ```

pub mod actions;
mod classify;
pub mod client;
mod condition;
pub mod context;
pub mod engine;
mod error;
mod input;
pub mod server;
pub mod skill;
pub mod speech_text;

pub use actions::{
    CallVariable, DtmfCollect, DtmfDigit, SipHeader, Transfer, TransferHeaderMethod,
    TransferMethod, UpdateStrategy, VoiceAction,
};

pub use client::{Auth, ClientConfig, WatsonClient, WatsonSession};
pub use context::{Context, VoiceTelephony};
pub use engine::{DialogSession, DialogSkill};
pub use error::{AssistantError, SkillError};
pub use input::{CallEvent, InputKind, TurnFlags, TurnInput};
pub use server::AssistantServer;
pub use skill::{LoadReport, Unsupported, Vocabulary};

use futures_util::future::BoxFuture;

/// One assistant turn's result: what to do, in order, and the context to keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// Actions in the order the call layer must perform them.
    pub actions: Vec<VoiceAction>,
    /// The updated context; pass it back with the next turn.
    pub context: Context,
}

/// A provider of assistant sessions (the embedded dialog engine or a Watson client).
pub trait Assistant: Send + Sync {
    /// Opens a session for one call.
    fn open_session(&self) -> BoxFuture<'_, Result<Box<dyn AssistantSession>, AssistantError>>;
}

/// The assistant side of one call.
pub trait AssistantSession: Send {
    /// Sends one turn and returns the actions to perform plus the updated context.
    fn message(
        &mut self,
        input: TurnInput,
        context: Context,
    ) -> BoxFuture<'_, Result<Reply, AssistantError>>;

    /// Ends the session (the call is over). Errors are worth a log line, nothing more.
    fn close(&mut self) -> BoxFuture<'_, Result<(), AssistantError>>;
}
