//! The GovStack building blocks tongban implements, each under its own prefix: Registration
//! (`/govstack/registration/`), Digital Registries (`/govstack/registries/`) and Consent
//! (`/govstack/consent/`). See ../shared/govstack/ for their specifications.

pub mod consent;
pub mod registration;
pub mod registries;
