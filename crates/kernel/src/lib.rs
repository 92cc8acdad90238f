//! The kernel every tongban crate stands on: the database (pool, migrations, group commit, the
//! exchange journal), secrets, the authorization vocabulary and the outbox mechanism. It knows
//! nothing of any domain.

pub mod audit;
pub mod authz;
pub mod db;
pub mod error;
pub mod outbox;
pub mod secrets;
