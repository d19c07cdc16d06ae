//! The sandbox supervisor (work in progress during bring-up).
#![deny(unsafe_code)]
pub mod cli;
