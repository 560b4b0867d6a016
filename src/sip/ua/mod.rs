//! The user agent core: transactions, dialogs and admission for inbound calls.

pub mod build;
pub mod view;
