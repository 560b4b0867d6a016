//! SDES
