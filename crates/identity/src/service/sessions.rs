//! Open browser sessions and API tokens: who is calling, signing out, revocation.

use super::*;

kernel::area! {
    /// Open browser sessions and API tokens: who is calling, signing out, revocation.
    Sessions of Identity
}

impl Sessions<'_> {
    /// The signed-in session behind a cookie value; idle and absolute timeouts apply.
    pub async fn session(&self, token: &str, now: DateTime<Utc>) -> Result<Session, Error> {
        let mut c = self.conn().await?;
        let s = repo::session_by_hash(&mut c, &sha256_hex(token)).await?.ok_or(Error::Unauthenticated)?;
        let now_ms = millis(now);
        let idle_ms = i64::try_from(self.policy.idle.as_millis()).unwrap_or(i64::MAX);
        if s.stage != "full" || s.expires_at <= now_ms {
            return Err(Error::Unauthenticated);
        }
        if now_ms - s.last_seen_at > idle_ms {
            repo::revoke_session(&mut c, &s.account_id, &s.id, now_ms).await?;
            return Err(Error::Unauthenticated);
        }
        if now_ms - s.last_seen_at > TOUCH_EVERY_MS {
            repo::touch_session(&mut c, &s.id, now_ms).await?;
        }
        let (principal, account) = self.principal(&mut c, &s.account_id).await?;
        let gate = if account.must_change_password {
            Gate::MustChangePassword
        } else if account.kind == AccountKind::Staff && !account.has_totp {
            Gate::MustEnrolMfa
        } else {
            Gate::Ready
        };
        let unused_recovery_codes = repo::unused_recovery_codes(&mut c, &account.id).await?;
        Ok(Session {
            id: s.id,
            principal,
            gate,
            locale: account.locale,
            elder_mode: account.elder_mode,
            has_totp: account.has_totp,
            unused_recovery_codes,
        })
    }

    pub async fn sign_out(&self, token: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let mut c = self.conn().await?;
        if let Some(s) = repo::session_by_hash(&mut c, &sha256_hex(token)).await? {
            repo::revoke_session(&mut c, &s.account_id, &s.id, millis(now)).await?;
            record(&mut c, Event::new(Action::SignOut, Outcome::Success).account(&s.account_id), now).await?;
        }
        Ok(())
    }

    /// Ends every session and revokes every API token of the account.
    pub async fn sign_out_everywhere(&self, session: &Session, source: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let account_id = session.principal.account_id.as_str();
        let mut tx = self.db.begin().await?;
        let sessions = repo::revoke_sessions(&mut tx, account_id, None, millis(now)).await?;
        let tokens = repo::revoke_tokens(&mut tx, account_id, millis(now)).await?;
        repo::forget_devices(&mut tx, account_id, now.timestamp()).await?;
        let detail = format!("sessions={sessions} tokens={tokens}");
        record(
            &mut tx,
            Event::new(Action::SignOutEverywhere, Outcome::Success).account(account_id).source(source).detail(&detail),
            now,
        )
        .await?;
        tx.commit().await?;
        self.tokens.forget_account(account_id);
        Ok(())
    }

    /// The caller's own active sessions.
    pub async fn list(&self, session: &Session, now: DateTime<Utc>) -> Result<Vec<SessionSummary>, Error> {
        let (account_id, current) = (session.principal.account_id.as_str(), session.id.as_str());
        let mut c = self.conn().await?;
        let idle_ms = i64::try_from(self.policy.idle.as_millis()).unwrap_or(i64::MAX);
        let rows = repo::active_sessions(&mut c, account_id, millis(now)).await?;
        Ok(rows
            .into_iter()
            .filter(|s| millis(now) - s.last_seen_at <= idle_ms)
            .map(|s| SessionSummary {
                current: s.id == current,
                id: s.id,
                created_at: from_millis(s.created_at),
                last_seen_at: from_millis(s.last_seen_at),
                source: s.source,
                user_agent: s.user_agent,
            })
            .collect())
    }

    /// Ends one of the caller's own sessions.
    pub async fn revoke_session(&self, session: &Session, session_id: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let account_id = session.principal.account_id.as_str();
        let mut c = self.conn().await?;
        if !repo::revoke_session(&mut c, account_id, session_id, millis(now)).await? {
            return Err(Error::NotFound("session"));
        }
        record(&mut c, Event::new(Action::SessionRevoked, Outcome::Success).account(account_id).object(session_id), now)
            .await
    }

    pub async fn token_principal(&self, token: &str, now: DateTime<Utc>) -> Result<Principal, Error> {
        let hash = sha256_hex(token);
        let now_ms = millis(now);
        let ttl_ms = i64::try_from(self.policy.auth_cache.as_millis()).unwrap_or(0);
        if ttl_ms > 0
            && let Some(p) = self.tokens.get(&hash, now_ms, ttl_ms)
        {
            return Ok(p);
        }
        let mut c = self.conn().await?;
        let (account, roles, expires_at) =
            repo::token_account(&mut c, &hash, now_ms).await?.ok_or(Error::Unauthenticated)?;
        let principal = principal_of(account, roles);
        if ttl_ms > 0 {
            self.tokens.put(hash, principal.clone(), now_ms, expires_at);
        }
        Ok(principal)
    }

    pub async fn revoke_token(&self, token: &str, source: &str, now: DateTime<Utc>) -> Result<(), Error> {
        let mut c = self.conn().await?;
        let hash = sha256_hex(token);
        let (id, account_id) = repo::live_token(&mut c, &hash, millis(now)).await?.ok_or(Error::Unauthenticated)?;
        repo::revoke_token(&mut c, &hash, millis(now)).await?;
        self.tokens.forget(&hash);
        record(
            &mut c,
            Event::new(Action::TokenRevoked, Outcome::Success).account(&account_id).source(source).object(&id),
            now,
        )
        .await
    }
}
