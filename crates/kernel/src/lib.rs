//! The kernel every tongban crate stands on: the database (pool, migrations, group commit, the
//! exchange journal), secrets, the authorization vocabulary and the outbox mechanism. It knows
//! nothing of any domain.

pub mod audit;
pub mod authz;
pub mod db;
pub mod error;
pub mod outbox;
pub mod secrets;
pub mod tally;
pub mod wire;

/// Declares an area service: a borrowed view of a crate's handle that carries the methods of
/// one job (see docs/architecture.md). It dereferences to the handle, whose shared state and
/// helpers every area uses.
#[macro_export]
macro_rules! area {
    ($(#[$doc:meta])* $area:ident of $handle:ty) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $area<'a>(pub(crate) &'a $handle);

        impl std::ops::Deref for $area<'_> {
            type Target = $handle;
            fn deref(&self) -> &$handle {
                self.0
            }
        }
    };
}
