//! Assistant layer: demo skill conversations, dialog conditions and node types, voice
//! action fixtures in both styles, and the v2 client against `assistant-server`.

mod actions;
mod demo;
mod dialog;
mod http;
mod robustness;
