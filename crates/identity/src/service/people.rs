//! Residents and enterprises as staff see them, within jurisdiction and clearance, every read on the audit trail; what services prefill from.

use super::*;

kernel::area! {
    /// Residents and enterprises as staff see them, within jurisdiction and clearance, every read on the audit trail; what services prefill from.
    People of Identity
}

impl People<'_> {
    // --- people records ------------------------------------------------------------------

    /// A resident's record (masked), if within the caller's jurisdiction. The basic record
    /// is internal data (L2); plain identifiers will need a stated purpose.
    pub async fn resident(
        &self,
        cap: &Capability<ResidentRead>,
        account_id: &str,
        purpose: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ResidentView, Error> {
        let purpose = stated_purpose(purpose)?;
        let policy = self.protector.policy().await.map_err(protect_error)?;
        let mut tx = self.db.begin().await?;
        let r = repo::resident(&mut tx, account_id).await?.ok_or(Error::NotFound("resident"))?;
        let object = format!("resident:{account_id}");
        let mut check = cap.check_record(&r.region.path, 2);
        let unmask = purpose.is_some();
        if check.is_ok() && unmask && !policy.may_unmask("resident.id_number", cap.roles()) {
            check = Err(Denial::MaskedForRole);
        }
        if let Err(denial) = check {
            let e = self.deny(&mut tx, cap, &object, Some(account_id), denial, now).await;
            tx.commit().await?;
            return Err(e);
        }
        // Every read of personal data is on the trail, with the person it is about; showing
        // plain values also names the stated purpose.
        let action = if unmask { Action::ResidentUnmasked } else { Action::ResidentRead };
        let event = Event::new(action, Outcome::Success).account(cap.account_id()).username(cap.username());
        let mut event = event.object(&object).subject(account_id).jurisdiction(&r.region.path);
        if let Some(p) = purpose {
            event = event.purpose(p);
        }
        record(&mut tx, event, now).await?;
        tx.commit().await?;
        let open = open_resident(&self.protector, &mut *self.conn().await?, &r).await?;
        Ok(resident_view(r, &open, &policy, cap.roles(), unmask))
    }

    /// The resident with this ID number, found by its blind index (no table is decrypted).
    pub async fn resident_by_id_number(
        &self,
        cap: &Capability<ResidentRead>,
        id_number: &str,
        purpose: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<ResidentView, Error> {
        let id_number = ids::validate_resident_id(id_number).map_err(|e| Error::invalid("id_number", e.to_string()))?;
        let bidx = self.protector.blind_index("id_number", &id_number);
        let account_id = {
            let mut c = self.conn().await?;
            repo::citizen_by_id_number_index(&mut c, &bidx).await?.ok_or(Error::NotFound("resident"))?
        };
        self.resident(cap, &account_id, purpose, now).await
    }

    /// Re-seals up to `batch` citizens whose values are not under the active data key;
    /// returns (re-sealed now, still to do). Key rotation calls this until nothing is left.
    pub async fn reseal_citizens(&self, batch: i64) -> Result<(usize, i64), Error> {
        let p = &self.protector;
        let active = p.active_key_id().await.map_err(protect_error)?;
        let rows = {
            let mut c = self.conn().await?;
            repo::citizens_not_under(&mut c, &active, batch.clamp(1, 10_000)).await?
        };
        let mut tx = self.db.begin().await?;
        for r in &rows {
            let open = open_resident(p, &mut tx, r).await?;
            let id = &r.account_id;
            let id_number =
                p.seal_in(&mut tx, &open.id_number, &citizen_context("id_number", id)).await.map_err(protect_error)?;
            let mobile =
                p.seal_in(&mut tx, &open.mobile, &citizen_context("mobile", id)).await.map_err(protect_error)?;
            let address = match &open.address {
                Some(a) => Some(p.seal_in(&mut tx, a, &citizen_context("address", id)).await.map_err(protect_error)?),
                None => None,
            };
            let key = Protector::key_of(&id_number)
                .ok_or_else(|| Error::Internal("a sealed ID number names no key".into()))?;
            repo::reseal_citizen(&mut tx, id, &id_number, &mobile, address.as_deref(), key).await?;
        }
        let (_, remaining) = repo::citizens_by_key(&mut tx, &active).await?;
        tx.commit().await?;
        Ok((rows.len(), remaining))
    }

    /// What the platform holds about an applicant, as prefill facts (`profile.name`,
    /// `enterprise.credit_code`, …), with where they live and their mobile number. For the
    /// services module, which checks who may ask: the applicant, or staff at the window with
    /// the applicant present (and audits that).
    pub async fn applicant_facts(&self, account_id: &str, now: DateTime<Utc>) -> Result<ApplicantFacts, Error> {
        let mut c = self.conn().await?;
        let account = repo::account(&mut c, account_id).await?.ok_or(Error::NotFound("account"))?;
        let mut facts = std::collections::BTreeMap::new();
        let mut mobile = None;
        if let Some(r) = repo::resident(&mut c, account_id).await? {
            let open = open_resident(&self.protector, &mut c, &r).await?;
            let id_number = open.id_number.to_string();
            facts.insert("profile.name".into(), serde_json::Value::from(r.real_name.clone()));
            if let Some((birth, sex)) = ids::birth_and_sex(&id_number) {
                facts.insert("profile.birth_date".into(), serde_json::Value::from(birth.to_string()));
                facts.insert("profile.sex".into(), serde_json::Value::from(sex));
                facts.insert("profile.age".into(), serde_json::Value::from(ids::age_on(birth, now.date_naive())));
            }
            facts.insert("profile.id_number".into(), serde_json::Value::from(id_number));
            facts.insert("profile.mobile".into(), serde_json::Value::from(open.mobile.to_string()));
            if let Some(a) = &open.address {
                facts.insert("profile.address".into(), serde_json::Value::from(a.to_string()));
            }
            mobile = Some(open.mobile.to_string());
        }
        if let Some(e) = repo::enterprise(&mut c, account_id).await? {
            facts.insert("enterprise.name".into(), serde_json::Value::from(e.name));
            facts.insert("enterprise.credit_code".into(), serde_json::Value::from(e.credit_code));
            facts.insert("enterprise.legal_representative".into(), serde_json::Value::from(e.legal_representative));
        }
        let wants_email = repo::notification_email(&mut c, account_id).await?.is_some();
        Ok(ApplicantFacts {
            account_id: account.id,
            kind: account.kind,
            display_name: account.display_name,
            region: account.region,
            mobile,
            wants_email,
            facts,
        })
    }

    /// The account behind a resident ID number, for staff serving someone at the window.
    /// The citizen whose ID number has this blind index (domain `id_number`), on the
    /// caller's connection.
    pub async fn citizen_by_id_index_in(&self, c: &mut AnyConnection, bidx: &str) -> Result<Option<String>, Error> {
        Ok(repo::citizen_by_id_number_index(c, bidx).await?)
    }

    /// [`Identity::citizen_by_id_index_in`] for many indexes at once: index → account.
    pub async fn citizens_by_id_indexes_in(
        &self,
        c: &mut AnyConnection,
        indexes: &[&str],
    ) -> Result<HashMap<String, String>, Error> {
        Ok(repo::citizens_by_id_number_indexes(c, indexes).await?.into_iter().collect())
    }

    pub async fn citizen_by_id_number(&self, id_number: &str) -> Result<Option<String>, Error> {
        let mut c = self.conn().await?;
        let bidx = self.protector.blind_index("id_number", &id_number.trim().to_uppercase());
        Ok(repo::citizen_by_id_number_index(&mut c, &bidx).await?)
    }

    /// How many values of this module are sealed under `key_id` (citizens' identifiers and
    /// correction requests).
    pub async fn citizens_under_key(&self, key_id: &str) -> Result<i64, Error> {
        let mut c = self.conn().await?;
        let citizens = repo::citizens_by_key(&mut c, key_id).await?.0;
        let corrections = repo::corrections_sealed_under(&mut c, key_id).await?;
        Ok(citizens + corrections)
    }

    pub async fn enterprise(
        &self,
        cap: &Capability<EnterpriseRead>,
        account_id: &str,
        now: DateTime<Utc>,
    ) -> Result<EnterpriseView, Error> {
        let mut tx = self.db.begin().await?;
        let e = repo::enterprise(&mut tx, account_id).await?.ok_or(Error::NotFound("enterprise"))?;
        let object = format!("enterprise:{account_id}");
        if let Err(denial) = cap.check_record(&e.region.path, 1) {
            let err = self.deny(&mut tx, cap, &object, Some(account_id), denial, now).await;
            tx.commit().await?;
            return Err(err);
        }
        let event =
            Event::new(Action::EnterpriseRead, Outcome::Success).account(cap.account_id()).username(cap.username());
        record(&mut tx, event.object(&object).subject(account_id).jurisdiction(&e.region.path), now).await?;
        tx.commit().await?;
        Ok(EnterpriseView {
            id: e.account_id,
            name: e.name,
            credit_code: e.credit_code,
            legal_representative: e.legal_representative,
            region: e.region,
        })
    }

    /// Residents within the caller's jurisdiction (masked), at most `limit`.
    pub async fn residents(
        &self,
        cap: &Capability<ResidentRead>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<ResidentView>, Error> {
        let mut tx = self.db.begin().await?;
        let root = match cap.scope() {
            crate::Scope::All => "/".to_string(),
            crate::Scope::Subtree(p) => p.clone(),
        };
        // The list shows basic (L2) records: the caller's clearance must cover that.
        if let Err(denial) = cap.check_record(&root, 2) {
            let e = self.deny(&mut tx, cap, "residents", None, denial, now).await;
            tx.commit().await?;
            return Err(e);
        }
        let rows = repo::residents_in_subtree(&mut tx, &root, limit.clamp(1, 500)).await?;
        // Each person listed had their (masked) data shown: one entry each, for 我的数据.
        for r in &rows {
            let event =
                Event::new(Action::ResidentListed, Outcome::Success).account(cap.account_id()).username(cap.username());
            record(&mut tx, event.object("residents").subject(&r.account_id).jurisdiction(&r.region.path), now).await?;
        }
        tx.commit().await?;
        let policy = self.protector.policy().await.map_err(protect_error)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut c = self.conn().await?;
        for r in rows {
            let open = open_resident(&self.protector, &mut c, &r).await?;
            out.push(resident_view(r, &open, &policy, cap.roles(), false));
        }
        Ok(out)
    }
}
