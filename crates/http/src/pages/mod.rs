//! Server-rendered pages: one layout, Chinese by default with English, elder mode, no
//! JavaScript. Every form post carries a CSRF token (double-submit, compared in constant time).

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::ClientAddr;
use crate::i18n::{Lang, text};
use identity::{AccountKind, Gate, PasswordChange, Session, SessionSummary, SignInAttempt};
use kernel::secrets::{SecretString, random_token};

const SESSION_COOKIE: &str = "tb_session";
const CSRF_COOKIE: &str = "tb_csrf";
const DEVICE_COOKIE: &str = "tb_device";
const LANG_COOKIE: &str = "tb_lang";
const ELDER_COOKIE: &str = "tb_elder";
const YEAR: u32 = 365 * 24 * 3600;

mod account;
mod booking;
mod consent;
mod dashboard;
mod exchange;
mod hall;
mod my_data;
mod open_data;
mod openness;
mod request;
mod voice;

use account::*;
use my_data::*;
pub use request::*;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(hall::router())
        .merge(booking::router())
        .merge(consent::router())
        .merge(exchange::router())
        .merge(voice::router())
        .merge(dashboard::router())
        .merge(openness::router())
        .merge(open_data::router())
        .route("/", get(home))
        .route("/about/{page}", get(about))
        .route("/static/app.css", get(stylesheet))
        .route("/static/favicon.svg", get(favicon))
        .route("/prefs", post(set_prefs))
        .route("/signin", get(signin_page).post(signin))
        .route("/signin/mfa", get(mfa_page).post(mfa))
        .route("/signout", post(signout))
        .route("/account", get(account))
        .route("/account/email", post(set_email))
        .route("/account/password", get(password_page).post(change_password))
        .route("/account/mfa", get(enrol_page).post(enrol))
        .route("/account/sessions/revoke", post(revoke_session))
        .route("/account/signout-everywhere", post(signout_everywhere))
        .route("/staff", get(staff))
        .route("/staff/corrections", get(corrections_page))
        .route("/security", get(security_page))
        .route("/security/acknowledge", post(acknowledge_alert))
        .route("/account/data", get(my_data))
        .route("/account/data/export", get(my_data_export))
        .route("/account/data/corrections", post(request_correction))
}

// --- templates -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    l: Layout,
    /// Life events (code, name) that open the catalog filtered by them.
    events: Vec<(&'static str, &'static str)>,
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffPage {
    l: Layout,
    department: String,
    region: String,
    region_path: String,
    roles: Vec<(String, String)>,
}

/// A time as people in China read it.
pub(crate) fn china_time(t: chrono::DateTime<chrono::Utc>, format: &str) -> String {
    t.with_timezone(&services::calendar::cst()).format(format).to_string()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    l: Layout,
    status: u16,
    message: String,
    request_id: String,
}

/// The page for an error response (the error-rendering middleware calls this).
pub fn error_page(prefs: &PagePrefs, csrf: &str, error: &ApiError, request_id: &str) -> String {
    let l = Layout {
        lang: prefs.lang,
        elder: prefs.elder,
        csrf: csrf.to_string(),
        here: "/".into(),
        signed_in: false,
        is_staff: false,
        can_alerts: false,
        can_dispatch: false,
        can_answer: false,
        can_insight: false,
        can_record: false,
        can_disclose: false,
        can_ledger: false,
        can_open_data: false,
        display_name: String::new(),
        title: text(prefs.lang, "error.title").to_string(),
    };
    let message = text(prefs.lang, &format!("error.{}", error.code.as_str())).to_string();
    let page = ErrorPage { l, status: error.status.as_u16(), message, request_id: request_id.to_string() };
    page.render().unwrap_or_else(|_| format!("error {}", error.status.as_u16()))
}

fn error_text(lang: Lang, e: &ApiError) -> String {
    let mut m = text(lang, &format!("error.{}", e.code.as_str())).to_string();
    if let Some(secs) = e.retry_after {
        m.push_str(&format!(" ({secs} s)"));
    }
    m
}

// --- handlers ------------------------------------------------------------------------------

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")],
        include_str!("../../static/favicon.svg"),
    )
        .into_response()
}

#[derive(Template)]
#[template(path = "about.html")]
struct AboutPage {
    l: Layout,
    body: &'static str,
}

/// The statements a government site carries: accessibility, privacy, contact.
async fn about(ctx: PageCtx, axum::extract::Path(page): axum::extract::Path<String>) -> PageResult {
    let (title, body) = match page.as_str() {
        "accessibility" => ("about.accessibility_title", "about.accessibility_body"),
        "privacy" => ("about.privacy_title", "about.privacy_body"),
        "contact" => ("about.contact_title", "about.contact_body"),
        _ => return Err(ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such page").into()),
    };
    Ok(ctx.page(StatusCode::OK, &AboutPage { l: ctx.layout(title), body: text(ctx.prefs.lang, body) }))
}

async fn home(ctx: PageCtx) -> Response {
    let zh = ctx.prefs.lang == Lang::Zh;
    let events = services::catalog::EVENTS.iter().map(|(code, z, e)| (*code, if zh { *z } else { *e })).collect();
    ctx.page(StatusCode::OK, &HomePage { l: ctx.layout("home.title"), events })
}

#[derive(Deserialize)]
struct PrefsForm {
    lang: Option<String>,
    elder: Option<String>,
    #[serde(default)]
    return_to: String,
}

async fn set_prefs(State(state): State<AppState>, ctx: PageCtx, CsrfForm(form): CsrfForm<PrefsForm>) -> Response {
    let mut cookies = Vec::new();
    let lang = form.lang.as_deref().and_then(Lang::parse);
    let elder = form.elder.as_deref().map(|v| v == "on");
    if let Some(l) = lang {
        cookies.push(set_cookie(LANG_COOKIE, l.code(), Some(YEAR), ctx.secure));
    }
    if let Some(e) = elder {
        cookies.push(set_cookie(ELDER_COOKIE, if e { "1" } else { "0" }, Some(YEAR), ctx.secure));
    }
    if let Some(s) = &ctx.session
        && let Err(e) = state.identity.settings().set_preferences(s, lang.map(Lang::code), elder).await
    {
        return ApiError::from(e).into_response();
    }
    redirect_with_cookies(local_path(&form.return_to), cookies)
}

async fn staff(ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    if s.principal.kind != AccountKind::Staff {
        return Ok(ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "staff only").into_response());
    }
    let zh = ctx.prefs.lang == Lang::Zh;
    let page = StaffPage {
        l: ctx.layout("staff.title"),
        department: s.principal.department.as_ref().map(|d| d.name.clone()).unwrap_or_default(),
        region: s.principal.region.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
        region_path: s.principal.region.as_ref().map(|r| r.code.clone()).unwrap_or_default(),
        roles: s
            .principal
            .roles
            .iter()
            .map(|r| {
                let scope = if r.platform_wide {
                    text(ctx.prefs.lang, "staff.scope_all")
                } else {
                    text(ctx.prefs.lang, "staff.scope_region")
                };
                (if zh { r.name_zh.clone() } else { r.name_en.clone() }, scope.to_string())
            })
            .collect(),
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    #[test]
    fn return_paths_stay_local() {
        for ok in ["/", "/account", "/signin/mfa", "/static/app.css"] {
            assert_eq!(super::local_path(ok), ok);
        }
        for bad in ["//evil.example", "/\t/evil.example", "/\n", "https://evil.example", "/a?b=c", "", "/\\evil"] {
            assert_eq!(super::local_path(bad), "/", "{bad:?}");
        }
    }
}
