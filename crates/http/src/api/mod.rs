//! The JSON API under /api/v1, described by OpenAPI 3.1 at /api/openapi.json.

pub(crate) mod appointments;
pub(crate) mod disclosure;
pub(crate) mod exchange;
mod kpis;
mod ledger;
pub(crate) mod open_data;
mod public_ledgers;
pub(crate) mod services;
pub(crate) mod voice;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authorized, Bearer, Caller, ClientAddr};
use identity::{
    AccountKind, CorrectionView, DepartmentRef, DepartmentView, EnterpriseView, MyData, NewAccount, RegionRef,
    ResidentView, SecurityEvent, SignInAttempt,
};
use insight::security;
use kernel::authz::{
    AccountCreate, EnterpriseRead, OrganisationRead, ResidentRead, RoleGrant, SecurityAlertHandle, SecurityEventRead,
};
use kernel::secrets::SecretString;

struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&BearerScheme),
    info(title = "tongban API", description = "通办 integrated digital-government platform. Every error answers `{code, message, request_id}` with a stable snake_case `code`."),
    components(schemas(ErrorBody, ErrorCode)),
    tags((name = "auth", description = "Tokens"), (name = "identity", description = "Accounts, people, organisation"),
        (name = "voice", description = "12345: requests from people, dispatch, departments' answers"),
        (name = "disclosure", description = "政府信息公开: published documents, requests for information, annual reports"),
        (name = "public ledgers", description = "社区财务公开 and 公共资源交易: records on the public ledger"),
        (name = "open data", description = "数据开放: the catalogue, rows and downloads, publishing, conditional access, 数据需求"),
        (name = "insight", description = "Service KPIs for leaders: figures, trends, breakdowns"))
)]
struct ApiDoc;

/// Every /api/v1 route, with its OpenAPI description.
pub fn all() -> OpenApiRouter<AppState> {
    router()
        .merge(self::ledger::router())
        .merge(self::services::router())
        .merge(self::appointments::router())
        .merge(self::exchange::router())
        .merge(self::voice::router())
        .merge(self::disclosure::router())
        .merge(self::public_ledgers::router())
        .merge(self::open_data::router())
        .merge(self::kpis::router())
}

/// The answers every operation of a kind can give, said once here rather than on each
/// operation: 401 `unauthenticated` and 403 `forbidden` where a bearer token is needed (no
/// token, or an expired or revoked one; no role of the caller grants the operation); 404
/// where the path names something; 400 and 422 where there are parameters or a body to get
/// wrong; 413 and 415 where there is a body (too large, not JSON).
pub fn document_common_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let error = |description: &str| {
        let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        RefOr::T(ResponseBuilder::new().description(description).content("application/json", body).build())
    };
    for item in doc.paths.paths.values_mut() {
        let shared_parameters = item.parameters.as_ref().is_some_and(|p| !p.is_empty());
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch];
        for op in operations.into_iter().flatten() {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let parameters = shared_parameters || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let named = op.parameters.iter().flatten().any(|p| p.parameter_in == ParameterIn::Path);
            let body = op.request_body.is_some();
            let mut common = Vec::new();
            if secured {
                common.push(("401", "unauthenticated: no token, or an expired or revoked one"));
                common
                    .push(("403", "forbidden: no role of the caller grants this, or it is outside their jurisdiction"));
            }
            if named || shared_parameters || body {
                common.push(("404", "not_found: nothing by that name or id that the caller may see"));
            }
            if parameters || body {
                common.push(("400", "a parameter or the body is missing or malformed"));
                common.push(("422", "a value breaks a rule (the message says which)"));
            }
            if body {
                common.push(("413", "payload_too_large: the body is over the configured limit"));
                common.push(("415", "unsupported_media_type: send the body as JSON"));
            }
            for (status, description) in common {
                op.responses.responses.entry(status.into()).or_insert_with(|| error(description));
            }
        }
    }
}

fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(issue_token))
        .routes(routes!(revoke_token))
        .routes(routes!(me))
        .routes(routes!(residents))
        .routes(routes!(resident))
        .routes(routes!(enterprise))
        .routes(routes!(regions))
        .routes(routes!(departments))
        .routes(routes!(create_account))
        .routes(routes!(grant_role))
        .routes(routes!(revoke_role))
        .routes(routes!(security_events))
        .routes(routes!(my_data))
        .routes(routes!(my_data_export))
        .routes(routes!(request_correction))
        .routes(routes!(corrections))
        .routes(routes!(alerts))
        .routes(routes!(acknowledge_alert))
}

impl From<security::Error> for ApiError {
    fn from(e: security::Error) -> ApiError {
        match e {
            security::Error::NotFound => ApiError::not_found("open alert"),
            security::Error::Storage(s) => identity::Error::Storage(s).into(),
            security::Error::Ledger(cause) => identity::Error::Internal(cause).into(),
            security::Error::Identity(e) => e.into(),
        }
    }
}

/// Security alerts raised by the monitoring rules, open ones first.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "identity",
    responses((status = 200, body = Vec<security::Alert>), (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = [])))]
async fn alerts(
    State(state): State<AppState>,
    Authorized(cap): Authorized<SecurityAlertHandle>,
) -> Result<Json<Vec<security::Alert>>, ApiError> {
    Ok(Json(security::alerts(&state.db, &cap, 200).await?))
}

/// Acknowledge an alert (recorded in the audit ledger).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "identity", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody), (status = 404, description = "not_found", body = ErrorBody)),
    security(("bearer" = [])))]
async fn acknowledge_alert(
    State(state): State<AppState>,
    Authorized(cap): Authorized<SecurityAlertHandle>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    security::acknowledge(&state.db, &cap, &id, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// 我的数据: the personal data the platform holds about the caller, every recorded access
/// to it (with department, post and purpose; staff names masked) and correction requests.
#[utoipa::path(get, path = "/api/v1/me/data", tag = "identity",
    responses((status = 200, body = MyData), (status = 401, description = "unauthenticated", body = ErrorBody)),
    security(("bearer" = [])))]
async fn my_data(State(state): State<AppState>, Caller(p): Caller) -> Result<Json<MyData>, ApiError> {
    Ok(Json(state.identity.my_data().overview(&p, Utc::now()).await?))
}

/// The same, as a file to keep (`my-data.json`).
#[utoipa::path(get, path = "/api/v1/me/data/export", tag = "identity",
    responses((status = 200, body = MyData), (status = 401, description = "unauthenticated", body = ErrorBody)),
    security(("bearer" = [])))]
async fn my_data_export(State(state): State<AppState>, Caller(p): Caller) -> Result<impl IntoResponse, ApiError> {
    let data = state.identity.my_data().overview(&p, Utc::now()).await?;
    Ok(([(axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"my-data.json\"")], Json(data)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionRequest {
    /// name, id_number, mobile or address
    #[schema(pattern = "^(name|id_number|mobile|address)$")]
    field: String,
    /// The correct value, at most 200 characters.
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    requested: String,
    /// Why the held value is wrong, at most 500 characters.
    #[schema(min_length = 1, max_length = 500, pattern = r"\S")]
    reason: String,
}

/// Ask the department that owns a piece of one's data to correct it.
#[utoipa::path(post, path = "/api/v1/me/corrections", tag = "identity", request_body = CorrectionRequest,
    responses(
        (status = 201, body = CorrectionView),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 404, description = "not_found: no resident record", body = ErrorBody),
        (status = 422, description = "invalid_field, invalid_body", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn request_correction(
    State(state): State<AppState>,
    Caller(p): Caller,
    ApiJson(body): ApiJson<CorrectionRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let view =
        state.identity.my_data().request_correction(&p, &body.field, &body.requested, &body.reason, Utc::now()).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Open correction requests addressed to departments in the caller's jurisdiction.
#[utoipa::path(get, path = "/api/v1/corrections", tag = "identity",
    responses((status = 200, body = Vec<CorrectionView>), (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = [])))]
async fn corrections(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ResidentRead>,
) -> Result<Json<Vec<CorrectionView>>, ApiError> {
    Ok(Json(state.identity.my_data().corrections(&cap, Utc::now()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    username: String,
    #[schema(value_type = String)]
    password: SecretString,
    /// The 6-digit code from the authenticator app (or a recovery code); required for
    /// accounts with a second factor.
    totp: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    access_token: String,
    /// Always `Bearer`.
    token_type: &'static str,
    /// Seconds until the token expires.
    expires_in: u64,
}

/// Exchange credentials for a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "malformed_json", body = ErrorBody),
        (status = 401, description = "invalid_credentials, mfa_required", body = ErrorBody),
        (status = 403, description = "mfa_enrolment_required, password_change_required", body = ErrorBody),
        (status = 415, description = "unsupported_media_type", body = ErrorBody),
        (status = 422, description = "invalid_body", body = ErrorBody),
        (status = 429, description = "locked (see Retry-After)", body = ErrorBody),
    ))]
async fn issue_token(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<Json<TokenResponse>, ApiError> {
    let attempt = SignInAttempt { username: &body.username, password: &body.password, source: &source, device: None };
    let issued = state.identity.sign_in().issue_token(&attempt, body.totp.as_deref(), Utc::now()).await?;
    Ok(Json(TokenResponse {
        access_token: issued.token.expose().to_string(),
        token_type: "Bearer",
        expires_in: issued.expires_in,
    }))
}

/// Revoke the bearer token of this request.
#[utoipa::path(post, path = "/api/v1/auth/revoke", tag = "auth",
    responses((status = 204), (status = 401, description = "unauthenticated", body = ErrorBody)),
    security(("bearer" = [])))]
async fn revoke_token(
    State(state): State<AppState>,
    ClientAddr(source): ClientAddr,
    Bearer(token): Bearer,
) -> Result<StatusCode, ApiError> {
    state.identity.sessions().revoke_token(&token, &source, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    code: String,
    name_zh: String,
    name_en: String,
    platform_wide: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MeResponse {
    id: String,
    username: String,
    display_name: String,
    kind: AccountKind,
    region: Option<RegionRef>,
    department: Option<DepartmentRef>,
    roles: Vec<RoleView>,
    permissions: Vec<String>,
}

/// The calling account, its region, department, roles and permissions.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity",
    responses((status = 200, body = MeResponse), (status = 401, description = "unauthenticated", body = ErrorBody)),
    security(("bearer" = [])))]
async fn me(Caller(p): Caller) -> Json<MeResponse> {
    let mut permissions: Vec<String> = p.roles.iter().flat_map(|r| r.permissions.iter().cloned()).collect();
    permissions.sort();
    permissions.dedup();
    Json(MeResponse {
        id: p.account_id,
        username: p.username,
        display_name: p.display_name,
        kind: p.kind,
        region: p.region,
        department: p.department,
        roles: p
            .roles
            .into_iter()
            .map(|r| RoleView { code: r.code, name_zh: r.name_zh, name_en: r.name_en, platform_wide: r.platform_wide })
            .collect(),
        permissions,
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// At most this many (1–500, default 100).
    limit: Option<i64>,
    /// Find the one resident with this 18-digit ID number (looked up by blind index).
    #[param(pattern = "^[0-9]{17}[0-9Xx]$")]
    id_number: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordQuery {
    /// Why plain values are needed (for example `办理户籍迁移 YL-20261121-000123`). With a
    /// purpose, roles that policy allows see plain values, and the access is audited with it.
    #[param(min_length = 1, pattern = r"\S")]
    purpose: Option<String>,
}

/// Residents within the caller's jurisdiction (identifiers masked).
#[utoipa::path(get, path = "/api/v1/residents", tag = "identity", params(ListQuery),
    responses(
        (status = 200, body = Vec<ResidentView>),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "forbidden", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn residents(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ResidentRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<ResidentView>>, ApiError> {
    let now = Utc::now();
    if let Some(id_number) = q.id_number.as_deref() {
        return Ok(Json(vec![state.identity.people().resident_by_id_number(&cap, id_number, None, now).await?]));
    }
    Ok(Json(state.identity.people().residents(&cap, q.limit.unwrap_or(100), now).await?))
}

/// A resident's record (identifiers masked), within the caller's jurisdiction.
#[utoipa::path(get, path = "/api/v1/residents/{id}", tag = "identity", params(("id" = String, Path), RecordQuery),
    responses(
        (status = 200, body = ResidentView),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "forbidden, outside_jurisdiction, insufficient_clearance", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn resident(
    State(state): State<AppState>,
    Authorized(cap): Authorized<ResidentRead>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> Result<Json<ResidentView>, ApiError> {
    Ok(Json(state.identity.people().resident(&cap, &id, q.purpose.as_deref(), Utc::now()).await?))
}

/// An enterprise's record, within the caller's jurisdiction.
#[utoipa::path(get, path = "/api/v1/enterprises/{id}", tag = "identity", params(("id" = String, Path)),
    responses(
        (status = 200, body = EnterpriseView),
        (status = 401, description = "unauthenticated", body = ErrorBody),
        (status = 403, description = "forbidden, outside_jurisdiction", body = ErrorBody),
        (status = 404, description = "not_found", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn enterprise(
    State(state): State<AppState>,
    Authorized(cap): Authorized<EnterpriseRead>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<EnterpriseView>, ApiError> {
    Ok(Json(state.identity.people().enterprise(&cap, &id, Utc::now()).await?))
}

/// The regions within the caller's jurisdiction (materialized paths show the tree).
#[utoipa::path(get, path = "/api/v1/regions", tag = "identity",
    responses((status = 200, body = Vec<RegionRef>), (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = [])))]
async fn regions(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OrganisationRead>,
) -> Result<Json<Vec<RegionRef>>, ApiError> {
    Ok(Json(state.identity.organisation().regions(&cap).await?))
}

/// The departments within the caller's jurisdiction.
#[utoipa::path(get, path = "/api/v1/departments", tag = "identity",
    responses((status = 200, body = Vec<DepartmentView>), (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = [])))]
async fn departments(
    State(state): State<AppState>,
    Authorized(cap): Authorized<OrganisationRead>,
) -> Result<Json<Vec<DepartmentView>>, ApiError> {
    Ok(Json(state.identity.organisation().departments(&cap).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// `staff` or `system`.
    kind: String,
    /// Lower-case login name; for system clients `INSTANCE/CLASS/MEMBER/SUBSYSTEM`.
    username: String,
    display_name: String,
    department_code: Option<String>,
    region_code: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedAccountResponse {
    id: String,
    username: String,
    /// Shown once. Staff must change it at first sign-in; for system clients it is the secret.
    temporary_password: String,
}

/// Create a staff or system account with a generated password (roles are granted
/// separately, by a security administrator).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "identity", request_body = CreateAccountRequest,
    responses(
        (status = 201, body = CreatedAccountResponse),
        (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "not_found (department or region)", body = ErrorBody),
        (status = 409, description = "username_taken", body = ErrorBody),
        (status = 422, description = "invalid_field, invalid_body", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn create_account(
    State(state): State<AppState>,
    Authorized(cap): Authorized<AccountCreate>,
    ApiJson(body): ApiJson<CreateAccountRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let kind = match body.kind.as_str() {
        "staff" => AccountKind::Staff,
        "system" => AccountKind::System,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                "kind: must be staff or system",
            ));
        }
    };
    let new = NewAccount {
        kind: Some(kind),
        username: body.username,
        display_name: body.display_name,
        department_code: body.department_code,
        region_code: body.region_code,
        ..NewAccount::default()
    };
    let created = state.identity.accounts().create_account(&cap, new, Utc::now()).await?;
    let temporary_password = created.temporary_password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
    Ok((
        StatusCode::CREATED,
        Json(CreatedAccountResponse { id: created.id, username: created.username, temporary_password }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRoleRequest {
    role: String,
}

/// Grant a role. System admin, security admin and auditor are separate duties (三员分立):
/// an account holds at most one of them.
#[utoipa::path(post, path = "/api/v1/accounts/{id}/roles", tag = "identity", params(("id" = String, Path)), request_body = GrantRoleRequest,
    responses(
        (status = 201, description = "granted"), (status = 200, description = "already held"),
        (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody),
        (status = 404, description = "not_found (account or role)", body = ErrorBody),
        (status = 409, description = "duty_conflict", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn grant_role(
    State(state): State<AppState>,
    Authorized(cap): Authorized<RoleGrant>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<GrantRoleRequest>,
) -> Result<StatusCode, ApiError> {
    let granted = state.identity.accounts().grant_role(&cap, &id, &body.role, Utc::now()).await?;
    Ok(if granted { StatusCode::CREATED } else { StatusCode::OK })
}

/// Revoke a role.
#[utoipa::path(delete, path = "/api/v1/accounts/{id}/roles/{role}", tag = "identity",
    params(("id" = String, Path), ("role" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
async fn revoke_role(
    State(state): State<AppState>,
    Authorized(cap): Authorized<RoleGrant>,
    ApiPath((id, role)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.identity.accounts().revoke_role(&cap, &id, &role, Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events of this kind (sign_in, lockout, access, token_issued, …).
    kind: Option<String>,
    /// At most this many (1–1000, default 100), newest first.
    limit: Option<i64>,
}

/// The security event trail (auditors).
#[utoipa::path(get, path = "/api/v1/security-events", tag = "identity", params(EventQuery),
    responses((status = 200, body = Vec<SecurityEvent>), (status = 401, body = ErrorBody), (status = 403, description = "forbidden", body = ErrorBody)),
    security(("bearer" = [])))]
async fn security_events(
    State(state): State<AppState>,
    Authorized(cap): Authorized<SecurityEventRead>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<Vec<SecurityEvent>>, ApiError> {
    Ok(Json(state.identity.trail().security_events(&cap, q.kind.as_deref(), q.limit.unwrap_or(100)).await?))
}
