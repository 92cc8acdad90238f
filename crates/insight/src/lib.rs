//! Insight: supervision rules and alerts. Today: security monitoring over the audit ledger.

pub mod security;
