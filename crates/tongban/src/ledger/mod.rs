//! The ledger: append-only, tamper-evident logs (RFC 6962 Merkle trees, C2SP checkpoints).

pub mod merkle;
pub mod note;
