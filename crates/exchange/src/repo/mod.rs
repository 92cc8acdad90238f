//! SQL for the exchange tables (migrations 0012 and 0013).

use sqlx::Row;
use sqlx::any::AnyRow;

/// A row whose columns carry a prefix (`a_id`, `r_id`): a join of tables that share
/// column names. The names are made at run time, so this reads by name rather than through
/// `FromRow`, which knows one fixed name per field.
struct Prefixed<'r>(&'r AnyRow, &'static str);

impl Prefixed<'_> {
    fn try_get<'r, T>(&'r self, name: &str) -> Result<T, sqlx::Error>
    where
        T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        self.0.try_get(format!("{}{name}", self.1).as_str())
    }
}

/// `alias.column AS alias_column, …` for a join.
fn aliased(alias: &str, columns: &str) -> String {
    columns.split(',').map(str::trim).map(|c| format!("{alias}.{c} AS {alias}_{c}")).collect::<Vec<_>>().join(", ")
}

#[macro_use]
mod registries;
#[macro_use]
mod sharing;
mod clients;
mod consent;
mod databases;
mod imports;
mod oversight;
mod signatures;
mod webhooks;

pub use clients::*;
pub use consent::*;
pub use databases::*;
pub use imports::*;
pub use oversight::*;
pub use registries::*;
pub use sharing::*;
pub use signatures::*;
pub use webhooks::*;
