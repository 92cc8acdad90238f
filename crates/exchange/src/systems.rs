//! Who is calling through the GovStack APIs, and which registries serve it.
//!
//! The `Information-Mediator-Client` header only names a system; on its own it proves
//! nothing. A [`CallingSystem`] is a name that was proven: by the secret of an exchange client
//! registered under that name, or by the X-Road security server the call came through (which
//! authenticated the member with mutual TLS before forwarding; the HTTP layer decides whether
//! the peer is one). A registry's department then lists the systems its Data API serves.

use chrono::{DateTime, Utc};

use super::repo;
use super::{Error, Exchange};
use identity::{CallingSystem, Capability, MediatorClient};
use kernel::audit::{Action, Outcome};
use kernel::authz::RegistryManage;
use ledger::{self, Log};

/// A system name as registries list it: compared without case.
fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// A system name an administrator lists: the Information Mediator's form, as a header would
/// carry it.
fn system_key(name: &str) -> Result<String, Error> {
    MediatorClient::parse(name.trim())
        .map(|c| key(c.as_str()))
        .ok_or_else(|| Error::invalid("systems", format!("{name}: not INSTANCE/CLASS/MEMBER/SUBSYSTEM")))
}

kernel::area! {
    /// Calling systems: proving who they are, and the registries that serve them.
    Systems of Exchange
}

impl Systems<'_> {
    /// A system that sent its exchange secret with its name.
    pub async fn authenticate(&self, name: &str, secret: &str) -> Result<CallingSystem, Error> {
        let client = self.sharing().authenticate(name, secret).await?;
        Ok(CallingSystem::proven_by_secret(client.mediator_client))
    }

    /// Whether this registry's department lets the system use its Data API.
    pub(super) async fn serves_in(
        &self,
        c: &mut sqlx::AnyConnection,
        registry_id: &str,
        system: &CallingSystem,
    ) -> Result<bool, Error> {
        Ok(repo::registry_serves(c, registry_id, &key(system.as_str())).await?)
    }

    /// The systems a registry serves (its department's data officers read it).
    pub async fn serving(&self, cap: &Capability<RegistryManage>, code: &str) -> Result<Vec<String>, Error> {
        let mut c = self.conn().await?;
        let registry = repo::registry_by_code(&mut c, code).await?.ok_or(Error::NotFound("registry"))?;
        cap.check_department(&registry.department_id)?;
        Ok(repo::registry_systems(&mut c, &registry.id).await?)
    }

    /// Replaces the systems a registry serves; an audit entry records the new list.
    pub async fn set_serving(
        &self,
        cap: &Capability<RegistryManage>,
        code: &str,
        systems: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, Error> {
        let mut keys = systems.iter().map(|s| system_key(s)).collect::<Result<Vec<_>, _>>()?;
        keys.sort();
        keys.dedup();
        let mut tx = self.inner.db.begin().await?;
        let registry = repo::registry_by_code(&mut tx, code).await?.ok_or(Error::NotFound("registry"))?;
        cap.check_department(&registry.department_id)?;
        repo::set_registry_systems(&mut tx, &registry.id, &keys, cap.account_id(), now.timestamp_millis()).await?;
        let mut entry = ledger::Entry::new(Action::RegistrySystemsSet, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("registry:{code}"));
        entry.detail = Some(if keys.is_empty() { "none".into() } else { keys.join(", ") });
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        Ok(keys)
    }
}
