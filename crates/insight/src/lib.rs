//! Insight: supervision rules and alerts. Today: security monitoring over the audit ledger.
//! Owns the `alerts` table (migration 0007); its SQL is in `repo`.

mod repo;
pub mod security;
