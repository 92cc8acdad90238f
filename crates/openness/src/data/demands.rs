//! 数据需求: a resident or enterprise asks a department for a dataset it has not opened;
//! the department answers, publicly, and names the dataset when it opens one. The public
//! list shows the request and the answer, never who asked.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::DemandState;
use super::repo::{self, DemandRow};
use crate::{Error, Openness, conflict, optional_text, text_between};
use identity::{Capability, Principal};
use kernel::audit::{Action, Outcome};
use kernel::authz::OpenDataPublish;
use kernel::db::{from_millis, millis};
use kernel::error::ErrorCode;

kernel::area! {
    /// 数据需求 and the departments' answers.
    DataDemands of Openness
}

/// A request for a dataset, as the public list shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DataDemand {
    pub id: String,
    pub department_code: String,
    pub department_name: String,
    pub title: String,
    pub description: String,
    pub state: DemandState,
    pub answer: Option<String>,
    /// The dataset that meets it: (name, title).
    pub dataset: Option<(String, String)>,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl DataDemands<'_> {
    /// Asks a department for a dataset.
    pub async fn ask(
        &self,
        person: &Principal,
        department: &str,
        title: &str,
        description: &str,
        now: DateTime<Utc>,
    ) -> Result<DataDemand, Error> {
        let title = text_between("title", title, 2, 100)?;
        let description = text_between("description", description, 10, 2_000)?;
        let d = self
            .inner
            .identity
            .organisation()
            .placed_department(department.trim())
            .await?
            .ok_or_else(|| Error::invalid("department", "no department has this code"))?;
        let row = DemandRow {
            id: kernel::db::new_id(),
            account_id: person.account_id.clone(),
            department_id: d.department.id,
            title,
            description,
            state: DemandState::Open,
            answer: None,
            dataset_id: None,
            answered_by: None,
            answered_at: None,
            created_at: millis(now),
        };
        let mut c = self.conn().await?;
        repo::insert_demand(&mut c, &row).await?;
        drop(c);
        self.view(row).await
    }

    /// The newest requests, of one department (by code) or all.
    pub async fn list(&self, department: Option<&str>) -> Result<Vec<DataDemand>, Error> {
        let department_id = match department.map(str::trim).filter(|d| !d.is_empty()) {
            None => None,
            Some(code) => Some(
                self.inner
                    .identity
                    .organisation()
                    .placed_department(code)
                    .await?
                    .ok_or(Error::NotFound("department"))?
                    .department
                    .id,
            ),
        };
        let mut c = self.conn().await?;
        let rows = repo::demands(&mut c, department_id.as_deref()).await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.view(row).await?);
        }
        Ok(out)
    }

    /// The requests addressed to the officer's department.
    pub async fn inbox(&self, cap: &Capability<OpenDataPublish>) -> Result<Vec<DataDemand>, Error> {
        let department = cap.department_id().ok_or(Error::NotFound("department"))?;
        let mut c = self.conn().await?;
        let rows = repo::demands(&mut c, Some(department)).await?;
        drop(c);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.view(row).await?);
        }
        Ok(out)
    }

    /// Answers a request publicly, naming the dataset that meets it if there is one.
    pub async fn answer(
        &self,
        cap: &Capability<OpenDataPublish>,
        id: &str,
        answer: &str,
        dataset: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<DataDemand, Error> {
        let answer = text_between("answer", answer, 2, 2_000)?;
        let mut c = self.conn().await?;
        let mut row = repo::demand(&mut c, id).await?.ok_or(Error::NotFound("data request"))?;
        cap.check_department(&row.department_id)?;
        if row.state == DemandState::Answered {
            return Err(conflict(ErrorCode::AlreadyAnswered, "the request is already answered"));
        }
        row.dataset_id = match optional_text("dataset", dataset, 100)? {
            None => None,
            Some(name) => Some(
                repo::dataset(&mut c, &name)
                    .await?
                    .ok_or_else(|| Error::invalid("dataset", "no dataset has this name"))?
                    .id,
            ),
        };
        drop(c);
        row.state = DemandState::Answered;
        row.answer = Some(answer);
        row.answered_by = Some(cap.account_id().to_string());
        row.answered_at = Some(millis(now));
        let mut tx = self.inner.db.begin().await?;
        if !repo::answer_demand(&mut tx, &row).await? {
            return Err(conflict(ErrorCode::AlreadyAnswered, "the request is already answered"));
        }
        let mut entry = ledger::Entry::new(Action::OpenDataRequestAnswered, Outcome::Success, now);
        entry.actor = Some(cap.account_id().into());
        entry.object = Some(format!("open_data_request:{}", row.id));
        ledger::append_in(&mut tx, ledger::Log::Audit, &entry).await?;
        tx.commit().await?;
        self.view(row).await
    }

    async fn view(&self, row: DemandRow) -> Result<DataDemand, Error> {
        let d = self
            .inner
            .identity
            .organisation()
            .placed_department_by_id(&row.department_id)
            .await?
            .ok_or(Error::NotFound("department"))?;
        let dataset = match &row.dataset_id {
            None => None,
            Some(id) => {
                let mut c = self.conn().await?;
                repo::dataset(&mut c, id).await?.map(|d| (d.name, d.title))
            }
        };
        Ok(DataDemand {
            id: row.id,
            department_code: d.department.code,
            department_name: d.department.name,
            title: row.title,
            description: row.description,
            state: row.state,
            answer: row.answer,
            dataset,
            created_at: from_millis(row.created_at),
            answered_at: row.answered_at.map(from_millis),
        })
    }
}
