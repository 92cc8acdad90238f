//! 我的数据: a person's own data, who used it and why, and their requests to correct it.

use super::*;

kernel::area! {
    /// 我的数据: a person's own data, who used it and why, and their requests to correct it.
    OwnData of Identity
}

impl OwnData<'_> {
    // --- 我的数据: the citizen's own data and who used it ------------------------------

    /// Everything the platform holds about the signed-in person, and every recorded access
    /// to it (newest first), read from the `audit` ledger. Staff names are masked.
    pub async fn overview(&self, me: &Principal, now: DateTime<Utc>) -> Result<MyData, Error> {
        // Read before taking a connection here: the ledger takes its own.
        let entries = ledger::recent(&self.db, ledger::Log::Audit, None, Some(&me.account_id), 1000)
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut c = self.conn().await?;
        let profile = match repo::resident(&mut c, &me.account_id).await? {
            Some(r) => {
                let open = open_resident(&self.protector, &mut c, &r).await?;
                Some(OwnProfile {
                    name: r.real_name.clone(),
                    id_number: open.id_number.to_string(),
                    mobile: open.mobile.to_string(),
                    address: open.address.as_ref().map(|a| a.to_string()),
                    region: r.region.name.clone(),
                })
            }
            None => None,
        };
        let mut posts: std::collections::HashMap<String, Option<repo::Post>> = std::collections::HashMap::new();
        let mut accesses = Vec::with_capacity(entries.len());
        for (index, e) in entries {
            let post = match &e.actor {
                Some(actor) if actor != &me.account_id => {
                    if !posts.contains_key(actor) {
                        let found = repo::post_of(&mut c, actor).await?;
                        posts.insert(actor.clone(), found);
                    }
                    posts.get(actor).cloned().flatten()
                }
                _ => None,
            };
            let by_self = e.actor.as_deref() == Some(me.account_id.as_str());
            accesses.push(DataAccess {
                index,
                at: e.at,
                action: e.action,
                result: e.result,
                by_self,
                staff: post.as_ref().map(|p| protect::Mask::Name.apply(&p.name)),
                department: post.as_ref().and_then(|p| p.department.clone()),
                post: post.map(|p| p.roles.join("、")).filter(|r| !r.is_empty()),
                purpose: e.purpose,
            });
        }
        let corrections = repo::corrections_of(&mut c, &me.account_id)
            .await?
            .into_iter()
            .map(|q| {
                Ok(CorrectionView {
                    status: CorrectionStatus::stored(&q.status)?,
                    id: q.id,
                    field: q.field,
                    requested: None,
                    reason: q.reason,
                    department: q.department,
                    created_at: from_millis(q.created_at),
                })
            })
            .collect::<Result<_, Error>>()?;
        drop(c);
        // Opening sealed data is audited, even for its owner.
        if profile.is_some() {
            let mut c = self.conn().await?;
            let event =
                Event::new(Action::OwnDataViewed, Outcome::Success).account(&me.account_id).username(&me.username);
            record(&mut c, event.subject(&me.account_id), now).await?;
        }
        Ok(MyData {
            username: me.username.clone(),
            display_name: me.display_name.clone(),
            kind: me.kind,
            profile,
            accesses,
            corrections,
        })
    }

    /// Files a correction request with the department that owns the field (for residents'
    /// identity data: the nearest public-security bureau, 公安).
    pub async fn request_correction(
        &self,
        me: &Principal,
        field: &str,
        requested: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<CorrectionView, Error> {
        const FIELDS: [&str; 4] = ["name", "id_number", "mobile", "address"];
        if !FIELDS.contains(&field) {
            return Err(Error::invalid("field", "one of name, id_number, mobile, address"));
        }
        let (requested, reason) = (requested.trim(), reason.trim());
        if requested.is_empty() || requested.chars().count() > 200 {
            return Err(Error::invalid("requested", "the corrected value, at most 200 characters"));
        }
        if reason.is_empty() || reason.chars().count() > 500 {
            return Err(Error::invalid("reason", "why the value is wrong, at most 500 characters"));
        }
        let region = me.region.as_ref().ok_or(Error::NotFound("resident record"))?;
        let mut tx = self.db.begin().await?;
        if repo::resident(&mut tx, &me.account_id).await?.is_none() {
            return Err(Error::NotFound("resident record"));
        }
        let department = repo::nearest_department(&mut tx, &region.path, "GA")
            .await?
            .ok_or(Error::NotFound("department owning this data"))?;
        let id = new_id();
        let sealed = self
            .protector
            .seal_in(&mut tx, requested, &format!("correction_requests.requested:{id}"))
            .await
            .map_err(protect_error)?;
        repo::insert_correction(&mut tx, &id, &me.account_id, &department.id, field, &sealed, reason, millis(now))
            .await?;
        let event =
            Event::new(Action::CorrectionRequested, Outcome::Success).account(&me.account_id).username(&me.username);
        record(&mut tx, event.subject(&me.account_id).object(&format!("correction:{id}")).detail(field), now).await?;
        tx.commit().await?;
        Ok(CorrectionView {
            id,
            field: field.into(),
            requested: None,
            reason: reason.into(),
            department: department.name,
            status: CorrectionStatus::Open,
            created_at: now,
        })
    }

    /// Open correction requests addressed to the caller's own department, within the
    /// caller's jurisdiction. Requested values are shown as the masking policy allows the
    /// caller's roles, and every request opened is audited with its purpose.
    pub async fn corrections(
        &self,
        cap: &Capability<ResidentRead>,
        now: DateTime<Utc>,
    ) -> Result<Vec<CorrectionView>, Error> {
        let root = match cap.scope() {
            crate::Scope::All => "/".to_string(),
            crate::Scope::Subtree(p) => p.clone(),
        };
        let Some(department) = cap.department_id() else { return Ok(Vec::new()) };
        let policy = self.protector.policy().await.map_err(protect_error)?;
        let mut tx = self.db.begin().await?;
        let rows = repo::corrections_in_subtree(&mut tx, &root, 200).await?;
        let mut out = Vec::with_capacity(rows.len());
        for q in rows.into_iter().filter(|q| q.department_id == department) {
            let requested = self
                .protector
                .open_in(&mut tx, &q.requested_enc, &format!("correction_requests.requested:{}", q.id))
                .await
                .map_err(protect_error)?;
            let shown = policy.show(&format!("resident.{}", q.field), &requested, cap.roles(), true);
            let event =
                Event::new(Action::CorrectionRead, Outcome::Success).account(cap.account_id()).username(cap.username());
            let object = format!("correction:{}", q.id);
            let event = event.subject(&q.account_id).object(&object).jurisdiction(&q.region_path);
            record(&mut tx, event.purpose("处理更正申请 handling a correction request"), now).await?;
            out.push(CorrectionView {
                status: CorrectionStatus::stored(&q.status)?,
                id: q.id,
                field: q.field,
                requested: Some(shown),
                reason: q.reason,
                department: q.department,
                created_at: from_millis(q.created_at),
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Re-seals correction requests not under the active key; returns how many.
    pub async fn reseal_corrections(&self) -> Result<usize, Error> {
        let p = &self.protector;
        let active = p.active_key_id().await.map_err(protect_error)?;
        let mut tx = self.db.begin().await?;
        let rows = repo::corrections_not_under(&mut tx, &active).await?;
        for (id, sealed) in &rows {
            let context = format!("correction_requests.requested:{id}");
            let plain = p.open_in(&mut tx, sealed, &context).await.map_err(protect_error)?;
            let resealed = p.seal_in(&mut tx, &plain, &context).await.map_err(protect_error)?;
            repo::reseal_correction(&mut tx, id, &resealed).await?;
        }
        tx.commit().await?;
        Ok(rows.len())
    }
}
