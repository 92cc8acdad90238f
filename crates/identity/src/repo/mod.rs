//! SQL for the identity tables. Nothing outside this module touches them.

use super::{AccountKind, DepartmentRef, HeldRole, RegionRef};

macro_rules! resident_select {
    () => {
        "SELECT c.account_id, c.real_name, c.id_number_enc, c.mobile_enc, c.address_enc, \
         r.id, r.code, r.name, r.level, r.path \
         FROM citizens c JOIN accounts a ON a.id = c.account_id JOIN regions r ON r.id = a.region_id"
    };
}

mod corrections;
mod organisation;
#[macro_use]
mod accounts;
mod factors;
mod people;
mod roles;
mod sessions;
mod throttles;

pub use accounts::*;
pub use corrections::*;
pub use factors::*;
pub use organisation::*;
pub use people::*;
pub use roles::*;
pub use sessions::*;
pub use throttles::*;
