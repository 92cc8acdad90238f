//! Requests as people and staff read them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::AnyConnection;

use super::repo::{self, RequestRow};
use super::{Category, Channel, Error, Rating, RequestKind, Stage, Urgency, Voice, internal};
use kernel::db::from_millis;
use services::workflow::Case;

/// One step of a request's handling, as the timeline shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceStep)]
pub struct Step {
    /// The workflow action (`route`, `queue`, `dispatch`, `sign`, `send_back`, `answer`,
    /// `satisfied`, `reopen`, `close_unsatisfied`).
    pub action: String,
    pub at: DateTime<Utc>,
    pub comment: Option<String>,
}

/// 延期: what the handling department asked for, and the dispatcher's decision.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceExtension)]
pub struct Extension {
    pub days: u32,
    pub reason: String,
    pub decision: ExtensionDecision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema, strum::EnumString, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[schema(as = VoiceExtensionDecision)]
pub enum ExtensionDecision {
    Pending,
    Granted,
    Refused,
}

/// A photo the person sent with the request (an upload of the services' pipeline).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoicePhoto)]
pub struct Photo {
    pub document_id: String,
    pub filename: String,
    /// image/png or image/jpeg, from the content.
    pub content_type: String,
    pub size: i64,
}

/// Another request, by id and number.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceRequestLink)]
pub struct RequestLink {
    pub id: String,
    pub number: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VoiceRequestView)]
pub struct RequestView {
    pub id: String,
    /// 12345-YYYYMMDD-NNNNNN
    pub number: String,
    pub kind: RequestKind,
    pub channel: Channel,
    pub text: String,
    pub region_code: String,
    pub region_name: String,
    pub address: Option<String>,
    pub urgency: Urgency,
    /// The person agreed that the answer may be published, de-identified.
    pub publishable: bool,
    pub category: Category,
    /// The classifier's category, its confidence and the words that weighed most.
    pub proposed: Category,
    pub confidence: f64,
    pub reasons: Vec<String>,
    pub department_id: Option<String>,
    pub department_name: Option<String>,
    pub stage: Stage,
    /// When the present step is due (working days on the platform calendar).
    pub due: Option<DateTime<Utc>>,
    pub overdue: bool,
    /// 督办: the department was told the step is due soon or overdue.
    pub supervised: bool,
    pub answer: Option<String>,
    pub rating: Option<Rating>,
    pub reopened: u32,
    pub extension: Option<Extension>,
    /// The open request nearby this one looks like (proposed at intake, for dispatchers).
    pub similar_to: Option<RequestLink>,
    /// The request this one was merged into (并单): it receives that one's answer.
    pub merged_into: Option<RequestLink>,
    /// How many others reported the same thing.
    pub also_reported: u32,
    pub photos: Vec<Photo>,
    pub steps: Vec<Step>,
    pub created_at: DateTime<Utc>,
}

impl Voice {
    pub(crate) async fn view_in(
        &self,
        c: &mut AnyConnection,
        row: RequestRow,
        now: DateTime<Utc>,
    ) -> Result<RequestView, Error> {
        let organisation = self.inner.identity.organisation();
        let region = organisation
            .region_in(c, &row.region_code)
            .await?
            .ok_or_else(|| internal(format!("request {} names unknown region {}", row.number, row.region_code)))?;
        let department_name = match &row.department_id {
            Some(id) => Some(
                organisation
                    .department_name_in(c, id)
                    .await?
                    .ok_or_else(|| internal(format!("request {} names unknown department {id}", row.number)))?,
            ),
            None => None,
        };
        let category = self
            .inner
            .categories
            .get(&row.category)
            .cloned()
            .ok_or_else(|| internal(format!("request {} has unknown category {}", row.number, row.category)))?;
        let proposed = self
            .inner
            .categories
            .get(&row.proposed)
            .cloned()
            .ok_or_else(|| internal(format!("request {} has unknown category {}", row.number, row.proposed)))?;
        let case: Case = serde_json::from_str(&row.workflow).map_err(internal)?;
        let reasons: Vec<String> = serde_json::from_str(&row.reasons).map_err(internal)?;
        let rating = row.rating.map(Rating::try_from).transpose().map_err(internal)?;
        let due = row.state_due.map(from_millis);
        let extension = match row.extension_reason {
            Some(reason) => {
                let decided = case.history.iter().rev().find_map(|t| match t.action.as_str() {
                    "grant_extension" => Some(ExtensionDecision::Granted),
                    "refuse_extension" => Some(ExtensionDecision::Refused),
                    _ => None,
                });
                let decision = match (row.state, decided) {
                    (Stage::Extending, _) | (_, None) => ExtensionDecision::Pending,
                    (_, Some(d)) => d,
                };
                Some(Extension { days: u32::try_from(row.extension_days).map_err(internal)?, reason, decision })
            }
            None => None,
        };
        let similar_to = self.link_in(c, row.similar_to.as_deref()).await?;
        let merged_into = self.link_in(c, row.merged_into.as_deref()).await?;
        let root = row.merged_into.as_deref().or(row.similar_to.as_deref()).unwrap_or(&row.id);
        let group = repo::group_size(c, root).await?;
        let photos = repo::photos_of(c, &row.id)
            .await?
            .into_iter()
            .map(|p| Photo {
                document_id: p.document_id,
                filename: p.filename,
                content_type: p.content_type,
                size: p.size,
            })
            .collect();
        Ok(RequestView {
            id: row.id,
            number: row.number,
            kind: row.kind,
            channel: row.channel,
            text: row.text,
            region_code: row.region_code,
            region_name: region.name,
            address: row.address,
            urgency: row.urgency,
            publishable: row.publishable != 0,
            category,
            proposed,
            confidence: row.confidence,
            reasons,
            department_id: row.department_id,
            department_name,
            stage: row.state,
            due,
            overdue: row.state != Stage::Closed && due.is_some_and(|d| d < now),
            supervised: row.supervised > 0,
            answer: row.answer,
            rating,
            reopened: u32::try_from(row.reopened).map_err(internal)?,
            extension,
            similar_to,
            merged_into,
            also_reported: u32::try_from(group.saturating_sub(1)).map_err(internal)?,
            photos,
            steps: case.history.into_iter().map(|t| Step { action: t.action, at: t.at, comment: t.comment }).collect(),
            created_at: from_millis(row.created_at),
        })
    }

    async fn link_in(&self, c: &mut AnyConnection, id: Option<&str>) -> Result<Option<RequestLink>, Error> {
        let Some(id) = id else { return Ok(None) };
        let number = repo::number_of(c, id).await?.ok_or_else(|| internal(format!("request {id} is gone")))?;
        Ok(Some(RequestLink { id: id.to_string(), number }))
    }

    pub(crate) async fn views_in(
        &self,
        c: &mut AnyConnection,
        rows: Vec<RequestRow>,
        now: DateTime<Utc>,
    ) -> Result<Vec<RequestView>, Error> {
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.view_in(c, row, now).await?);
        }
        Ok(out)
    }
}
