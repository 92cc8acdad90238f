//! One-stop services (issue 4). So far: the working-day calendar and the workflow engine,
//! as pure domain code; catalog, forms, applications and their storage come next.

pub mod calendar;
pub mod workflow;
