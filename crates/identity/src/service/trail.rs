//! The security trail: refusals recorded, and the events auditors read.

use super::*;

kernel::area! {
    /// The security trail: refusals recorded, and the events auditors read.
    Trail of Identity
}

impl Trail<'_> {
    // --- authorization trail -------------------------------------------------------------

    /// Records a refused authorization (a role check or a jurisdiction check).
    pub async fn record_denial(
        &self,
        principal: &Principal,
        permission: &str,
        object: &str,
        denial: &Denial,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut c = self.conn().await?;
        let detail = format!("{permission}: {denial}");
        record(
            &mut c,
            Event::new(Action::Access, Outcome::Denied)
                .account(&principal.account_id)
                .username(&principal.username)
                .source(source)
                .object(object)
                .detail(&detail),
            now,
        )
        .await
    }

    pub async fn security_events(
        &self,
        _cap: &Capability<SecurityEventRead>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, Error> {
        let limit = u64::try_from(limit.clamp(1, 1000)).unwrap_or(100);
        let rows = ledger::recent(&self.db, ledger::Log::Audit, kind, None, limit).await.map_err(|e| match e {
            ledger::Error::Storage(s) => Error::Storage(s),
            other => Error::Internal(other.to_string()),
        })?;
        Ok(rows
            .into_iter()
            .map(|(index, e)| SecurityEvent {
                index,
                at: e.at,
                kind: e.action,
                outcome: e.result,
                account_id: e.actor,
                username: e.actor_name,
                source: e.source,
                object: e.object,
                detail: e.detail,
                subject: e.subject,
                request_id: e.request_id,
            })
            .collect())
    }
}
