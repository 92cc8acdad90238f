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

    /// The newest security events the reader's jurisdiction covers: those by accounts of her
    /// region; at the top of the region tree (the province), also those by no region's
    /// account (unknown names, the console). Up to `limit` are read, then filtered.
    pub async fn security_events(
        &self,
        cap: &Capability<SecurityEventRead>,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SecurityEvent>, Error> {
        let limit = u64::try_from(limit.clamp(1, 1000)).unwrap_or(100);
        let rows = ledger::recent(&self.db, ledger::Log::Audit, kind, None, limit).await.map_err(|e| match e {
            ledger::Error::Storage(s) => Error::Storage(s),
            other => Error::Internal(other.to_string()),
        })?;
        let mut regions: std::collections::HashMap<String, Option<String>> = std::collections::HashMap::new();
        let mut visible = Vec::with_capacity(rows.len());
        {
            let mut c = self.conn().await?;
            for (index, e) in rows {
                let region = match &e.actor {
                    Some(actor) => match regions.get(actor) {
                        Some(r) => r.clone(),
                        None => {
                            let r = repo::account(&mut c, actor).await?.and_then(|a| a.region).map(|r| r.path);
                            regions.insert(actor.clone(), r.clone());
                            r
                        }
                    },
                    None => None,
                };
                let shown = match region {
                    Some(region) => cap.scope().covers(&region),
                    None => cap.scope().covers_unplaced(),
                };
                if shown {
                    visible.push((index, e));
                }
            }
        }
        Ok(visible
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
