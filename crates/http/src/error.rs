//! HTTP errors: one enum, one mapping to status and a stable snake_case code. Internal
//! causes are logged with the request id and never sent.

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

pub use kernel::error::ErrorCode;

/// The code a bare status gets when nothing more specific is known (a 405 from the
/// router, a 413 from the body limit).
pub fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        401 => ErrorCode::Unauthenticated,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::BodyTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        422 => ErrorCode::InvalidBody,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        s if s >= 500 => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub request_id: String,
}

/// An error on its way to the client. The body is written by the error-rendering
/// middleware, which knows the request id and whether the client wants JSON or a page.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None }
    }

    /// Bad input as 400 rather than 422, for the building blocks whose clients expect it
    /// (GovStack).
    pub fn unprocessable_as_bad_request(mut self) -> ApiError {
        if self.status == StatusCode::UNPROCESSABLE_ENTITY {
            self.status = StatusCode::BAD_REQUEST;
        }
        self
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn internal() -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; quote the request id when reporting it",
        )
    }

    pub fn unavailable() -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, "the service is temporarily unavailable")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl From<identity::Error> for ApiError {
    fn from(e: identity::Error) -> ApiError {
        use identity::Error as E;
        let message = e.to_string();
        match e {
            E::InvalidCredentials => ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials, message),
            E::MfaRequired => ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::MfaRequired, message),
            E::InvalidCode => ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidCode, message),
            E::CodeReused => ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::CodeReused, message),
            E::MfaEnrolmentRequired => ApiError::new(StatusCode::FORBIDDEN, ErrorCode::MfaEnrolmentRequired, message),
            E::PasswordChangeRequired => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::PasswordChangeRequired, message)
            }
            E::Unauthenticated => ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, message),
            E::Locked { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::Locked, message)
            },
            E::Denied(d) => d.into(),
            E::NotFound(what) => ApiError::not_found(what),
            E::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
            E::WeakPassword(v) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, v.code(), message),
            // Text PostgreSQL cannot hold (a NUL character, or `\u0000` in JSON) came from the
            // request: bad input, not a fault of the server.
            E::Storage(sqlx::Error::Database(db)) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
                ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, "the request holds a NUL character")
            }
            E::Storage(cause) => {
                tracing::error!(error = %cause, "storage error");
                match cause {
                    sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => ApiError::unavailable(),
                    _ => ApiError::internal(),
                }
            }
            E::Internal(cause) => {
                tracing::error!(error = %cause, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl From<voice::Error> for ApiError {
    fn from(e: voice::Error) -> ApiError {
        use voice::Error as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
            E::Denied(d) => d.into(),
            E::Workflow(w) => services::Error::Workflow(w).into(),
            E::Storage(s) => identity::Error::Storage(s).into(),
            E::Internal(cause) => identity::Error::Internal(cause).into(),
            E::Uploads(u) => u.into(),
        }
    }
}

impl From<openness::Error> for ApiError {
    fn from(e: openness::Error) -> ApiError {
        use openness::Error as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
            E::Conflict { code, .. } => ApiError::new(StatusCode::CONFLICT, code, message),
            E::Rejected { code, .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message),
            E::Denied(d) => d.into(),
            E::AccessRequired => ApiError::new(StatusCode::FORBIDDEN, ErrorCode::AccessRequired, message),
            E::InvalidApiKey => ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::InvalidApiKey, message),
            E::RateLimited { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message)
            },
            E::Storage(s) => identity::Error::Storage(s).into(),
            E::Internal(cause) => identity::Error::Internal(cause).into(),
        }
    }
}

impl From<insight::Error> for ApiError {
    fn from(e: insight::Error) -> ApiError {
        use insight::Error as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
            E::Denied(d) => d.into(),
            E::Storage(s) => identity::Error::Storage(s).into(),
            E::Internal(cause) => identity::Error::Internal(cause).into(),
        }
    }
}

impl From<services::Error> for ApiError {
    fn from(e: services::Error) -> ApiError {
        use services::Error as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
            E::Form(errors) => {
                let list: Vec<String> = errors.iter().map(|f| format!("{}: {}", f.field, f.message_en)).collect();
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::FormInvalid, list.join("; "))
            }
            E::Conflict { code, message } => {
                let status = match code {
                    ErrorCode::FileTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::UnsupportedFileType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    ErrorCode::InvalidCode => StatusCode::UNPROCESSABLE_ENTITY,
                    _ => StatusCode::CONFLICT,
                };
                ApiError::new(status, code, message)
            }
            E::Denied(d) => d.into(),
            E::Workflow(w) => match w {
                services::workflow::WorkflowError::RoleNotAllowed(_) => {
                    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
                }
                _ => ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidTransition, message),
            },
            E::Storage(s) => identity::Error::Storage(s).into(),
            E::Internal(cause) => identity::Error::Internal(cause).into(),
        }
    }
}

impl From<exchange::Error> for ApiError {
    fn from(e: exchange::Error) -> ApiError {
        use exchange::Error as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
            E::Record(rows) => {
                let list: Vec<String> = rows.iter().map(|r| format!("{}: {}", r.column, r.reason)).collect();
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::RecordInvalid, list.join("; "))
            }
            E::Refused { code, message } => ApiError::new(StatusCode::FORBIDDEN, code, message),
            E::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            E::Denied(d) => d.into(),
            E::Unauthenticated => ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, message),
            E::RateLimited => ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message),
            E::Storage(s) => identity::Error::Storage(s).into(),
            E::Internal(cause) => identity::Error::Internal(cause).into(),
        }
    }
}

impl From<identity::Denial> for ApiError {
    fn from(d: identity::Denial) -> ApiError {
        let code = match d {
            identity::Denial::Forbidden(_) => ErrorCode::Forbidden,
            identity::Denial::OutsideJurisdiction => ErrorCode::OutsideJurisdiction,
            identity::Denial::InsufficientClearance => ErrorCode::InsufficientClearance,
            identity::Denial::OwnAccount | identity::Denial::MaskedForRole => ErrorCode::Forbidden,
        };
        ApiError::new(StatusCode::FORBIDDEN, code, d.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        let code = match &r {
            JsonRejection::JsonSyntaxError(_) => ErrorCode::MalformedJson,
            JsonRejection::JsonDataError(_) => ErrorCode::InvalidBody,
            JsonRejection::MissingJsonContentType(_) => ErrorCode::UnsupportedMediaType,
            _ => code_for_status(r.status()),
        };
        ApiError::new(r.status(), code, r.body_text())
    }
}

impl From<FormRejection> for ApiError {
    fn from(r: FormRejection) -> ApiError {
        ApiError::new(r.status(), code_for_status(r.status()), r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, r.body_text())
    }
}
