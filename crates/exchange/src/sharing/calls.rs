//! The systems that call the exchange and their calls: reads of granted fields (masked by
//! classification unless plain values are granted), verification-only queries answered yes
//! or no with a signed receipt, rate limits, and the call journal. Every call, answered or
//! refused, is an entry on the `audit` ledger naming the data subject.

use super::*;

impl Sharing<'_> {
    // --- systems ---------------------------------------------------------------------------

    /// Registers a system of a department: a system account named as the Information
    /// Mediator names it, and a secret shown once.
    pub async fn register_client(
        &self,
        cap: &Capability<AccountCreate>,
        department_code: &str,
        mediator_client: &str,
        now: DateTime<Utc>,
    ) -> Result<RegisteredClient, Error> {
        let name = mediator_client.trim();
        let mut tx = self.inner.db.begin().await?;
        let department = self
            .inner
            .identity
            .organisation()
            .department_by_code_in(&mut tx, department_code)
            .await?
            .ok_or(Error::NotFound("department"))?;
        let account = self
            .inner
            .identity
            .accounts()
            .create_account_in(
                &mut tx,
                cap,
                NewAccount {
                    kind: Some(AccountKind::System),
                    username: name.to_string(),
                    display_name: format!("{} {}", department.name, name.rsplit('/').next().unwrap_or(name)),
                    department_code: Some(department.code.clone()),
                    ..NewAccount::default()
                },
                now,
            )
            .await?;
        let secret = SecretString::new(random_token(32));
        let row = repo::ClientRow {
            id: new_id(),
            account_id: account.id.clone(),
            department_id: department.id,
            mediator_client: account.username.clone(),
            secret_hash: sha256_hex(secret.expose()),
            revoked: false,
        };
        repo::insert_client(&mut tx, &row, millis(now)).await?;
        tx.commit().await?;
        Ok(RegisteredClient { id: row.id, account_id: account.id, mediator_client: row.mediator_client, secret })
    }

    /// The calling system, by the name the Information Mediator gives and its secret. A
    /// system found is remembered for the platform's auth cache time, as API tokens are, so
    /// a busy system does not cost a round trip a call.
    pub async fn authenticate(&self, mediator_client: &str, secret: &str) -> Result<ExchangeClient, Error> {
        let name = mediator_client.trim().to_lowercase();
        let ttl = self.inner.identity.policy().auth_cache;
        let cached =
            lock(&self.inner.clients).get(&name).filter(|(_, at)| at.elapsed() < ttl).map(|(row, _)| row.clone());
        let row = match cached {
            Some(row) => row,
            None => {
                let mut c = self.conn().await?;
                let row = repo::client(&mut c, &name).await?.ok_or(Error::Unauthenticated)?;
                if !ttl.is_zero() {
                    let mut clients = lock(&self.inner.clients);
                    if clients.len() >= CACHE_LIMIT {
                        clients.clear();
                    }
                    clients.insert(name, (row.clone(), std::time::Instant::now()));
                }
                row
            }
        };
        let given = sha256_hex(secret);
        if row.revoked || !bool::from(given.as_bytes().ct_eq(row.secret_hash.as_bytes())) {
            return Err(Error::Unauthenticated);
        }
        Ok(ExchangeClient {
            id: row.id,
            account_id: row.account_id,
            department_id: row.department_id,
            mediator_client: row.mediator_client,
        })
    }

    // --- calls -----------------------------------------------------------------------------

    /// Reads the granted fields of the record with this key under an agreement.
    pub async fn read(
        &self,
        client: &ExchangeClient,
        agreement_id: &str,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<ExchangeAnswer, Error> {
        // The checks and the opening run on a pooled connection, released before the access
        // entry joins a group commit (reads need no write lock; the entry needs no reads).
        let mut c = self.conn().await?;
        let admitted = match self.admit(&mut c, client, agreement_id, key, true, now).await {
            Ok(Admitted { record: None, .. }) => Err(Error::NotFound("record")),
            other => other,
        };
        let Admitted { agreement, registry, index, subject, record: Some(record) } = (match admitted {
            Ok(admitted) => admitted,
            Err(e) => {
                drop(c);
                return Err(self.refuse(client, agreement_id, e, now).await);
            }
        }) else {
            return Err(internal("an admitted read lost its record"));
        };
        let compiled = self.registries().compiled_in(&mut c, &registry.id, registry.version).await?;
        let opened = self.registries().open_record(&mut c, &record).await?;
        drop(c);
        let granted: Vec<String> = serde_json::from_str(&agreement.fields).map_err(internal)?;
        let mut values = Map::new();
        let mut masked = Vec::new();
        for f in &granted {
            let Some(v) = opened.values.get(f) else { continue };
            match compiled.field(f) {
                Some(entry) if !agreement.plain_values && entry.classification >= 3 => {
                    values.insert(f.clone(), entry.masked(v));
                    masked.push(f.clone());
                }
                _ => {
                    values.insert(f.clone(), v.clone());
                }
            }
        }
        let access = access_entry(client, &agreement, &registry, &index, subject, Action::ExchangeRead, &record, now);
        self.record_call(access).await?;
        Ok(ExchangeAnswer {
            agreement: agreement.id,
            registry: registry.code,
            record: record.id,
            values,
            masked,
            at: now,
        })
    }

    /// Answers yes or no to conditions on the record with this key, with a signed receipt,
    /// without returning any value. No record is a "no".
    pub async fn verify(
        &self,
        client: &ExchangeClient,
        agreement_id: &str,
        key: &str,
        conditions: Vec<Predicate>,
        now: DateTime<Utc>,
    ) -> Result<Receipt, Error> {
        if conditions.is_empty() {
            return Err(Error::invalid("conditions", "ask at least one condition"));
        }
        // A bad operator is refused before the call, whether or not a record exists.
        if let Some(p) = conditions.iter().find(|p| !OPERATORS.contains(&p.op.as_str())) {
            return Err(Error::invalid("op", format!("{}: eq, ne, gt, gte, lt or lte", p.op)));
        }
        let mut c = self.conn().await?;
        let Admitted { agreement, registry, index, subject, record } =
            match self.admit(&mut c, client, agreement_id, key, false, now).await {
                Ok(admitted) => admitted,
                Err(e) => {
                    drop(c);
                    return Err(self.refuse(client, agreement_id, e, now).await);
                }
            };
        let granted: Vec<String> = serde_json::from_str(&agreement.fields).map_err(internal)?;
        if let Some(p) = conditions.iter().find(|p| !granted.contains(&p.field)) {
            return Err(Error::refused(
                ErrorCode::FieldNotGranted,
                format!("{} is not granted by this agreement", p.field),
            ));
        }
        // Nobody holds this key: the answer is no, and no record was reached.
        let mut answer = record.is_some();
        let mut access = CallEntry::counted(&agreement.id, now);
        if let Some(record) = &record {
            let opened = self.registries().open_record(&mut c, record).await?;
            for p in &conditions {
                let actual = opened.values.get(&p.field).unwrap_or(&Value::Null);
                answer &= compare(actual, &p.op, &p.value)?;
            }
            access = access_entry(client, &agreement, &registry, &index, subject, Action::ExchangeVerify, record, now);
        }
        drop(c);
        self.record_call(access).await?;
        let subject_ref = hex::encode(Sha256::digest(format!("{}\0{index}", agreement.id)));
        let at = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let payload = json!({
            "agreement": agreement.id, "registry": registry.code, "subject": subject_ref,
            "conditions": conditions, "answer": answer, "at": at,
        });
        let signature = self.inner.receipts.sign(payload.to_string().as_bytes());
        Ok(Receipt {
            agreement: agreement.id,
            registry: registry.code,
            subject: subject_ref,
            conditions,
            answer,
            at,
            signature: hex::encode(signature.to_bytes()),
            key: self.receipt_key(),
        })
    }

    /// Checks a call against its agreement and finds the record with this key, in one round
    /// trip when the agreement has been called before.
    pub(super) async fn admit(
        &self,
        c: &mut AnyConnection,
        client: &ExchangeClient,
        agreement_id: &str,
        key: &str,
        read: bool,
        now: DateTime<Utc>,
    ) -> Result<Admitted, Error> {
        // The key's blind index depends on the registry's key domain. The domain seen on the
        // agreement's last call is tried first; the answer names the registry's domain, and
        // a miss (a first call, a republished key) asks once more with that one.
        let mut domain = lock(&self.inner.key_domains).get(agreement_id).cloned();
        let mut found = None;
        for _ in 0..2 {
            let index = match &domain {
                Some(d) => self.inner.protector.blind_index(d, &normalize_key(d, key)),
                None => String::new(),
            };
            let (agreement, registry, record) =
                repo::call_target(c, agreement_id, &index).await?.ok_or(Error::NotFound("agreement"))?;
            if domain.as_deref() == Some(registry.key_domain.as_str()) {
                found = Some((agreement, registry, index, record));
                break;
            }
            domain = Some(registry.key_domain.clone());
            let mut domains = lock(&self.inner.key_domains);
            if domains.len() >= CACHE_LIMIT {
                domains.clear();
            }
            domains.insert(agreement_id.to_string(), registry.key_domain);
        }
        let (agreement, registry, index, record) =
            found.ok_or_else(|| internal("the registry's key domain changed during a call"))?;
        if agreement.consumer_department_id != client.department_id {
            return Err(Error::refused(
                ErrorCode::AgreementNotYours,
                "this agreement was granted to another department",
            ));
        }
        match AgreementStatus::of(&agreement, now)? {
            AgreementStatus::Granted => {}
            AgreementStatus::Pending => {
                return Err(Error::refused(ErrorCode::AgreementPending, "the owning department has not decided yet"));
            }
            AgreementStatus::Refused => {
                return Err(Error::refused(ErrorCode::AgreementRefused, "this request was refused"));
            }
            AgreementStatus::Revoked => {
                return Err(Error::refused(ErrorCode::AgreementRevoked, "this agreement has been revoked"));
            }
            AgreementStatus::Expired => {
                return Err(Error::refused(ErrorCode::AgreementExpired, "this agreement has expired"));
            }
        }
        if read && agreement.verify_only {
            return Err(Error::refused(ErrorCode::VerifyOnly, "this agreement answers verification queries only"));
        }
        self.count_rate(c, &agreement, now).await?;
        // Whom a call names is settled when its entry is written, for many calls at once;
        // only a purpose resting on consent needs to know before answering.
        let mut subject = None;
        if agreement.consent_required {
            subject = self.subject_in(c, &registry, &index).await?;
            let consented = match &subject {
                Some(account) => self.consent().consent_valid_in(c, &agreement.id, account, now).await?,
                None => false,
            };
            if !consented {
                return Err(Error::refused(
                    ErrorCode::ConsentRequired,
                    "the data subject has not consented to this purpose",
                ));
            }
        }
        Ok(Admitted { agreement, registry, index, subject, record })
    }

    /// Holds an agreement to its calls per minute. On PostgreSQL the count is shared by every
    /// node; SQLite is one process, and counts in memory rather than write per call.
    pub(super) async fn count_rate(
        &self,
        c: &mut AnyConnection,
        agreement: &AgreementRow,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let minute = now.timestamp() / 60;
        if self.inner.db.backend == kernel::db::Backend::Postgres {
            let calls = repo::count_call(c, &agreement.id, minute).await?;
            return if calls > agreement.rate_per_minute { Err(Error::RateLimited) } else { Ok(()) };
        }
        let mut calls = lock(&self.inner.calls);
        let slot = calls.entry(agreement.id.clone()).or_insert((minute, 0));
        if slot.0 != minute {
            *slot = (minute, 0);
        }
        if slot.1 >= agreement.rate_per_minute {
            return Err(Error::RateLimited);
        }
        slot.1 += 1;
        Ok(())
    }

    /// The data subject's account, when the registry is keyed by resident ID number and the
    /// resident has an account.
    pub(crate) async fn subject_in(
        &self,
        c: &mut AnyConnection,
        registry: &RegistryRow,
        key_index: &str,
    ) -> Result<Option<String>, Error> {
        if registry.key_domain != "id_number" {
            return Ok(None);
        }
        Ok(self.inner.identity.people().citizen_by_id_index_in(c, key_index).await?)
    }

    /// Whom an access entry names: the resident's account when the registry links to
    /// residents, else a pseudonym of the record's key (its blind index in the registry),
    /// which `myPersonalDataUsage` finds again.
    pub(crate) async fn data_subject_in(
        &self,
        c: &mut AnyConnection,
        registry: &RegistryRow,
        key_index: &str,
    ) -> Result<String, Error> {
        Ok(match self.subject_in(c, registry, key_index).await? {
            Some(account) => account,
            None => format!("registry:{}:{key_index}", registry.id),
        })
    }

    /// Writes a call's entry on the audit ledger and counts a served call: through the
    /// journal when this node holds one (folded into the ledger later, before anyone reads
    /// it), else in a group commit shared with the other calls waiting. Returns once durable:
    /// no answer leaves before its access is on disk.
    pub(super) async fn record_call(&self, call: CallEntry) -> Result<(), Error> {
        if let Some(journal) = &self.inner.journal {
            let record = serde_json::to_vec(&call).map_err(internal)?;
            return journal.append(record).await.map_err(internal);
        }
        let this = self.0.clone();
        self.inner
            .db
            .write_batched(&self.inner.call_entries, call, move |c, calls| {
                Box::pin(async move { this.sharing().write_calls(c, calls).await })
            })
            .await
    }

    /// Writes waiting calls: whom each names (one lookup of residents' accounts for all),
    /// their entries with one ledger append, and one count a day per agreement.
    pub(super) async fn write_calls(&self, c: &mut AnyConnection, calls: Vec<CallEntry>) -> Result<Vec<()>, Error> {
        let residents: Vec<&str> = calls
            .iter()
            .filter_map(|call| call.subject_of.as_ref())
            .filter(|s| s.key_domain == "id_number")
            .map(|s| s.key_index.as_str())
            .collect();
        let accounts = self.inner.identity.people().citizens_by_id_indexes_in(c, &residents).await?;
        let mut counts: std::collections::BTreeMap<(String, String), i64> = std::collections::BTreeMap::new();
        let mut entries = Vec::with_capacity(calls.len());
        for call in &calls {
            if let Some(counted) = &call.counted {
                *counts.entry(counted.clone()).or_insert(0) += 1;
            }
            let Some(mut entry) = call.entry.clone() else { continue };
            if let Some(of) = &call.subject_of {
                entry.subject = Some(match accounts.get(&of.key_index) {
                    Some(account) if of.key_domain == "id_number" => account.clone(),
                    _ => format!("registry:{}:{}", of.registry_id, of.key_index),
                });
            }
            entries.push(entry);
        }
        if !entries.is_empty() {
            ledger::append_many_in(c, Log::Audit, &entries).await?;
        }
        let counts: Vec<(String, String, i64)> =
            counts.into_iter().map(|((agreement, day), n)| (agreement, day, n)).collect();
        repo::count_calls(c, &counts).await?;
        Ok(vec![(); calls.len()])
    }

    /// Records a refused call on the ledger and gives back the refusal (or the storage error
    /// that kept it from being recorded).
    pub(super) async fn refuse(
        &self,
        client: &ExchangeClient,
        agreement_id: &str,
        e: Error,
        now: DateTime<Utc>,
    ) -> Error {
        let reason = match &e {
            Error::Refused { code, .. } => code.as_str().to_string(),
            Error::NotFound(what) => format!("{what}_not_found"),
            Error::RateLimited => "rate_limited".into(),
            _ => return e,
        };
        let mut entry = ledger::Entry::new(Action::ExchangeRefused, Outcome::Denied, now);
        entry.actor = Some(client.account_id.clone());
        entry.source = Some(client.mediator_client.clone());
        entry.object = Some(format!("agreement:{agreement_id}"));
        entry.detail = Some(reason);
        match self.record_call(CallEntry { entry: Some(entry), subject_of: None, counted: None }).await {
            Ok(()) => e,
            Err(storage) => storage,
        }
    }
}

/// Bounds the per-node caches of systems and key domains; a full cache is simply emptied.
pub(super) const CACHE_LIMIT: usize = 10_000;

/// A call let through by its agreement: the record, when one holds the key, and the data
/// subject's account when consent had to be checked.
pub(super) struct Admitted {
    agreement: AgreementRow,
    registry: RegistryRow,
    /// The key's blind index in the registry.
    index: String,
    subject: Option<String>,
    record: Option<repo::RecordRow>,
}

/// The journal of calls' entries, on SQLite: each call waits for one file append instead of
/// a database commit (see [`kernel::db::journal`]), and the fold writes them with
/// [`Exchange::write_calls`]. Without it (PostgreSQL, or another process holding it) calls
/// join group commits.
pub(crate) fn open_call_journal(db: &kernel::db::Db, exchange: std::sync::Weak<crate::Inner>) -> Option<Journal> {
    let apply: kernel::db::journal::Apply = std::sync::Arc::new(move |c, records| {
        let exchange = exchange.upgrade().map(|inner| Exchange { inner });
        Box::pin(async move {
            let exchange = exchange.ok_or("the exchange has stopped")?;
            let calls = records
                .iter()
                .map(|r| serde_json::from_slice::<CallEntry>(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("a journaled call cannot be read: {e}"))?;
            exchange.sharing().write_calls(c, calls).await.map(drop).map_err(|e| e.to_string())
        })
    });
    match Journal::open(db, "exchange-calls", apply) {
        Ok(journal) => journal,
        // A command run beside the server that holds it.
        Err(e @ kernel::db::journal::JournalError::Held(_)) => {
            tracing::info!(error = %e, "exchange calls are written through group commits");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "exchange calls are written through group commits instead of the journal");
            None
        }
    }
}

/// A call waiting to be written: its ledger entry, whose data it concerns when that is
/// still to be looked up, and the agreement and day it counts for when it was served.
#[derive(Serialize, Deserialize)]
pub(crate) struct CallEntry {
    entry: Option<ledger::Entry>,
    subject_of: Option<SubjectOf>,
    counted: Option<(String, String)>,
}

/// A record's key in a registry, which names its data subject.
#[derive(Serialize, Deserialize)]
pub(super) struct SubjectOf {
    registry_id: String,
    key_domain: String,
    key_index: String,
}

impl CallEntry {
    /// A served call that reached no record: counted, with no entry.
    fn counted(agreement_id: &str, now: DateTime<Utc>) -> CallEntry {
        CallEntry { entry: None, subject_of: None, counted: Some(call_day(agreement_id, now)) }
    }
}

pub(super) fn call_day(agreement_id: &str, now: DateTime<Utc>) -> (String, String) {
    (agreement_id.to_string(), now.format("%Y-%m-%d").to_string())
}

/// The access entry of a call that reached a record. It names the resident's account when
/// the registry links to residents, else a pseudonym of the record's key (its blind index
/// in the registry), which `myPersonalDataUsage` finds again.
#[allow(clippy::too_many_arguments)]
pub(super) fn access_entry(
    client: &ExchangeClient,
    agreement: &AgreementRow,
    registry: &RegistryRow,
    index: &str,
    subject: Option<String>,
    action: Action,
    record: &repo::RecordRow,
    now: DateTime<Utc>,
) -> CallEntry {
    let mut entry = ledger::Entry::new(action, Outcome::Success, now);
    entry.actor = Some(client.account_id.clone());
    entry.source = Some(client.mediator_client.clone());
    entry.object = Some(format!("agreement:{}", agreement.id));
    entry.purpose = Some(agreement.purpose.clone());
    entry.detail = Some(format!("registry:{}:{}", registry.code, record.id));
    let subject_of = match subject {
        Some(account) => {
            entry.subject = Some(account);
            None
        }
        None => Some(SubjectOf {
            registry_id: registry.id.clone(),
            key_domain: registry.key_domain.clone(),
            key_index: index.to_string(),
        }),
    };
    CallEntry { entry: Some(entry), subject_of, counted: Some(call_day(&agreement.id, now)) }
}
