//! tongban (通办): an integrated digital-government platform. See DESIGN.md for the map.

pub mod bench;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod exchange;
pub mod http;
pub mod identity;
pub mod insight;
pub mod ledger;
pub mod outbox;
pub mod protect;
pub mod secrets;
pub mod services;
