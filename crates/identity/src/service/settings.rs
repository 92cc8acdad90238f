//! What people set on their own account: password, authenticator, preferences, the address for notifications.

use super::*;

kernel::area! {
    /// What people set on their own account: password, authenticator, preferences, the address for notifications.
    Settings of Identity
}

impl Settings<'_> {
    // --- self-service --------------------------------------------------------------------

    /// Changes the password and ends every other session and token; returns the cookie value
    /// of a fresh session that replaces the current one.
    pub async fn change_password(
        &self,
        session: &Session,
        change: PasswordChange<'_>,
        source: &str,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<SecretString, Error> {
        let (session_id, account_id) = (session.id.as_str(), session.principal.account_id.as_str());
        let PasswordChange { current, new } = change;
        let creds = {
            let mut c = self.conn().await?;
            let creds = repo::credentials_by_id(&mut c, account_id).await?.ok_or(Error::Unauthenticated)?;
            // Guessing the current password from a borrowed session is throttled too.
            let wait = self.lock_wait(&mut c, &account_key(&creds.username), now).await?;
            self.refuse_if_locked(&mut c, wait, &creds.username, source, now).await?;
            creds
        };
        if !verify_password(current.clone(), creds.password_hash.clone()).await? {
            let mut c = self.conn().await?;
            self.fail(&mut c, Some(account_id), &creds.username, source, "bad_current_password", now).await?;
            return Err(Error::InvalidCredentials);
        }
        password::check_policy(&creds.username, new.expose())?;
        if new == current {
            return Err(Error::invalid("new_password", "the new password must differ from the current one"));
        }
        let phc = hash_password(new.clone()).await?;
        let mut tx = self.db.begin().await?;
        repo::set_password(&mut tx, account_id, &phc, false).await?;
        repo::revoke_sessions(&mut tx, account_id, None, millis(now)).await?;
        repo::revoke_tokens(&mut tx, account_id, millis(now)).await?;
        repo::forget_devices(&mut tx, account_id, now.timestamp()).await?;
        record(
            &mut tx,
            Event::new(Action::PasswordChanged, Outcome::Success).account(account_id).source(source).object(session_id),
            now,
        )
        .await?;
        let token = self.create_session(&mut tx, account_id, "full", source, user_agent, now).await?;
        tx.commit().await?;
        self.tokens.forget_account(account_id);
        Ok(token)
    }

    /// Starts (or resumes) authenticator enrolment: the secret waits, sealed, until a code
    /// from the app confirms it.
    pub async fn begin_totp_enrolment(&self, session: &Session) -> Result<Enrolment, Error> {
        let account_id = session.principal.account_id.as_str();
        let mut c = self.conn().await?;
        let creds = repo::credentials_by_id(&mut c, account_id).await?.ok_or(Error::Unauthenticated)?;
        if creds.totp_secret.is_some() {
            return Err(already_enrolled());
        }
        let context = totp_context(account_id);
        let secret = match repo::pending_totp(&mut c, account_id).await? {
            Some(sealed) => self.key.open(&sealed, &context).map_err(|e| Error::Internal(e.to_string()))?.to_vec(),
            None => {
                let secret = mfa::new_secret();
                let sealed = self.key.seal(&secret, &context).map_err(|e| Error::Internal(e.to_string()))?;
                repo::set_pending_totp(&mut c, account_id, &sealed).await?;
                secret
            }
        };
        let totp = mfa::totp(&secret, &creds.username).map_err(|e| Error::Internal(e.to_string()))?;
        let uri = totp.get_url();
        let qr_svg = mfa::qr_svg(&uri).ok_or_else(|| Error::Internal("QR code".into()))?;
        Ok(Enrolment { secret_base32: mfa::secret_base32(&secret), uri, qr_svg })
    }

    /// Confirms enrolment with a code from the app; returns the one-time recovery codes
    /// (shown once) and a fresh session cookie value (the privilege changed).
    pub async fn confirm_totp_enrolment(
        &self,
        session: &Session,
        code: &str,
        source: &str,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<(Vec<String>, SecretString), Error> {
        let account_id = session.principal.account_id.as_str();
        let mut tx = self.db.begin().await?;
        let creds = repo::credentials_by_id(&mut tx, account_id).await?.ok_or(Error::Unauthenticated)?;
        // Replacing a working authenticator needs more than a session: refuse.
        if creds.totp_secret.is_some() {
            return Err(already_enrolled());
        }
        let context = totp_context(account_id);
        let sealed = repo::pending_totp(&mut tx, account_id).await?.ok_or(Error::NotFound("enrolment"))?;
        let secret = self.key.open(&sealed, &context).map_err(|e| Error::Internal(e.to_string()))?;
        let totp = mfa::totp(&secret, &creds.username).map_err(|e| Error::Internal(e.to_string()))?;
        let step = mfa::verify(&totp, code, u64::try_from(now.timestamp()).unwrap_or(0)).ok_or(Error::InvalidCode)?;
        repo::enable_totp(&mut tx, account_id, &sealed, i64::try_from(step).unwrap_or(i64::MAX)).await?;
        let codes = mfa::new_recovery_codes();
        let hashes: Vec<String> = codes.iter().map(|c| self.recovery_code_hash(c)).collect();
        repo::replace_recovery_codes(&mut tx, account_id, &hashes).await?;
        repo::revoke_sessions(&mut tx, account_id, None, millis(now)).await?;
        record(
            &mut tx,
            Event::new(Action::MfaEnrolled, Outcome::Success)
                .account(account_id)
                .username(&creds.username)
                .source(source),
            now,
        )
        .await?;
        let token = self.create_session(&mut tx, account_id, "full", source, user_agent, now).await?;
        tx.commit().await?;
        Ok((codes, token))
    }

    pub async fn set_preferences(
        &self,
        session: &Session,
        locale: Option<&str>,
        elder_mode: Option<bool>,
    ) -> Result<(), Error> {
        let account_id = session.principal.account_id.as_str();
        let mut c = self.conn().await?;
        repo::set_preferences(&mut c, account_id, locale, elder_mode).await?;
        Ok(())
    }

    /// Sets (or, with `None`, clears) the address that gets notifications by email.
    pub async fn set_notification_email(
        &self,
        me: &Principal,
        email: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email
            && (e.len() > 254 || e.parse::<lettre::Address>().is_err())
        {
            return Err(Error::Invalid { field: "email", reason: "an email address such as name@example.cn".into() });
        }
        let context = format!("accounts:notification_email:{}", me.account_id);
        let sealed = match email {
            Some(e) => Some(self.protector.seal(e, &context).await.map_err(|e| Error::Internal(e.to_string()))?),
            None => None,
        };
        let mut tx = self.db.begin().await?;
        repo::set_notification_email(&mut tx, &me.account_id, sealed.as_deref()).await?;
        let event = Event::new(
            if email.is_some() { Action::NotificationEmailSet } else { Action::NotificationEmailCleared },
            Outcome::Success,
        );
        record(&mut tx, event.account(&me.account_id).subject(&me.account_id), now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The address that gets notifications by email, if the person gave one.
    pub async fn notification_email(&self, account_id: &str) -> Result<Option<String>, Error> {
        let mut c = self.conn().await?;
        let Some(sealed) = repo::notification_email(&mut c, account_id).await? else { return Ok(None) };
        let context = format!("accounts:notification_email:{account_id}");
        let plain =
            self.protector.open_in(&mut c, &sealed, &context).await.map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Some(plain.to_string()))
    }

    /// Whether the person wants email, inside the caller's transaction.
    pub async fn wants_email_in(&self, c: &mut AnyConnection, account_id: &str) -> Result<bool, Error> {
        Ok(repo::notification_email(c, account_id).await?.is_some())
    }
}
