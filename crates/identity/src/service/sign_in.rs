//! Signing in: password and second factor, browser sessions opened, API tokens issued.

use super::*;

kernel::area! {
    /// Signing in: password and second factor, browser sessions opened, API tokens issued.
    SignIn of Identity
}

impl SignIn<'_> {
    /// First browser step: the password. Accounts with an authenticator continue at
    /// [`Identity::complete_sign_in`].
    pub async fn begin_sign_in(
        &self,
        attempt: &SignInAttempt<'_>,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<BrowserSignIn, Error> {
        let creds = self.check_password(attempt, now).await?;
        let mut c = self.conn().await?;
        if creds.totp_secret.is_some() {
            let token = self.create_session(&mut c, &creds.id, "mfa", attempt.source, user_agent, now).await?;
            return Ok(BrowserSignIn { token, awaiting_code: true, device: None });
        }
        self.succeed(&mut c, &creds, attempt.source, "password", now).await?;
        let token = self.create_session(&mut c, &creds.id, "full", attempt.source, user_agent, now).await?;
        Ok(BrowserSignIn { token, awaiting_code: false, device: self.known_device(&creds.id, now) })
    }

    /// The username a pending (password-accepted) sign-in belongs to.
    pub async fn pending_sign_in(&self, token: &str, now: DateTime<Utc>) -> Result<String, Error> {
        let mut c = self.conn().await?;
        let s = repo::session_by_hash(&mut c, &sha256_hex(token)).await?.ok_or(Error::Unauthenticated)?;
        if s.stage != "mfa" || s.expires_at <= millis(now) {
            return Err(Error::Unauthenticated);
        }
        let creds = repo::credentials_by_id(&mut c, &s.account_id).await?.ok_or(Error::Unauthenticated)?;
        Ok(creds.username)
    }

    /// Second browser step: the code. Replaces the pending session with a full one.
    pub async fn complete_sign_in(
        &self,
        token: &str,
        code: &str,
        source: &str,
        user_agent: &str,
        now: DateTime<Utc>,
    ) -> Result<BrowserSignIn, Error> {
        let mut c = self.conn().await?;
        let s = repo::session_by_hash(&mut c, &sha256_hex(token)).await?.ok_or(Error::Unauthenticated)?;
        if s.stage != "mfa" || s.expires_at <= millis(now) {
            return Err(Error::Unauthenticated);
        }
        let creds = repo::credentials_by_id(&mut c, &s.account_id).await?.ok_or(Error::Unauthenticated)?;
        let wait = self.lock_wait(&mut c, &account_key(&creds.username), now).await?;
        self.refuse_if_locked(&mut c, wait, &creds.username, source, now).await?;
        self.check_code(&mut c, &creds, code, source, now).await?;
        repo::revoke_session(&mut c, &creds.id, &s.id, millis(now)).await?;
        self.succeed(&mut c, &creds, source, "password+totp", now).await?;
        let token = self.create_session(&mut c, &creds.id, "full", source, user_agent, now).await?;
        Ok(BrowserSignIn { token, awaiting_code: false, device: self.known_device(&creds.id, now) })
    }

    /// An account's principal without signing in: for seeding demo data from the console,
    /// never reachable from a request.
    pub async fn console_principal(&self, username: &str) -> Result<Principal, Error> {
        let mut c = self.conn().await?;
        let id = repo::account_id_by_username(&mut c, username).await?.ok_or(Error::NotFound("account"))?;
        Ok(self.principal(&mut c, &id).await?.0)
    }

    // --- API tokens ----------------------------------------------------------------------

    /// `POST /api/v1/auth/token`: password, and the TOTP code when the account has one.
    pub async fn issue_token(
        &self,
        attempt: &SignInAttempt<'_>,
        totp: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, Error> {
        let creds = self.check_password(attempt, now).await?;
        let mut c = self.conn().await?;
        let refusal = if creds.totp_secret.is_some() {
            match totp.map(str::trim).filter(|t| !t.is_empty()) {
                None => Some(Error::MfaRequired),
                Some(code) => match self.check_code(&mut c, &creds, code, attempt.source, now).await {
                    Ok(()) => None,
                    Err(Error::InvalidCode) => return Err(Error::InvalidCredentials),
                    Err(other) => return Err(other),
                },
            }
        } else if creds.kind == AccountKind::Staff {
            Some(Error::MfaEnrolmentRequired)
        } else {
            None
        };
        let refusal = refusal.or(creds.must_change_password.then_some(Error::PasswordChangeRequired));
        if let Some(refusal) = refusal {
            let reason = match refusal {
                Error::MfaRequired => "mfa_required",
                Error::MfaEnrolmentRequired => "mfa_enrolment_required",
                _ => "password_change_required",
            };
            let e = Event::new(Action::SignIn, Outcome::Denied)
                .account(&creds.id)
                .username(&creds.username)
                .source(attempt.source);
            record(&mut c, e.detail(reason), now).await?;
            return Err(refusal);
        }
        self.succeed(&mut c, &creds, attempt.source, "token", now).await?;
        let token = SecretString::new(random_token(32));
        let ttl_ms = i64::try_from(self.policy.token_ttl.as_millis()).unwrap_or(i64::MAX);
        let id = new_id();
        repo::insert_token(
            &mut c,
            &sha256_hex(token.expose()),
            &id,
            &creds.id,
            millis(now),
            millis(now).saturating_add(ttl_ms),
        )
        .await?;
        record(
            &mut c,
            Event::new(Action::TokenIssued, Outcome::Success)
                .account(&creds.id)
                .username(&creds.username)
                .source(attempt.source)
                .object(&id),
            now,
        )
        .await?;
        Ok(IssuedToken { token, expires_in: self.policy.token_ttl.as_secs() })
    }
}
