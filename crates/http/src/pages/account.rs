//! Signing in (password, then the second factor), signing out, and the account pages:
//! email, password, authenticator enrolment and sessions.

use super::*;

#[derive(Template)]
#[template(path = "signin.html")]
pub(super) struct SignInPage {
    l: Layout,
    username: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "signin_mfa.html")]
pub(super) struct MfaPage {
    l: Layout,
    username: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "account.html")]
pub(super) struct AccountPage {
    l: Layout,
    username: String,
    kind: String,
    region: String,
    has_totp: bool,
    recovery_left: i64,
    /// Each session with the device it was opened on, in words.
    sessions: Vec<(SessionSummary, String)>,
    /// Where case notifications also go by email.
    email: String,
}

#[derive(Template)]
#[template(path = "password.html")]
pub(super) struct PasswordPage {
    l: Layout,
    forced: bool,
    errors: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "mfa_enrol.html")]
pub(super) struct EnrolPage {
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
pub(super) struct EnrolDonePage {
    l: Layout,
    codes: Vec<String>,
}

pub(super) async fn signin_page(ctx: PageCtx) -> Response {
    if let Some(s) = &ctx.session {
        return Redirect::to(landing(s.principal.kind)).into_response();
    }
    ctx.page(StatusCode::OK, &SignInPage { l: ctx.layout("signin.title"), username: String::new(), error: None })
}

#[derive(Deserialize)]
pub(super) struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: SecretString,
}

pub(super) async fn signin(
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

pub(super) async fn mfa_page(State(state): State<AppState>, ctx: PageCtx, headers: HeaderMap) -> Response {
    let Some(token) = cookie(&headers, SESSION_COOKIE) else { return Redirect::to("/signin").into_response() };
    match state.identity.sign_in().pending_sign_in(token, Utc::now()).await {
        Ok(username) => ctx.page(StatusCode::OK, &MfaPage { l: ctx.layout("mfa.title"), username, error: None }),
        Err(_) => Redirect::to("/signin").into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    code: String,
}

pub(super) async fn mfa(
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
pub(super) struct EmptyForm {}

pub(super) async fn signout(
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

pub(super) async fn account(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
    let s = ctx.ready()?;
    let sessions = state.identity.sessions().list(s, Utc::now()).await?;
    let page = AccountPage {
        l: ctx.layout("account.title"),
        username: s.principal.username.clone(),
        kind: text(ctx.prefs.lang, &format!("kind.{}", s.principal.kind.as_str())).to_string(),
        region: s.principal.region.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
        has_totp: s.has_totp,
        recovery_left: s.unused_recovery_codes,
        sessions: sessions
            .into_iter()
            .map(|s| {
                let shown = device(&s.user_agent);
                (s, shown)
            })
            .collect(),
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
pub(super) struct EmailForm {
    #[serde(default)]
    email: String,
}

pub(super) async fn set_email(
    State(state): State<AppState>,
    ctx: PageCtx,
    CsrfForm(form): CsrfForm<EmailForm>,
) -> PageResult {
    let s = ctx.ready()?;
    let email = Some(form.email.as_str()).filter(|e| !e.trim().is_empty());
    state.identity.settings().set_notification_email(&s.principal, email, Utc::now()).await?;
    Ok(Redirect::to("/account").into_response())
}

pub(super) async fn password_page(ctx: PageCtx) -> PageResult {
    let s = ctx.signed_in()?;
    let forced = s.gate == Gate::MustChangePassword;
    Ok(ctx.page(StatusCode::OK, &PasswordPage { l: ctx.layout("password.title"), forced, errors: vec![] }))
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    current_password: SecretString,
    #[serde(default)]
    new_password: SecretString,
    #[serde(default)]
    confirm_password: SecretString,
}

pub(super) async fn change_password(
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

pub(super) async fn enrol_page(State(state): State<AppState>, ctx: PageCtx) -> PageResult {
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

pub(super) async fn enrol(
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
pub(super) struct RevokeForm {
    #[serde(default)]
    session_id: String,
}

pub(super) async fn revoke_session(
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

pub(super) async fn signout_everywhere(
    State(state): State<AppState>,
    ctx: PageCtx,
    ClientAddr(source): ClientAddr,
    CsrfForm(_): CsrfForm<EmptyForm>,
) -> PageResult {
    let s = ctx.signed_in()?;
    state.identity.sessions().sign_out_everywhere(s, &source, Utc::now()).await?;
    Ok(redirect_with_cookies("/signin", vec![set_cookie(SESSION_COOKIE, "", Some(0), ctx.secure)]))
}

/// A browser's user-agent string as people recognise their device: "Chrome 120 · Windows 10".
/// One that does not parse is shown cut short rather than whole.
fn device(user_agent: &str) -> String {
    match woothee::parser::Parser::new().parse(user_agent) {
        Some(r) if r.name != "UNKNOWN" => {
            let version = r.version.split('.').next().filter(|v| !v.is_empty() && *v != "UNKNOWN");
            let browser = match version {
                Some(v) => format!("{} {v}", r.name),
                None => r.name.to_string(),
            };
            if r.os == "UNKNOWN" { browser } else { format!("{browser} · {}", r.os) }
        }
        _ => user_agent.chars().take(40).collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn devices_are_named_not_spelled_out() {
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                      Chrome/120.0.6099.109 Safari/537.36";
        assert_eq!(super::device(chrome), "Chrome 120 · Windows 10");
        assert_eq!(super::device("curl/8.5.0"), "HTTP Library curl");
        assert_eq!(super::device(&"x".repeat(300)).chars().count(), 40);
    }
}
