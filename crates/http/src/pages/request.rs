//! What every page handler is given and returns: preferences and the page context from
//! cookies, the layout, CSRF-checked forms and uploads, and page errors.

use super::*;

pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
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
    pub(super) lang_set: bool,
    pub(super) elder_set: bool,
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
    pub(super) prefs: PagePrefs,
    /// The token this page's forms carry.
    pub(super) csrf: String,
    /// The anonymous double-submit cookie's value (set when the browser had none).
    pub(super) anonymous_csrf: String,
    pub(super) new_csrf: bool,
    pub(super) session: Option<Session>,
    pub(super) path: String,
    pub(super) secure: bool,
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
pub(super) fn device_cookie(token: &SecretString, secure: bool) -> HeaderValue {
    let max_age = u32::try_from(identity::KNOWN_DEVICE_DAYS * 24 * 3600).unwrap_or(u32::MAX);
    set_cookie(DEVICE_COOKIE, token.expose(), Some(max_age), secure)
}

pub(super) fn set_cookie(name: &str, value: &str, max_age: Option<u32>, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).unwrap_or(HeaderValue::from_static("tb_invalid=1"))
}

/// A link of the main navigation.
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The layout's data; every template has one as `l`.
pub struct Layout {
    pub(super) lang: Lang,
    pub elder: bool,
    pub csrf: String,
    pub here: String,
    pub signed_in: bool,
    pub is_staff: bool,
    /// Sees security alerts.
    pub can_alerts: bool,
    /// Dispatches 12345 requests; handles them for a department.
    pub can_dispatch: bool,
    pub can_answer: bool,
    /// Sees the service KPIs (领导).
    pub can_insight: bool,
    /// Records 12345 calls (话务员).
    pub can_record: bool,
    /// Publishes or answers for a department's 政务公开.
    pub can_disclose: bool,
    /// Publishes a community's finances or public-resource transactions.
    pub can_ledger: bool,
    /// Opens a department's datasets and decides applications for them (数据开放).
    pub can_open_data: bool,
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
    /// The page's title naming what it is about ("居住证签注 · 办事指南"), so that a tab, a
    /// bookmark and a screen reader's page list say which one it is.
    pub fn about(mut self, what: &str) -> Layout {
        self.title = format!("{what} · {}", self.title);
        self
    }
    /// The main navigation for who is signed in, the current page marked.
    pub fn nav(&self) -> Vec<NavLink> {
        let mut links: Vec<(&'static str, &'static str)> =
            vec![("/", "nav.home"), ("/services", "nav.services"), ("/open", "nav.open"), ("/data", "nav.data")];
        match (self.signed_in, self.is_staff) {
            (false, _) => links.push(("/signin", "nav.signin")),
            (true, true) => {
                links.extend([
                    ("/staff", "nav.staff"),
                    ("/staff/inbox", "nav.inbox"),
                    ("/staff/appointments", "nav.hall_appointments"),
                    ("/staff/exchange", "nav.exchange"),
                ]);
                if self.can_record {
                    links.push(("/staff/voice/calls/new", "nav.voice_call"));
                }
                if self.can_dispatch {
                    links.push(("/staff/voice/queue", "nav.voice_queue"));
                }
                if self.can_answer {
                    links.push(("/staff/voice", "nav.voice_inbox"));
                }
                if self.can_insight {
                    links.push(("/staff/insight", "nav.insight"));
                }
                if self.can_disclose {
                    links.push(("/staff/open", "nav.disclosure"));
                }
                if self.can_ledger {
                    links.push(("/staff/open/ledgers", "nav.ledgers"));
                }
                if self.can_open_data {
                    links.push(("/staff/data", "nav.data_desk"));
                }
            }
            (true, false) => links.extend([
                ("/applications", "nav.applications"),
                ("/materials", "hall.my_materials"),
                ("/appointments", "nav.appointments"),
                ("/certificates", "hall.my_certificates"),
                ("/voice", "nav.voice"),
                ("/consents", "nav.consents"),
                ("/account/data", "nav.my_data"),
            ]),
        }
        if self.signed_in {
            if self.can_alerts {
                links.push(("/security", "nav.security"));
            }
            links.extend([("/notifications", "nav.notifications"), ("/account", "nav.account")]);
        }
        // The deepest link that contains the current page is the current one.
        let here = self.here.split('?').next().unwrap_or("/");
        let within = |href: &str| here == href || (href != "/" && here.starts_with(&format!("{href}/")));
        let current = links.iter().filter(|(href, _)| within(href)).map(|(href, _)| href.len()).max();
        links
            .into_iter()
            .map(|(href, key)| NavLink {
                href,
                label: self.t(key),
                current: within(href) && Some(href.len()) == current,
            })
            .collect()
    }
    /// The label of a value in a group of labels (`voice.stage` + `handling`).
    pub fn label(&self, group: &str, value: &str) -> &'static str {
        self.t(&format!("{group}.{value}"))
    }
    /// The Chinese or the English of a pair, as the reader reads.
    pub fn pick<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        if self.lang == Lang::Zh { zh } else { en }
    }
    /// A day as people in China read it (China Standard Time), for templates.
    pub fn date(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        super::china_time(*t, "%Y-%m-%d")
    }
    /// A moment to the minute in China Standard Time, for templates.
    pub fn time(&self, t: &chrono::DateTime<chrono::Utc>) -> String {
        super::china_time(*t, "%Y-%m-%d %H:%M")
    }
}

impl PageCtx {
    pub(super) fn layout(&self, title_key: &str) -> Layout {
        let session = self.session.as_ref().filter(|s| s.gate == Gate::Ready);
        Layout {
            lang: self.prefs.lang,
            elder: self.prefs.elder,
            csrf: self.csrf.clone(),
            here: self.path.clone(),
            signed_in: self.session.is_some(),
            is_staff: session.is_some_and(|s| s.principal.kind == AccountKind::Staff),
            can_alerts: session.is_some_and(|s| s.principal.may::<kernel::authz::SecurityAlertHandle>()),
            can_dispatch: session.is_some_and(|s| s.principal.may::<kernel::authz::VoiceDispatch>()),
            can_answer: session.is_some_and(|s| s.principal.may::<kernel::authz::VoiceHandle>()),
            can_insight: session.is_some_and(|s| s.principal.may::<kernel::authz::InsightRead>()),
            can_record: session.is_some_and(|s| s.principal.may::<kernel::authz::VoiceRecord>()),
            can_ledger: session.is_some_and(|s| {
                s.principal.may::<kernel::authz::CommunityFinancePublish>()
                    || s.principal.may::<kernel::authz::TransactionPublish>()
            }),
            can_open_data: session.is_some_and(|s| s.principal.may::<kernel::authz::OpenDataPublish>()),
            can_disclose: session.is_some_and(|s| {
                s.principal.may::<kernel::authz::DisclosurePublish>()
                    || s.principal.may::<kernel::authz::DisclosureAnswer>()
            }),
            display_name: self.session.as_ref().map(|s| s.principal.display_name.clone()).unwrap_or_default(),
            title: text(self.prefs.lang, title_key).to_string(),
        }
    }

    /// A rendered page (with the CSRF cookie when this browser had none).
    pub(super) fn page(&self, status: StatusCode, template: &impl Template) -> Response {
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
    pub(super) fn ready(&self) -> Result<&Session, PageError> {
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
    pub(super) async fn authorize<P: identity::Permission>(
        &self,
        state: &AppState,
    ) -> Result<identity::Capability<P>, PageError> {
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

    pub(super) fn signed_in(&self) -> Result<&Session, PageError> {
        self.session.as_ref().ok_or_else(|| PageError::redirect("/signin"))
    }
}

/// What a page handler answers: the page, or why it is not shown.
pub type PageResult = Result<Response, PageError>;

/// Why a page is not shown: a redirect (to sign in, to finish setting up the account) or an
/// error, which the error layer renders as the error page in the reader's language.
pub struct PageError(Box<Response>);

impl PageError {
    pub(super) fn redirect(to: &str) -> PageError {
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

page_error_from!(
    identity::Error,
    identity::Denial,
    services::Error,
    ::exchange::Error,
    insight::security::Error,
    insight::Error,
    ::openness::Error,
    ::ledger::Error
);

/// Compares a form's `_csrf` with the expected token (from [`expected_form_token`]) in
/// constant time.
/// A browser with neither a session nor the anonymous cookie has no token to match, and a
/// form without `_csrf` sends none: both are refused.
pub(super) fn check_form_token(expected: Option<&str>, sent: Option<&str>) -> Result<(), ApiError> {
    if let (Some(expected), Some(sent)) = (expected, sent)
        && !expected.is_empty()
        && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
    {
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
        let expected = expected_form_token(state, req.headers());
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
        check_form_token(expected.as_deref(), form.field("_csrf"))?;
        Ok(form)
    }
}

/// A form body whose `_csrf` field must equal the expected token (see
/// [`expected_form_token`]).
pub struct CsrfForm<T>(pub T);

#[derive(Deserialize)]
pub(super) struct CsrfField {
    #[serde(rename = "_csrf")]
    pub(super) csrf: Option<String>,
}

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let expected = expected_form_token(state, req.headers());
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
        let sent = serde_urlencoded::from_bytes::<CsrfField>(&body).ok().and_then(|f| f.csrf);
        check_form_token(expected.as_deref(), sent.as_deref())?;
        serde_urlencoded::from_bytes(&body)
            .map(CsrfForm)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidBody, e.to_string()))
    }
}

pub(super) fn user_agent(headers: &HeaderMap) -> String {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// Only plain local paths: never an open redirect, never a header that cannot be built.
pub(super) fn local_path(p: &str) -> &str {
    let plain = p.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b));
    if plain && p.starts_with('/') && !p.starts_with("//") && p.len() <= 200 { p } else { "/" }
}

pub(super) fn redirect_with_cookies(to: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut r = Redirect::to(to).into_response();
    for c in cookies {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

pub(super) fn landing(kind: AccountKind) -> &'static str {
    if kind == AccountKind::Staff { "/staff" } else { "/account" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(lang: Lang, signed_in: bool, is_staff: bool, can_alerts: bool, here: &str) -> Layout {
        Layout {
            lang,
            elder: false,
            csrf: String::new(),
            here: here.into(),
            signed_in,
            is_staff,
            can_alerts,
            // Staff who may do everything see every link.
            can_dispatch: can_alerts,
            can_answer: can_alerts,
            can_insight: can_alerts,
            can_record: can_alerts,
            can_disclose: can_alerts,
            can_ledger: can_alerts,
            can_open_data: can_alerts,
            display_name: String::new(),
            title: String::new(),
        }
    }

    #[test]
    fn every_navigation_link_is_labelled_and_one_is_current() {
        for lang in [Lang::Zh, Lang::En] {
            for (signed_in, is_staff, can_alerts) in
                [(false, false, false), (true, false, false), (true, true, false), (true, true, true)]
            {
                let links = layout(lang, signed_in, is_staff, can_alerts, "/").nav();
                assert!(links.iter().all(|l| !l.label.is_empty()), "{signed_in} {is_staff} {can_alerts}");
                assert_eq!(links.iter().filter(|l| l.current).map(|l| l.href).collect::<Vec<_>>(), ["/"]);
            }
        }
        // The deepest link containing the page is current, query strings aside.
        let current = |here: &str| {
            layout(Lang::Zh, true, true, true, here)
                .nav()
                .into_iter()
                .filter(|l| l.current)
                .map(|l| l.href)
                .collect::<Vec<_>>()
        };
        assert_eq!(current("/staff/inbox?due=overdue"), ["/staff/inbox"]);
        assert_eq!(current("/staff/cases/abc"), ["/staff"]);
        assert_eq!(current("/services/YLMZ0005"), ["/services"]);
        assert!(current("/verify/abc").is_empty());
        let resident = layout(Lang::Zh, true, false, false, "/account/data").nav();
        assert_eq!(resident.iter().filter(|l| l.current).map(|l| l.href).collect::<Vec<_>>(), ["/account/data"]);
    }
}
