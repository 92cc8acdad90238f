//! Applying: prefill, submission of a service or a bundle, and assisted submission at the window (帮办代办).

use super::*;

kernel::area! {
    /// Applying: prefill, submission of a service or a bundle, and assisted submission at the window (帮办代办).
    Intake of Services
}

impl Intake<'_> {
    /// What the form of a service can be prefilled with for the caller.
    pub async fn prefill(&self, me: &Principal, form: &Form, now: DateTime<Utc>) -> Result<Prefill, Error> {
        let facts = self.facts(&me.account_id, now).await?;
        let (values, sources) = form.prefill(&facts.facts);
        Ok(Prefill { values, sources })
    }

    /// Submits an application: the form is validated, prefilled values that may not be
    /// changed are taken from the source, sensitive values are sealed, and the case starts.
    pub async fn submit(
        &self,
        me: &Principal,
        service: &str,
        data: Value,
        documents: &[String],
        now: DateTime<Utc>,
    ) -> Result<ApplicationView, Error> {
        let service = self.service(service).await?;
        Services::check_audience(service.spec.audience, me.kind)?;
        if service.spec.depth != crate::catalog::Depth::Online {
            return Err(Error::conflict(
                ErrorCode::NotOnline,
                "this service cannot be applied for online: see its guide",
            ));
        }
        let facts = self.facts(&me.account_id, now).await?;
        let written = self
            .create(NewCase { facts: &facts, service: &service, bundle: None, data, documents, assisted_by: None }, now)
            .await?;
        // A plain new case is answered from what was written; one with materials or a
        // certificate issued at once is read back.
        if !documents.is_empty() || super::stored_phase(&written.row.status)? == Phase::Approved {
            return self.view(&written.row.id, Viewer::Applicant).await;
        }
        let names = (service.spec.name_zh.clone(), service.spec.name_en.clone());
        let parts = CaseParts {
            row: written.row,
            service,
            form: written.form,
            history: written.history,
            tasks: Vec::new(),
            applicant: facts.display_name,
            certificates: Vec::new(),
            rating: None,
            documents: Vec::new(),
            names,
        };
        self.assemble(parts, Viewer::Applicant).await
    }

    /// Submits a bundle (一件事一次办): one form, one case, every member department at once.
    pub async fn submit_bundle(
        &self,
        me: &Principal,
        code: &str,
        data: Value,
        now: DateTime<Utc>,
    ) -> Result<ApplicationView, Error> {
        let bundle = self.bundle(code).await?;
        let mut members = Vec::with_capacity(bundle.services.len());
        for s in &bundle.services {
            members.push(self.service(s).await?);
        }
        let lead = members.first().cloned().ok_or(Error::NotFound("bundle service"))?;
        Services::check_audience(bundle.audience, me.kind)?;
        let facts = self.facts(&me.account_id, now).await?;
        let written = self
            .create(
                NewCase {
                    facts: &facts,
                    service: &lead,
                    bundle: Some((&bundle, &members)),
                    data,
                    documents: &[],
                    assisted_by: None,
                },
                now,
            )
            .await?;
        self.view(&written.row.id, Viewer::Applicant).await
    }

    /// The combined form of a bundle.
    pub async fn bundle_form(&self, code: &str) -> Result<(BundleSpec, std::sync::Arc<Form>), Error> {
        let bundle = self.bundle(code).await?;
        let key = format!("bundle:{code}");
        let mut members = Vec::new();
        for s in &bundle.services {
            members.push(self.service(s).await?);
        }
        let versions: Vec<String> = members.iter().map(|m| format!("{}@{}", m.id, m.version)).collect();
        let key = format!("{key}:{}", versions.join(","));
        if let Some(f) = self.inner.forms.lock().map_err(internal)?.get(&key) {
            return Ok((bundle, f.clone()));
        }
        let mut forms = Vec::new();
        for m in &members {
            forms.push((m, self.form(&m.form_id).await?));
        }
        let pairs: Vec<(&PublishedService, &Form)> = forms.iter().map(|(m, f)| (*m, f.as_ref())).collect();
        let form = std::sync::Arc::new(bundle_form(&bundle, &pairs)?);
        self.inner.forms.lock().map_err(internal)?.insert(key, form.clone());
        Ok((bundle, form))
    }

    /// Sends the applicant a one-time code to confirm a submission made for them at the
    /// window (in-app, and by text message where a gateway is configured).
    pub async fn send_assist_code(
        &self,
        cap: &Capability<ApplicationAssist>,
        id_number: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (account_id, facts) = self.assisted_person(cap, id_number, now).await?;
        let code = format!("{:06}", rand::random::<u32>() % 1_000_000);
        let mut tx = self.inner.db.begin().await?;
        let hash = kernel::secrets::sha256_hex(&code);
        let expires = millis(now) + ASSIST_CODE_MINUTES * 60_000;
        repo::replace_assist_code(&mut tx, &account_id, cap.account_id(), &hash, expires).await?;
        let text_zh = format!(
            "【通办】窗口工作人员正在为您代办事项，确认码 {code}，{ASSIST_CODE_MINUTES} 分钟内有效。如非本人在场，请勿告知。"
        );
        let text_en = format!(
            "tongban: a window clerk is submitting an application for you. Confirmation code {code}, valid for \
             {ASSIST_CODE_MINUTES} minutes. Do not share it unless you are there."
        );
        repo::insert_notification(&mut tx, &account_id, None, &text_zh, &text_en, millis(now)).await?;
        let mut entry = audit_entry(Action::AssistCodeSent, cap.account_id(), cap.username(), now);
        entry.subject = Some(account_id.clone());
        entry.jurisdiction = facts.region.as_ref().map(|r| r.path.clone());
        entry.purpose = Some("帮办代办 assisted submission".into());
        ledger::append_in(&mut tx, Log::Audit, &entry).await?;
        tx.commit().await?;
        if let Some(mobile) = &facts.mobile {
            tracing::info!(mobile = %protect::Mask::Mobile.apply(mobile), "assist code issued");
        }
        Ok(())
    }

    /// Submits for a citizen who is present (帮办代办), after they confirmed with the code
    /// sent to their mobile or by signing at the window. The case records who assisted.
    pub async fn submit_assisted(
        &self,
        cap: &Capability<ApplicationAssist>,
        id_number: &str,
        service: &str,
        data: Value,
        confirmation: Confirmation,
        now: DateTime<Utc>,
    ) -> Result<ApplicationView, Error> {
        let (_, facts) = self.assisted_person(cap, id_number, now).await?;
        let service = self.service(service).await?;
        Services::check_audience(service.spec.audience, facts.kind)?;
        let (confirmed_by, code) = match confirmation {
            Confirmation::Signature => ("signature", None),
            Confirmation::Code(code) => ("mobile_code", Some(kernel::secrets::sha256_hex(code.trim()))),
        };
        let written = self
            .create(
                NewCase {
                    facts: &facts,
                    service: &service,
                    bundle: None,
                    data,
                    documents: &[],
                    assisted_by: Some(Assist {
                        staff_id: cap.account_id(),
                        staff_name: cap.username(),
                        confirmed_by,
                        code,
                    }),
                },
                now,
            )
            .await?;
        self.view(&written.row.id, Viewer::Applicant).await
    }
}
