//! The codes clients receive with an error: one enum, its snake_case wire names derived.
//! Domain errors carry these codes; the HTTP layer maps each to a status. Stable: clients and
//! the web pages translate them.

use serde::Serialize;
use utoipa::ToSchema;

/// Every code a client can receive.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, strum::IntoStaticStr, strum::EnumString, strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
    RevisionOutdated,
    RecordChanged,
    /// The registry's department does not let this calling system use it.
    SystemNotServed,
    /// A one-time code that was right but already used (a replay, or a second tap).
    CodeReused,
    /// 政府信息公开: a repealed document is neither revised nor repealed again.
    DocumentRepealed,
    /// A request for information already answered.
    RequestAnswered,
    /// A request for information waits for the person's clarification.
    AwaitingClarification,
    /// A clarification sent when none was asked for.
    NotAwaitingClarification,
    /// A clarification is asked for once only.
    ClarificationAlreadyAsked,
    /// A deadline is extended once only.
    AlreadyExtended,
    /// Too late for this step: past its deadline.
    DeadlinePassed,
    /// A public-ledger record of that month or stage is published: a change is a correction.
    AlreadyPublished,
    /// 数据开放: rows of an uploaded file do not match the dataset's declared columns.
    RowsRejected,
    /// A de-identified dataset would let someone be singled out: a combination of its
    /// quasi-identifiers is shared by fewer rows than the k required.
    KAnonymityNotMet,
    /// Another dataset has that name.
    DatasetNameTaken,
    /// A conditional dataset (有条件开放) is read with an approved API key.
    AccessRequired,
    /// An API key that is unknown, refused or revoked.
    InvalidApiKey,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every code, in declaration order.
    pub fn all() -> &'static [ErrorCode] {
        <ErrorCode as strum::VariantArray>::VARIANTS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON name and the name the pages translate are the same string, and no two codes
    /// share one.
    #[test]
    fn serde_and_strum_agree() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::all() {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json.as_str(), Some(code.as_str()));
            assert_eq!(code.as_str().parse::<ErrorCode>().ok(), Some(*code));
        }
        assert_eq!(ErrorCode::OutsideJurisdiction.as_str(), "outside_jurisdiction");
    }
}
