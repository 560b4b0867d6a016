//! SDP (placeholder).
