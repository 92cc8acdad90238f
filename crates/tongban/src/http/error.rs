//! HTTP errors: one enum, one mapping to status and a stable snake_case code. Internal
//! causes are logged with the request id and never sent.

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::identity;

/// Every code a client can receive. Stable: clients and the web pages translate them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    MalformedJson,
    InvalidBody,
    InvalidField,
    UnsupportedMediaType,
    BodyTooLarge,
    NotFound,
    MethodNotAllowed,
    InvalidCredentials,
    MfaRequired,
    InvalidCode,
    MfaEnrolmentRequired,
    PasswordChangeRequired,
    Unauthenticated,
    Locked,
    Forbidden,
    OutsideJurisdiction,
    InsufficientClearance,
    CsrfFailed,
    Conflict,
    MfaAlreadyEnrolled,
    UsernameTaken,
    DutyConflict,
    RegionExists,
    DepartmentExists,
    IdNumberTaken,
    CreditCodeTaken,
    PasswordTooShort,
    PasswordTooLong,
    PasswordContainsUsername,
    PasswordTooCommon,
    RateLimited,
    Unavailable,
    Internal,
    FormInvalid,
    InvalidTransition,
    WrongAudience,
    NotOnline,
    NoRegion,
    SupplementAlreadyRequested,
    CaseChanged,
    NotInSupplement,
    AlreadyDecided,
    NotEligible,
    NotFinished,
    AlreadyRated,
    AlreadyAnswered,
    AlreadyRevoked,
    FileTooLarge,
    UnsupportedFileType,
    UploadRejected,
    InvalidMediatorClient,
    FileMissing,
    SlotUnavailable,
    SlotFull,
    AlreadyBooked,
    BookingSuspended,
    AppointmentClosed,
    AgreementNotYours,
    AgreementPending,
    AgreementRefused,
    AgreementRevoked,
    AgreementExpired,
    VerifyOnly,
    ConsentRequired,
    FieldNotGranted,
    RegistryExists,
    PolicyInUse,
    IndividualExists,
    AgreementInactive,
    RecordInvalid,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::MfaRequired => "mfa_required",
            ErrorCode::InvalidCode => "invalid_code",
            ErrorCode::MfaEnrolmentRequired => "mfa_enrolment_required",
            ErrorCode::PasswordChangeRequired => "password_change_required",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Locked => "locked",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::OutsideJurisdiction => "outside_jurisdiction",
            ErrorCode::InsufficientClearance => "insufficient_clearance",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::MfaAlreadyEnrolled => "mfa_already_enrolled",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::DutyConflict => "duty_conflict",
            ErrorCode::RegionExists => "region_exists",
            ErrorCode::DepartmentExists => "department_exists",
            ErrorCode::IdNumberTaken => "id_number_taken",
            ErrorCode::CreditCodeTaken => "credit_code_taken",
            ErrorCode::PasswordTooShort => "password_too_short",
            ErrorCode::PasswordTooLong => "password_too_long",
            ErrorCode::PasswordContainsUsername => "password_contains_username",
            ErrorCode::PasswordTooCommon => "password_too_common",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::FormInvalid => "form_invalid",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::WrongAudience => "wrong_audience",
            ErrorCode::NotOnline => "not_online",
            ErrorCode::NoRegion => "no_region",
            ErrorCode::SupplementAlreadyRequested => "supplement_already_requested",
            ErrorCode::CaseChanged => "case_changed",
            ErrorCode::NotInSupplement => "not_in_supplement",
            ErrorCode::AlreadyDecided => "already_decided",
            ErrorCode::NotEligible => "not_eligible",
            ErrorCode::NotFinished => "not_finished",
            ErrorCode::AlreadyRated => "already_rated",
            ErrorCode::AlreadyAnswered => "already_answered",
            ErrorCode::AlreadyRevoked => "already_revoked",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::UnsupportedFileType => "unsupported_file_type",
            ErrorCode::UploadRejected => "upload_rejected",
            ErrorCode::InvalidMediatorClient => "invalid_mediator_client",
            ErrorCode::FileMissing => "file_missing",
            ErrorCode::SlotUnavailable => "slot_unavailable",
            ErrorCode::SlotFull => "slot_full",
            ErrorCode::AlreadyBooked => "already_booked",
            ErrorCode::BookingSuspended => "booking_suspended",
            ErrorCode::AppointmentClosed => "appointment_closed",
            ErrorCode::AgreementNotYours => "agreement_not_yours",
            ErrorCode::AgreementPending => "agreement_pending",
            ErrorCode::AgreementRefused => "agreement_refused",
            ErrorCode::AgreementRevoked => "agreement_revoked",
            ErrorCode::AgreementExpired => "agreement_expired",
            ErrorCode::VerifyOnly => "verify_only",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::FieldNotGranted => "field_not_granted",
            ErrorCode::RegistryExists => "registry_exists",
            ErrorCode::PolicyInUse => "policy_in_use",
            ErrorCode::IndividualExists => "individual_exists",
            ErrorCode::AgreementInactive => "agreement_inactive",
            ErrorCode::RecordInvalid => "record_invalid",
        }
    }

    /// The code a bare status gets when nothing more specific is known (a 405 from the
    /// router, a 413 from the body limit).
    pub fn for_status(status: StatusCode) -> ErrorCode {
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

    fn from_str(code: &str) -> Option<ErrorCode> {
        ALL_CODES.iter().copied().find(|c| c.as_str() == code)
    }
}

pub const ALL_CODES: &[ErrorCode] = &[
    ErrorCode::BadRequest,
    ErrorCode::MalformedJson,
    ErrorCode::InvalidBody,
    ErrorCode::InvalidField,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::BodyTooLarge,
    ErrorCode::NotFound,
    ErrorCode::MethodNotAllowed,
    ErrorCode::InvalidCredentials,
    ErrorCode::MfaRequired,
    ErrorCode::InvalidCode,
    ErrorCode::MfaEnrolmentRequired,
    ErrorCode::PasswordChangeRequired,
    ErrorCode::Unauthenticated,
    ErrorCode::Locked,
    ErrorCode::Forbidden,
    ErrorCode::OutsideJurisdiction,
    ErrorCode::InsufficientClearance,
    ErrorCode::CsrfFailed,
    ErrorCode::Conflict,
    ErrorCode::MfaAlreadyEnrolled,
    ErrorCode::UsernameTaken,
    ErrorCode::DutyConflict,
    ErrorCode::RegionExists,
    ErrorCode::DepartmentExists,
    ErrorCode::IdNumberTaken,
    ErrorCode::CreditCodeTaken,
    ErrorCode::PasswordTooShort,
    ErrorCode::PasswordTooLong,
    ErrorCode::PasswordContainsUsername,
    ErrorCode::PasswordTooCommon,
    ErrorCode::RateLimited,
    ErrorCode::Unavailable,
    ErrorCode::Internal,
    ErrorCode::FormInvalid,
    ErrorCode::InvalidTransition,
    ErrorCode::WrongAudience,
    ErrorCode::NotOnline,
    ErrorCode::NoRegion,
    ErrorCode::SupplementAlreadyRequested,
    ErrorCode::CaseChanged,
    ErrorCode::NotInSupplement,
    ErrorCode::AlreadyDecided,
    ErrorCode::NotEligible,
    ErrorCode::NotFinished,
    ErrorCode::AlreadyRated,
    ErrorCode::AlreadyAnswered,
    ErrorCode::AlreadyRevoked,
    ErrorCode::FileTooLarge,
    ErrorCode::UnsupportedFileType,
    ErrorCode::UploadRejected,
    ErrorCode::InvalidMediatorClient,
    ErrorCode::FileMissing,
    ErrorCode::SlotUnavailable,
    ErrorCode::SlotFull,
    ErrorCode::AlreadyBooked,
    ErrorCode::BookingSuspended,
    ErrorCode::AppointmentClosed,
    ErrorCode::AgreementNotYours,
    ErrorCode::AgreementPending,
    ErrorCode::AgreementRefused,
    ErrorCode::AgreementRevoked,
    ErrorCode::AgreementExpired,
    ErrorCode::VerifyOnly,
    ErrorCode::ConsentRequired,
    ErrorCode::FieldNotGranted,
    ErrorCode::RegistryExists,
    ErrorCode::PolicyInUse,
    ErrorCode::IndividualExists,
    ErrorCode::AgreementInactive,
    ErrorCode::RecordInvalid,
];

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
            E::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::from_str(code).unwrap_or(ErrorCode::Conflict), message)
            }
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
            E::WeakPassword(v) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::from_str(v.code()).unwrap_or(ErrorCode::InvalidField),
                message,
            ),
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

impl From<crate::services::Error> for ApiError {
    fn from(e: crate::services::Error) -> ApiError {
        use crate::services::Error as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
            E::Form(errors) => {
                let list: Vec<String> = errors.iter().map(|f| format!("{}: {}", f.field, f.message_en)).collect();
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::FormInvalid, list.join("; "))
            }
            E::Conflict { code, message } => {
                let code = ErrorCode::from_str(code).unwrap_or(ErrorCode::Conflict);
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
                crate::services::workflow::WorkflowError::RoleNotAllowed(_) => {
                    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
                }
                _ => ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidTransition, message),
            },
            E::Storage(s) => identity::Error::Storage(s).into(),
            E::Internal(cause) => identity::Error::Internal(cause).into(),
        }
    }
}

impl From<crate::exchange::Error> for ApiError {
    fn from(e: crate::exchange::Error) -> ApiError {
        use crate::exchange::Error as E;
        let message = e.to_string();
        match e {
            E::NotFound(what) => ApiError::not_found(what),
            E::Invalid { .. } => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message),
            E::Record(rows) => {
                let list: Vec<String> = rows.iter().map(|r| format!("{}: {}", r.column, r.reason)).collect();
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::RecordInvalid, list.join("; "))
            }
            E::Refused { code, message } => {
                ApiError::new(StatusCode::FORBIDDEN, ErrorCode::from_str(code).unwrap_or(ErrorCode::Forbidden), message)
            }
            E::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, ErrorCode::from_str(code).unwrap_or(ErrorCode::Conflict), message)
            }
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
            _ => ErrorCode::for_status(r.status()),
        };
        ApiError::new(r.status(), code, r.body_text())
    }
}

impl From<FormRejection> for ApiError {
    fn from(r: FormRejection) -> ApiError {
        ApiError::new(r.status(), ErrorCode::for_status(r.status()), r.body_text())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_serialise_as_their_string() {
        let mut seen = std::collections::HashSet::new();
        for c in ALL_CODES {
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
            assert_eq!(ErrorCode::from_str(c.as_str()), Some(*c));
        }
    }

    #[test]
    fn password_policy_codes_exist() {
        for v in [
            identity::PolicyViolation::TooShort,
            identity::PolicyViolation::TooLong,
            identity::PolicyViolation::ContainsUsername,
            identity::PolicyViolation::Common,
        ] {
            assert!(ErrorCode::from_str(v.code()).is_some(), "{}", v.code());
        }
    }
}
