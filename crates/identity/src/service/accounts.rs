//! Creating accounts and granting or revoking roles (separated duties), and their display names.

use super::*;

kernel::area! {
    /// Creating accounts and granting or revoking roles (separated duties), and their display names.
    Accounts of Identity
}

impl Accounts<'_> {
    // --- accounts ------------------------------------------------------------------------

    /// Creates an account of any kind, inside the caller's transaction.
    pub async fn create_account_in(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<AccountCreate>,
        new: NewAccount,
        now: DateTime<Utc>,
    ) -> Result<CreatedAccount, Error> {
        let kind = new.kind.ok_or_else(|| Error::invalid("kind", "citizen, enterprise, staff or system"))?;
        let username = checked_username(kind, &new.username)?;
        let display_name = new.display_name.trim();
        if display_name.is_empty() || display_name.chars().count() > 100 {
            return Err(Error::invalid("display_name", "must be 1–100 characters"));
        }
        let place = placement(c, cap, &new, kind).await?;
        let profile = checked_profile(new.profile)?;
        if repo::username_taken(c, &username).await? {
            return Err(Error::Conflict {
                code: ErrorCode::UsernameTaken,
                message: format!("the username {username} is taken"),
            });
        }
        let (password, temporary, must_change) = match new.password {
            Some(p) => {
                password::check_policy(&username, p.expose())?;
                (Some(p), None, new.must_change_password)
            }
            None if matches!(kind, AccountKind::Staff | AccountKind::System) => {
                let p = SecretString::new(random_token(12));
                (Some(p.clone()), Some(p), kind == AccountKind::Staff)
            }
            None => (None, None, false),
        };
        let phc = match password {
            Some(p) => Some(hash_password(p).await?),
            None => None,
        };
        let id = new_id();
        let sealed_totp = match &new.totp_secret {
            Some(secret) => {
                Some(self.key.seal(secret, &totp_context(&id)).map_err(|e| Error::Internal(e.to_string()))?)
            }
            None => None,
        };
        repo::insert_account(
            c,
            &repo::NewAccountRow {
                id: &id,
                kind,
                username: &username,
                display_name,
                password_hash: phc.as_deref(),
                must_change_password: must_change,
                totp_secret: sealed_totp.as_deref(),
                region_id: place.region_id.as_deref(),
                department_id: place.department_id.as_deref(),
                created_at: millis(now),
            },
        )
        .await
        .map_err(|e| unique_as(e, ErrorCode::UsernameTaken, "the username is taken"))?;
        self.insert_profile(c, &id, &profile).await?;
        let event = Event::new(Action::AccountCreated, Outcome::Success)
            .account(cap.account_id())
            .object(&id)
            .detail(&username);
        record(c, event, now).await?;
        Ok(CreatedAccount { id, username, temporary_password: temporary })
    }

    /// Stores a resident's profile (personal fields sealed, ID number and mobile blind-indexed)
    /// or an enterprise's.
    async fn insert_profile(&self, c: &mut AnyConnection, id: &str, profile: &Profile) -> Result<(), Error> {
        match profile {
            Profile::Citizen { real_name, id_number, mobile, address } => {
                let p = &self.protector;
                // Sealing runs on the caller's transaction: no second pooled connection.
                let id_number_enc =
                    p.seal_in(c, id_number, &citizen_context("id_number", id)).await.map_err(protect_error)?;
                let mobile_enc = p.seal_in(c, mobile, &citizen_context("mobile", id)).await.map_err(protect_error)?;
                let address_enc = match address {
                    Some(a) => Some(p.seal_in(c, a, &citizen_context("address", id)).await.map_err(protect_error)?),
                    None => None,
                };
                let sealed = repo::SealedCitizen {
                    id_number_enc: &id_number_enc,
                    id_number_bidx: &p.blind_index("id_number", id_number),
                    mobile_enc: &mobile_enc,
                    mobile_bidx: &p.blind_index("mobile", mobile),
                    address_enc: address_enc.as_deref(),
                    key_id: Protector::key_of(&id_number_enc)
                        .ok_or_else(|| Error::Internal("a sealed value names no data key".into()))?,
                };
                repo::insert_citizen(c, id, real_name, &sealed)
                    .await
                    .map_err(|e| unique_as(e, ErrorCode::IdNumberTaken, "a resident with this ID number exists"))
            }
            Profile::Enterprise { name, credit_code, legal_representative } => {
                repo::insert_enterprise(c, id, name, credit_code, legal_representative)
                    .await
                    .map_err(|e| unique_as(e, ErrorCode::CreditCodeTaken, "an enterprise with this credit code exists"))
            }
            Profile::None => Ok(()),
        }
    }

    /// [`Accounts::create_account_in`] in a transaction of its own.
    pub async fn create_account(
        &self,
        cap: &Capability<AccountCreate>,
        new: NewAccount,
        now: DateTime<Utc>,
    ) -> Result<CreatedAccount, Error> {
        let mut tx = self.db.begin().await?;
        let created = self.create_account_in(&mut tx, cap, new, now).await?;
        tx.commit().await?;
        Ok(created)
    }

    /// The region path of the account with this username (or id), if it has a region.
    pub async fn region_path_of(&self, username_or_id: &str) -> Result<Option<String>, Error> {
        let mut c = self.conn().await?;
        let id = match repo::account_id_by_username(&mut c, &username_or_id.trim().to_lowercase()).await? {
            Some(id) => id,
            None => username_or_id.to_string(),
        };
        Ok(repo::account(&mut c, &id).await?.and_then(|a| a.region).map(|r| r.path))
    }

    pub async fn account_id(&self, username: &str) -> Result<String, Error> {
        let mut c = self.conn().await?;
        repo::account_id_by_username(&mut c, &username.trim().to_lowercase()).await?.ok_or(Error::NotFound("account"))
    }

    /// Grants a role. Refuses a second separated duty (三员分立); the target's sessions end,
    /// so that their next sign-in carries the new privileges.
    pub async fn grant_role_in(
        &self,
        c: &mut AnyConnection,
        cap: &Capability<RoleGrantPermission>,
        account_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        if account_id == cap.account_id() {
            return Err(Error::Denied(Denial::OwnAccount));
        }
        let target = repo::account(c, account_id).await?.ok_or(Error::NotFound("account"))?;
        cap.check_record(target.region.as_ref().map_or("/", |r| r.path.as_str()), 1)?;
        if !matches!(target.kind, AccountKind::Staff | AccountKind::System) {
            return Err(Error::invalid("account_id", "roles are held by staff and system accounts"));
        }
        let duty = repo::role_duty(c, role).await?.ok_or(Error::NotFound("role"))?;
        let held = repo::role_codes_of(c, account_id).await?;
        if held.iter().any(|(code, _)| code == role) {
            return Ok(false);
        }
        // 三员分立: an administrative duty is the account's only role, so an administrator
        // never also reads residents' records.
        let clash = if duty.is_some() { held.first() } else { held.iter().find(|(_, d)| d.is_some()) };
        if let Some((other, _)) = clash {
            return Err(duty_conflict(role, other));
        }
        repo::insert_account_role(c, account_id, role, duty.as_deref(), millis(now), cap.account_id()).await.map_err(
            |e| {
                unique_as(
                    e,
                    ErrorCode::DutyConflict,
                    "an account holds at most one of system admin, security admin and auditor",
                )
            },
        )?;
        repo::revoke_sessions(c, account_id, None, millis(now)).await?;
        record(
            c,
            Event::new(Action::RoleGranted, Outcome::Success)
                .account(cap.account_id())
                .username(cap.username())
                .object(account_id)
                .detail(role),
            now,
        )
        .await?;
        Ok(true)
    }

    /// [`Accounts::grant_role_in`] in a transaction of its own; the account's cached tokens
    /// are forgotten once it commits.
    pub async fn grant_role(
        &self,
        cap: &Capability<RoleGrantPermission>,
        account_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let mut tx = self.db.begin().await?;
        let granted = self.grant_role_in(&mut tx, cap, account_id, role, now).await?;
        tx.commit().await?;
        self.tokens.forget_account(account_id);
        Ok(granted)
    }

    pub async fn revoke_role(
        &self,
        cap: &Capability<RoleGrantPermission>,
        account_id: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let mut tx = self.db.begin().await?;
        let target = repo::account(&mut tx, account_id).await?.ok_or(Error::NotFound("account"))?;
        cap.check_record(target.region.as_ref().map_or("/", |r| r.path.as_str()), 1)?;
        if !repo::delete_account_role(&mut tx, account_id, role).await? {
            return Err(Error::NotFound("role grant"));
        }
        repo::revoke_sessions(&mut tx, account_id, None, millis(now)).await?;
        record(
            &mut tx,
            Event::new(Action::RoleRevoked, Outcome::Success)
                .account(cap.account_id())
                .username(cap.username())
                .object(account_id)
                .detail(role),
            now,
        )
        .await?;
        tx.commit().await?;
        self.tokens.forget_account(account_id);
        Ok(())
    }

    /// An account's display name (for case pages and certificates).
    pub async fn display_name(&self, account_id: &str) -> Result<String, Error> {
        let mut c = self.conn().await?;
        self.display_name_in(&mut c, account_id).await
    }

    /// [`Identity::display_name`] on the caller's connection (or transaction).
    pub async fn display_name_in(&self, c: &mut AnyConnection, account_id: &str) -> Result<String, Error> {
        Ok(repo::account(c, account_id).await?.ok_or(Error::NotFound("account"))?.display_name)
    }

    /// The display names of several accounts, by id (for lists that show many people).
    pub async fn display_names_in(
        &self,
        c: &mut AnyConnection,
        account_ids: &[&str],
    ) -> Result<HashMap<String, String>, Error> {
        Ok(repo::display_names(c, account_ids).await?)
    }
}

/// A new account's username, stored lower-case: usernames, system client names included, are
/// case-insensitive.
fn checked_username(kind: AccountKind, raw: &str) -> Result<String, Error> {
    let username = raw.trim().to_lowercase();
    match kind {
        AccountKind::System if !ids::validate_client_name(raw.trim()) => {
            Err(Error::invalid("username", "a system client is named INSTANCE/CLASS/MEMBER/SUBSYSTEM"))
        }
        AccountKind::System => Ok(username),
        _ if !valid_username(&username) => {
            Err(Error::invalid("username", "3–64 characters: a–z, 0–9, '.', '_' or '-'"))
        }
        _ => Ok(username),
    }
}

/// Where a new account sits: its region and department.
struct Placement {
    region_id: Option<String>,
    department_id: Option<String>,
}

/// Finds the region and department a new account names and checks them against the creating
/// administrator's jurisdiction.
async fn placement(
    c: &mut AnyConnection,
    cap: &Capability<AccountCreate>,
    new: &NewAccount,
    kind: AccountKind,
) -> Result<Placement, Error> {
    let region = match &new.region_code {
        Some(code) => Some(repo::region_by_code(c, code).await?.ok_or(Error::NotFound("region"))?),
        None => None,
    };
    let department = match &new.department_code {
        Some(code) => Some(repo::department_by_code(c, code).await?.ok_or(Error::NotFound("department"))?),
        None => None,
    };
    // A staff member without an explicit region works in the department's region.
    let region_id = match (&region, &department) {
        (Some(r), _) => Some(r.id.clone()),
        (None, Some((_, region_id))) => Some(region_id.clone()),
        (None, None) => None,
    };
    // An administrator creates accounts within her jurisdiction, for its departments only;
    // an account with no region is the platform's, for platform-wide administrators.
    if let Some((_, department_region)) = &department {
        let path = repo::region_path_by_id(c, department_region).await?.ok_or(Error::NotFound("region"))?;
        cap.check_record(&path, 1)?;
    }
    match &region {
        Some(r) => cap.check_record(&r.path, 1)?,
        None if department.is_none() => cap.check_record("/", 1)?,
        None => {}
    }
    if kind == AccountKind::Staff && region_id.is_none() {
        return Err(Error::invalid("region_code", "staff need a region or a department"));
    }
    if matches!(new.profile, Profile::Citizen { .. } | Profile::Enterprise { .. }) && region_id.is_none() {
        return Err(Error::invalid("region_code", "residents and enterprises need a region"));
    }
    Ok(Placement { region_id, department_id: department.map(|(d, _)| d.id) })
}

/// A new account's profile, its identifiers checked and its text trimmed.
fn checked_profile(profile: Profile) -> Result<Profile, Error> {
    Ok(match profile {
        Profile::Citizen { real_name, id_number, mobile, address } => {
            let id_number =
                ids::validate_resident_id(&id_number).map_err(|e| Error::invalid("id_number", e.to_string()))?;
            let mobile = mobile.trim().to_string();
            if mobile.len() != 11 || !mobile.starts_with('1') || !mobile.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::invalid("mobile", "an 11-digit mobile number starting with 1"));
            }
            let address = address.map(|a| a.trim().to_string()).filter(|a| !a.is_empty());
            if address.as_ref().is_some_and(|a| a.chars().count() > 200) {
                return Err(Error::invalid("address", "at most 200 characters"));
            }
            Profile::Citizen { real_name: real_name.trim().into(), id_number, mobile, address }
        }
        Profile::Enterprise { name, credit_code, legal_representative } => {
            let credit_code =
                ids::validate_credit_code(&credit_code).map_err(|e| Error::invalid("credit_code", e.to_string()))?;
            Profile::Enterprise {
                name: name.trim().into(),
                credit_code,
                legal_representative: legal_representative.trim().into(),
            }
        }
        Profile::None => Profile::None,
    })
}
