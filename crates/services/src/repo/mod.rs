//! SQL of the services module (tables of migration 0008).

mod appointments;
mod cases;
mod catalog;
mod certificates;
mod documents;
mod ratings;
mod registration;
mod tasks;

pub use appointments::*;
pub use cases::*;
pub use catalog::*;
pub use certificates::*;
pub use documents::*;
pub use ratings::*;
pub use registration::*;
pub use tasks::*;
