//! Pages of the one-stop service hall: the catalog with search, service guides, applying with
//! a prefilled form, the applicant's cases, the staff inbox and case page, and the public
//! certificate verification page.

mod apply;
mod cases;
mod catalog;
mod staff;

use apply::*;
use cases::*;
use catalog::*;
use staff::*;
use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;

use super::{CsrfForm, CsrfMultipart, EmptyForm, Layout, PageCtx, PageError, PageResult};
use crate::AppState;
use crate::error::ApiError;
use crate::i18n::{Lang, text};
use kernel::authz::{ApplicationAssist, ApplicationHandle, CertificateRevoke};
use services::catalog::{EVENTS, ServiceSummary};
use services::forms::{FieldKind, Form};
use services::workflow::Phase;
use services::{ApplicationSummary, ApplicationView, CertificateCheck, DEPARTMENT_KINDS, InboxItem};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services", get(catalog))
        .route("/services/{code}", get(guide))
        .route("/services/{code}/apply", get(apply_page).post(apply))
        .route("/bundles/{code}/apply", get(bundle_apply_page).post(bundle_apply))
        .route("/applications", get(my_applications))
        .route("/materials", get(materials_page).post(upload_material))
        .route("/certificates", get(my_certificates))
        .route("/applications/{id}", get(my_application))
        .route("/applications/{id}/withdraw", post(withdraw))
        .route("/applications/{id}/rate", post(rate))
        .route("/staff/inbox", get(inbox))
        .route("/staff/tasks/{id}/claim", post(claim))
        .route("/staff/tasks/{id}/transfer", get(transfer_page).post(transfer))
        .route("/notifications", get(notifications))
        .route("/staff/assist", get(assist_page))
        .route("/staff/assist/code", post(assist_code))
        .route("/staff/assist/submit", post(assist_submit))
        .route("/staff/cases/{id}", get(case_page).post(act))
        .route("/staff/cases/{id}/rating-reply", post(rating_reply))
        .route("/staff/certificates/{id}/revoke", post(revoke))
        .route("/verify/{id}", get(verify))
}

fn zh(ctx: &PageCtx) -> bool {
    ctx.prefs.lang == Lang::Zh
}

fn pick<'a>(ctx: &PageCtx, zh_text: &'a str, en_text: &'a str) -> &'a str {
    if zh(ctx) { zh_text } else { en_text }
}

fn phase_text(lang: Lang, p: Phase) -> &'static str {
    text(lang, &format!("phase.{}", p.as_str()))
}
