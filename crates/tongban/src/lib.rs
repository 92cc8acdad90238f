//! tongban (通办): an integrated digital-government platform. See DESIGN.md for the map and
//! docs/architecture.md for the crates. This crate is the binary: the console commands, the
//! configuration, the demo data and the delivery of the outbox.

pub mod cli;
pub mod config;
pub mod delivery;
pub mod demo;
