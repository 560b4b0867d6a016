//! The call: one task per call owns its dialog, its media session on a core, and its
//! speech and assistant streams. The turn logic is the sans-IO [`Conversation`]; the
//! driver executes its commands.

pub mod conversation;
pub mod dtmf_sequence;
pub mod media;
pub mod media_metrics;
pub mod service;
pub mod speech_config;
pub mod task;
pub mod wav;

pub use conversation::{
    CallCommand, CallEventIn, CallOutcome, Conversation, ConversationConfig, TransferResult,
};
