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

mod booking;
mod consent;
mod exchange;
mod hall;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(hall::router())
        .merge(booking::router())
        .merge(consent::router())
        .merge(exchange::router())
        .route("/", get(home))
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

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Language and elder mode as the browser remembers them.
#[derive(Debug, Clone, Copy)]
pub struct PagePrefs {
    pub lang: Lang,
    pub elder: bool,
    lang_set: bool,
    elder_set: bool,
}

/// The CSRF cookie of a request, for forms on pages rendered outside a handler.
pub fn csrf_of(headers: &HeaderMap) -> Option<String> {
    cookie(headers, CSRF_COOKIE).filter(|v| v.len() >= 32).map(str::to_string)
}

/// The token forms must carry: bound to the session when the browser has one, else the
/// anonymous double-submit cookie (sign-in, language and elder-mode forms).
pub(crate) fn expected_form_token(state: &AppState, headers: &HeaderMap) -> Option<String> {
    match cookie(headers, SESSION_COOKIE).filter(|v| !v.is_empty()) {
        Some(session) => Some(state.identity.form_token(session)),
        None => csrf_of(headers),
    }
}

pub fn csrf_cookie(value: &str, secure: bool) -> HeaderValue {
    set_cookie(CSRF_COOKIE, value, None, secure)
}

impl PagePrefs {
    pub fn from_headers(headers: &HeaderMap) -> PagePrefs {
        let lang = cookie(headers, LANG_COOKIE).and_then(Lang::parse);
        let elder = cookie(headers, ELDER_COOKIE).map(|v| v == "1");
        PagePrefs {
            lang: lang.unwrap_or(Lang::Zh),
            elder: elder.unwrap_or(false),
            lang_set: lang.is_some(),
            elder_set: elder.is_some(),
        }
    }
}

/// What every page handler gets: preferences, the CSRF token, and the session if any.
pub struct PageCtx {
    prefs: PagePrefs,
    /// The token this page's forms carry.
    csrf: String,
    /// The anonymous double-submit cookie's value (set when the browser had none).
    anonymous_csrf: String,
    new_csrf: bool,
    session: Option<Session>,
    path: String,
    secure: bool,
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut prefs = PagePrefs::from_headers(&parts.headers);
        let session = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(token) => state.identity.sessions().session(token, Utc::now()).await.ok(),
            None => None,
        };
        // The account's remembered choices apply where this browser has made none.
        if let Some(s) = &session {
            if !prefs.lang_set
                && let Some(l) = s.locale.as_deref().and_then(Lang::parse)
            {
                prefs.lang = l;
            }
            if !prefs.elder_set {
                prefs.elder = s.elder_mode;
            }
        }
        let anonymous = csrf_of(&parts.headers);
        let new_csrf = anonymous.is_none();
        let anonymous = anonymous.unwrap_or_else(|| random_token(32));
        let csrf = match cookie(&parts.headers, SESSION_COOKIE).filter(|v| !v.is_empty()) {
            Some(session) => state.identity.form_token(session),
            None => anonymous.clone(),
        };
        Ok(PageCtx {
            prefs,
            csrf,
            anonymous_csrf: anonymous,
            new_csrf,
            session,
            path: parts.uri.path().to_string(),
            secure: state.secure_cookies,
        })
    }
}

/// The known-device token: kept across sign-outs, so that a lockout of this browser's
/// address does not lock out its people (see identity's `device`).
fn device_cookie(token: &SecretString, secure: bool) -> HeaderValue {
    let max_age = u32::try_from(identity::KNOWN_DEVICE_DAYS * 24 * 3600).unwrap_or(u32::MAX);
    set_cookie(DEVICE_COOKIE, token.expose(), Some(max_age), secure)
}

fn set_cookie(name: &str, value: &str, max_age: Option<u32>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("tb_invalid=1"))
}

/// The layout's data; every template has one as `l`.
pub struct Layout {
    lang: Lang,
    pub elder: bool,
    pub csrf: String,
    pub here: String,
    pub signed_in: bool,
    pub is_staff: bool,
    /// Sees security alerts.
    pub can_alerts: bool,
    pub display_name: String,
    pub title: String,
}

impl Layout {
    pub fn t(&self, key: &str) -> &'static str {
        text(self.lang, key)
    }
    pub fn lang(&self) -> &'static str {
        self.lang.code()
    }
    pub fn other_lang(&self) -> &'static str {
        self.lang.other().code()
    }
}

impl PageCtx {
    fn layout(&self, title_key: &str) -> Layout {
        let session = self.session.as_ref().filter(|s| s.gate == Gate::Ready);
        Layout {
            lang: self.prefs.lang,
            elder: self.prefs.elder,
            csrf: self.csrf.clone(),
            here: self.path.clone(),
            signed_in: self.session.is_some(),
            is_staff: session.is_some_and(|s| s.principal.kind == AccountKind::Staff),
            can_alerts: session.is_some_and(|s| s.principal.may::<kernel::authz::SecurityAlertHandle>()),
            display_name: self.session.as_ref().map(|s| s.principal.display_name.clone()).unwrap_or_default(),
            title: text(self.prefs.lang, title_key).to_string(),
        }
    }

    /// A rendered page (with the CSRF cookie when this browser had none).
    fn page(&self, status: StatusCode, template: &impl Template) -> Response {
        match template.render() {
            Ok(html) => {
                let mut r = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
                if self.new_csrf {
                    let c = set_cookie(CSRF_COOKIE, &self.anonymous_csrf, None, self.secure);
                    r.headers_mut().append(header::SET_COOKIE, c);
                }
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "template");
                ApiError::internal().into_response()
            }
        }
    }

    /// The session, if it is fully open; otherwise where to send the browser.
    fn ready(&self) -> Result<&Session, PageError> {
        match &self.session {
            None => Err(PageError::redirect("/signin")),
            Some(s) => match s.gate {
                Gate::Ready => Ok(s),
                Gate::MustChangePassword => Err(PageError::redirect("/account/password")),
                Gate::MustEnrolMfa => Err(PageError::redirect("/account/mfa")),
            },
        }
    }

    /// The capability for `P`, from a fully open session; a refusal is recorded, as on the
    /// API, and answered with an error page.
    async fn authorize<P: identity::Permission>(&self, state: &AppState) -> Result<identity::Capability<P>, PageError> {
        let s = self.ready()?;
        match s.principal.authorize::<P>() {
            Ok(cap) => Ok(cap),
            Err(denial) => {
                state
                    .identity
                    .trail()
                    .record_denial(&s.principal, P::CODE, &self.path, &denial, "web", Utc::now())
                    .await?;
                Err(denial.into())
            }
        }
    }

    fn signed_in(&self) -> Result<&Session, PageError> {
        self.session.as_ref().ok_or_else(|| PageError::redirect("/signin"))
    }
}

/// What a page handler answers: the page, or why it is not shown.
pub type PageResult = Result<Response, PageError>;

/// Why a page is not shown: a redirect (to sign in, to finish setting up the account) or an
/// error, which the error layer renders as the error page in the reader's language.
pub struct PageError(Box<Response>);

impl PageError {
    fn redirect(to: &str) -> PageError {
        PageError(Box::new(Redirect::to(to).into_response()))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError(Box::new(e.into_response()))
    }
}

macro_rules! page_error_from {
    ($($error:ty),*) => {$(
        impl From<$error> for PageError {
            fn from(e: $error) -> PageError {
                ApiError::from(e).into()
            }
        }
    )*};
}

page_error_from!(identity::Error, identity::Denial, services::Error, ::exchange::Error, insight::security::Error);

/// Compares a form's `_csrf` with the expected token (from [`expected_form_token`]) in
/// constant time.
fn check_form_token(expected: &str, sent: &str) -> Result<(), ApiError> {
    if !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::CsrfFailed,
        "the form has expired; reload the page and try again",
    ))
}

/// A multipart form (one that sends a file in its `file` field) whose `_csrf` field must
/// equal the expected token: its text fields, and the file's name and bytes when one was
/// chosen.
pub struct CsrfMultipart {
    pub fields: Vec<(String, String)>,
    pub file: Option<(String, Vec<u8>)>,
}

impl CsrfMultipart {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl FromRequest<AppState> for CsrfMultipart {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected = expected_form_token(state, req.headers()).unwrap_or_default();
        let bad = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidBody, m);
        let mut multipart = axum::extract::Multipart::from_request(req, state).await.map_err(|e| bad(e.body_text()))?;
        let mut form = CsrfMultipart { fields: Vec::new(), file: None };
        while let Some(field) = multipart.next_field().await.map_err(|e| bad(e.body_text()))? {
            let name = field.name().unwrap_or_default().to_string();
            if name == "file" {
                let file_name = field.file_name().filter(|n| !n.is_empty()).unwrap_or("upload").to_string();
                let bytes = field.bytes().await.map_err(|e| bad(e.body_text()))?;
                // An empty file input sends a part with no name and no bytes: nothing chosen.
                if !bytes.is_empty() || file_name != "upload" {
                    form.file = Some((file_name, bytes.to_vec()));
                }
                continue;
            }
            let text = field.text().await.map_err(|e| bad(e.body_text()))?;
            form.fields.push((name, text));
        }
        check_form_token(&expected, form.field("_csrf").unwrap_or_default())?;
        Ok(form)
    }
}

/// A form body whose `_csrf` field must equal the expected token (see
/// [`expected_form_token`]).
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(rename = "_csrf", default)]
    csrf: String,
}

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected = expected_form_token(state, req.headers()).unwrap_or_default();
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "expected a form submission",
            ));
        }
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|r| ApiError::new(r.status(), crate::error::code_for_status(r.status()), r.body_text()))?;
        let field: CsrfField = serde_urlencoded::from_bytes(&body).unwrap_or(CsrfField { csrf: String::new() });
        check_form_token(&expected, &field.csrf)?;
        serde_urlencoded::from_bytes(&body)
            .map(CsrfForm)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidBody, e.to_string()))
    }
}

fn user_agent(headers: &HeaderMap) -> String {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// Only plain local paths: never an open redirect, never a header that cannot be built.
fn local_path(p: &str) -> &str {
    let plain = p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
    if plain && p.starts_with('/') && !p.starts_with("//") && p.len() <= 200 { p } else { "/" }
}

fn redirect_with_cookies(to: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut r = Redirect::to(to).into_response();
    for c in cookies {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

fn landing(kind: AccountKind) -> &'static str {
    if kind == AccountKind::Staff { "/staff" } else { "/account" }
}

// --- templates -----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    l: Layout,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    l: Layout,
    username: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "signin_mfa.html")]
struct MfaPage {
    l: Layout,
    username: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    l: Layout,
    username: String,
    kind: String,
    region: String,
    has_totp: bool,
    recovery_left: i64,
    sessions: Vec<SessionSummary>,
    /// Where case notifications also go by email.
    email: String,
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    l: Layout,
    forced: bool,
    errors: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "mfa_enrol.html")]
struct EnrolPage {
    l: Layout,
    required: bool,
    already: bool,
    uri: String,
    secret: String,
    qr_svg: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "mfa_done.html")]
struct EnrolDonePage {
    l: Layout,
    codes: Vec<String>,
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

#[derive(Template)]
#[template(path = "my_data.html")]
struct MyDataPage {
    l: Layout,
    data: identity::MyData,
    /// The audit tree size the proof links refer to.
    tree_size: u64,
    error: Option<(String, String)>,
    notice: Option<String>,
}

impl MyDataPage {
    fn action(&self, action: &str) -> String {
        let label = text(self.l.lang, &format!("action.{action}"));
        if label.is_empty() { action.to_string() } else { label.to_string() }
    }

    fn field<'a>(&self, field: &'a str) -> &'a str {
        resident_field(&self.l, field)
    }

    fn status(&self, status: &identity::CorrectionStatus) -> &'static str {
        self.l.t(match status {
            identity::CorrectionStatus::Open => "mydata.status_open",
            identity::CorrectionStatus::Done => "mydata.status_done",
            identity::CorrectionStatus::Rejected => "mydata.status_rejected",
        })
    }

    fn date(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        china_time(*t, "%Y-%m-%d")
    }
}

/// The label of a resident field a correction request names (the form offers no other); an
/// unknown name is shown as it is.
fn resident_field<'a>(l: &Layout, field: &'a str) -> &'a str {
    match field {
        "name" => l.t("account.name"),
        "id_number" => l.t("mydata.id_number"),
        "mobile" => l.t("mydata.mobile"),
        "address" => l.t("mydata.address"),
        other => other,
    }
}

/// A time as people in China read it.
pub(crate) fn china_time(t: chrono::DateTime<chrono::Utc>, format: &str) -> String {
    t.with_timezone(&services::calendar::cst()).format(format).to_string()
}

#[derive(Template)]
#[template(path = "corrections.html")]
struct CorrectionsPage {
    l: Layout,
    requests: Vec<identity::CorrectionView>,
}

impl CorrectionsPage {
    fn field<'a>(&self, field: &'a str) -> &'a str {
        resident_field(&self.l, field)
    }

    fn time(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        china_time(*t, "%Y-%m-%d %H:%M")
    }
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    l: Layout,
    alerts: Vec<insight::security::Alert>,
    open: usize,
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

async fn home(ctx: PageCtx) -> Response {
    ctx.page(StatusCode::OK, &HomePage { l: ctx.layout("home.title") })
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

async fn signin_page(ctx: PageCtx) -> Response {
    if let Some(s) = &ctx.session {
        return Redirect::to(landing(s.principal.kind)).into_response();
    }
    ctx.page(StatusCode::OK, &SignInPage { l: ctx.layout("signin.title"), username: String::new(), error: None })
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: SecretString,
}

async fn signin(
    State(state): State<AppState>,
    ctx: PageCtx,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<SignInForm>,
) -> Response {
    let attempt = SignInAttempt {
        username: &form.username,
        password: &form.password,
        source: &source,
        device: cookie(&headers, DEVICE_COOKIE),
    };
    match state.identity.sign_in().begin_sign_in(&attempt, &user_agent(&headers), Utc::now()).await {
        Ok(step) => {
            // New session, new CSRF token: nothing from before sign-in carries over.
            let mut cookies = vec![
                set_cookie(SESSION_COOKIE, step.token.expose(), None, ctx.secure),
                set_cookie(CSRF_COOKIE, &random_token(32), None, ctx.secure),
            ];
            cookies.extend(step.device.map(|d| device_cookie(&d, ctx.secure)));
            let to = if step.awaiting_code { "/signin/mfa" } else { "/account" };
            redirect_with_cookies(to, cookies)
        }
        Err(e) => {
            let e = ApiError::from(e);
            let page = SignInPage {
                l: ctx.layout("signin.title"),
                username: form.username.clone(),
                error: Some(error_text(ctx.prefs.lang, &e)),
            };
            let mut r = ctx.page(e.status, &page);
            if let Some(secs) = e.retry_after
                && let Ok(v) = HeaderValue::from_str(&secs.to_string())
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    }
}

async fn mfa_page(State(state): State<AppState>, ctx: PageCtx, headers: HeaderMap) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else { return Redirect::to("/signin").into_response() };
    match state.identity.sign_in().pending_sign_in(token, Utc::now()).await {
        Ok(username) => ctx.page(StatusCode::OK, &MfaPage { l: ctx.layout("mfa.title"), username, error: None }),
        Err(_) => Redirect::to("/signin").into_response(),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn mfa(
    State(state): State<AppState>,
    ctx: PageCtx,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else { return Redirect::to("/signin").into_response() };
    let now = Utc::now();
    match state.identity.sign_in().complete_sign_in(token, &form.code, &source, &user_agent(&headers), now).await {
        Ok(step) => {
            let mut cookies = vec![
                set_cookie(SESSION_COOKIE, step.token.expose(), None, ctx.secure),
                set_cookie(CSRF_COOKIE, &random_token(32), None, ctx.secure),
            ];
            cookies.extend(step.device.map(|d| device_cookie(&d, ctx.secure)));
            // The landing depends on the account kind, which the new session knows.
            let to = match state.identity.sessions().session(step.token.expose(), now).await {
                Ok(s) => landing(s.principal.kind),
                Err(_) => "/account",
            };
            redirect_with_cookies(to, cookies)
        }
        Err(identity::Error::Unauthenticated) => Redirect::to("/signin").into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            let username = state.identity.sign_in().pending_sign_in(token, now).await.unwrap_or_default();
            ctx.page(
                e.status,
                &MfaPage { l: ctx.layout("mfa.title"), username, error: Some(error_text(ctx.prefs.lang, &e)) },
            )
        }
    }
}

/// A form whose only field is its CSRF token (a button).
#[derive(Deserialize)]
struct EmptyForm {}

async fn signout(
    State(state): State<AppState>,
    ctx: PageCtx,
    headers: HeaderMap,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && let Err(e) = state.identity.sessions().sign_out(token, Utc::now()).await
    {
        return ApiError::from(e).into_response();
    }
    redirect_with_cookies("/", vec![set_cookie(SESSION_COOKIE, "", Some(0), ctx.secure)])
}

async fn account(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let sessions = state.identity.sessions().list(s, Utc::now()).await?;
    let page = AccountPage {
        l: ctx.layout("account.title"),
        username: s.principal.username.clone(),
        kind: text(ctx.prefs.lang, &format!("kind.{}", s.principal.kind.as_str())).to_string(),
        region: s.principal.region.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
        has_totp: s.has_totp,
        recovery_left: s.unused_recovery_codes,
        sessions,
        email: state
            .identity
            .settings()
            .notification_email(&s.principal.account_id)
            .await
            .ok()
            .flatten()
            .unwrap_or_default(),
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
}

async fn set_email(State(state): State<AppState>, ctx: PageCtx, CsrfForm(form): CsrfForm<EmailForm>) -> PageResult {
    let s = ctx.ready()?;
    let email = Some(form.email.as_str()).filter(|e| !e.trim().is_empty());
    state.identity.settings().set_notification_email(&s.principal, email, Utc::now()).await?;
    Ok(Redirect::to("/account").into_response())
}

async fn password_page(ctx: PageCtx) -> PageResult {
    let s = ctx.signed_in()?;
    let forced = s.gate == Gate::MustChangePassword;
    Ok(ctx.page(StatusCode::OK, &PasswordPage { l: ctx.layout("password.title"), forced, errors: vec![] }))
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: SecretString,
    #[serde(default)]
    new_password: SecretString,
    #[serde(default)]
    confirm_password: SecretString,
}

async fn change_password(
    State(state): State<AppState>,
    ctx: PageCtx,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<PasswordForm>,
) -> PageResult {
    let s = ctx.signed_in()?;
    let forced = s.gate == Gate::MustChangePassword;
    let fail = |field: &str, e: &ApiError| {
        let page = PasswordPage {
            l: ctx.layout("password.title"),
            forced,
            errors: vec![(field.to_string(), error_text(ctx.prefs.lang, e))],
        };
        ctx.page(e.status, &page)
    };
    if form.new_password != form.confirm_password {
        let e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, "");
        let page = PasswordPage {
            l: ctx.layout("password.title"),
            forced,
            errors: vec![("confirm_password".into(), text(ctx.prefs.lang, "password.mismatch").into())],
        };
        return Ok(ctx.page(e.status, &page));
    }
    let result = state
        .identity
        .settings()
        .change_password(
            s,
            PasswordChange { current: &form.current_password, new: &form.new_password },
            &source,
            &user_agent(&headers),
            Utc::now(),
        )
        .await;
    match result {
        Ok(token) => Ok(redirect_with_cookies(
            landing(s.principal.kind),
            vec![set_cookie(SESSION_COOKIE, token.expose(), None, ctx.secure)],
        )),
        Err(e) => {
            let field =
                if matches!(e, identity::Error::InvalidCredentials) { "current_password" } else { "new_password" };
            Ok(fail(field, &ApiError::from(e)))
        }
    }
}

async fn enrol_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.signed_in()?;
    if s.gate == Gate::MustChangePassword {
        return Ok(Redirect::to("/account/password").into_response());
    }
    let required = s.gate == Gate::MustEnrolMfa;
    if s.has_totp {
        let page = EnrolPage {
            l: ctx.layout("enrol.title"),
            required,
            already: true,
            uri: String::new(),
            secret: String::new(),
            qr_svg: String::new(),
            error: None,
        };
        return Ok(ctx.page(StatusCode::OK, &page));
    }
    let en = state.identity.settings().begin_totp_enrolment(s).await?;
    let page = EnrolPage {
        l: ctx.layout("enrol.title"),
        required,
        already: false,
        uri: en.uri,
        secret: en.secret_base32,
        qr_svg: en.qr_svg,
        error: None,
    };
    Ok(ctx.page(StatusCode::OK, &page))
}

async fn enrol(
    State(state): State<AppState>,
    ctx: PageCtx,
    ClientAddr(source): ClientAddr,
    headers: HeaderMap,
    CsrfForm(form): CsrfForm<CodeForm>,
) -> PageResult {
    let s = ctx.signed_in()?;
    let result = state
        .identity
        .settings()
        .confirm_totp_enrolment(s, &form.code, &source, &user_agent(&headers), Utc::now())
        .await;
    match result {
        Ok((codes, token)) => {
            let mut r = ctx.page(StatusCode::OK, &EnrolDonePage { l: ctx.layout("enrol.done_title"), codes });
            r.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, token.expose(), None, ctx.secure));
            Ok(r)
        }
        Err(e) => {
            let e = ApiError::from(e);
            match state.identity.settings().begin_totp_enrolment(s).await {
                Ok(en) => {
                    let page = EnrolPage {
                        l: ctx.layout("enrol.title"),
                        required: s.gate == Gate::MustEnrolMfa,
                        already: false,
                        uri: en.uri,
                        secret: en.secret_base32,
                        qr_svg: en.qr_svg,
                        error: Some(error_text(ctx.prefs.lang, &e)),
                    };
                    Ok(ctx.page(e.status, &page))
                }
                Err(e2) => Ok(ApiError::from(e2).into_response()),
            }
        }
    }
}

#[derive(Deserialize)]
struct RevokeForm {
    #[serde(default)]
    session_id: String,
}

async fn revoke_session(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<RevokeForm>,
) -> PageResult {
    let s = ctx.ready()?;
    match state.identity.sessions().revoke_session(s, &form.session_id, Utc::now()).await {
        Ok(()) if form.session_id == s.id => {
            Ok(redirect_with_cookies("/signin", vec![set_cookie(SESSION_COOKIE, "", Some(0), ctx.secure)]))
        }
        Ok(()) => Ok(Redirect::to("/account").into_response()),
        Err(e) => Err(e.into()),
    }
}

async fn signout_everywhere(
    State(state): State<AppState>,
    ctx: PageCtx,
    ClientAddr(source): ClientAddr,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let s = ctx.signed_in()?;
    state.identity.sessions().sign_out_everywhere(s, &source, Utc::now()).await?;
    Ok(redirect_with_cookies("/signin", vec![set_cookie(SESSION_COOKIE, "", Some(0), ctx.secure)]))
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

async fn my_data_page(
    state: &AppState,
    ctx: &PageCtx,
    error: Option<(String, String)>,
    notice: Option<String>,
) -> PageResult {
    let s = ctx.ready()?;
    let data = state.identity.my_data().overview(&s.principal, Utc::now()).await?;
    // Proofs refer to the latest signed checkpoint, which a citizen can verify.
    let tree_size = match state.ledger.latest_checkpoint(ledger::Log::Audit).await {
        Ok(Some((size, _))) => size,
        _ => 0,
    };
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(ctx.page(status, &MyDataPage { l: ctx.layout("mydata.title"), data, tree_size, error, notice }))
}

async fn my_data(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    my_data_page(&state, &ctx, None, None).await
}

async fn my_data_export(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let d = state.identity.my_data().overview(&s.principal, Utc::now()).await?;
    // A person's own data never downloads as an empty file: a fault is answered as one.
    let json = serde_json::to_string_pretty(&d).map_err(|e| {
        tracing::error!(error = %e, "my data does not serialise");
        ApiError::internal()
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"my-data.json\""),
        ],
        json,
    )
        .into_response())
}

#[derive(Deserialize)]
struct CorrectionForm {
    #[serde(default)]
    field: String,
    #[serde(default)]
    requested: String,
    #[serde(default)]
    reason: String,
}

async fn request_correction(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<CorrectionForm>,
) -> PageResult {
    let s = ctx.ready()?;
    match state
        .identity
        .my_data()
        .request_correction(&s.principal, &form.field, &form.requested, &form.reason, Utc::now())
        .await
    {
        Ok(view) => {
            let notice = format!("{} {}", text(ctx.prefs.lang, "mydata.sent_to"), view.department);
            my_data_page(&state, &ctx, None, Some(notice)).await
        }
        Err(e) => {
            let field = match &e {
                identity::Error::Invalid { field, .. } => (*field).to_string(),
                _ => "requested".to_string(),
            };
            let message = error_text(ctx.prefs.lang, &ApiError::from(e));
            my_data_page(&state, &ctx, Some((field, message)), None).await
        }
    }
}

async fn security_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<kernel::authz::SecurityAlertHandle>(&state).await?;
    let alerts = insight::security::alerts(&state.db, &cap, 200).await?;
    let open = insight::security::open_count(&alerts);
    Ok(ctx.page(StatusCode::OK, &SecurityPage { l: ctx.layout("security.title"), alerts, open }))
}

#[derive(Deserialize)]
struct AcknowledgeForm {
    #[serde(default)]
    alert_id: String,
}

async fn acknowledge_alert(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<AcknowledgeForm>,
) -> PageResult {
    let cap = ctx.authorize::<kernel::authz::SecurityAlertHandle>(&state).await?;
    insight::security::acknowledge(&state.db, &cap, &form.alert_id, Utc::now()).await?;
    Ok(Redirect::to("/security").into_response())
}

/// The correction requests addressed to departments in the caller's jurisdiction.
async fn corrections_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let cap = ctx.authorize::<kernel::authz::ResidentRead>(&state).await?;
    let requests = state.identity.my_data().corrections(&cap, Utc::now()).await?;
    Ok(ctx.page(StatusCode::OK, &CorrectionsPage { l: ctx.layout("corrections.title"), requests }))
}
