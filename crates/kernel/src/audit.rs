//! What the audit trail records: every action as a type, so that the code that writes an entry
//! and the code that reads it (the security monitor, 我的数据) cannot drift apart. The wire
//! name (snake_case) is what the ledger stores; renaming a variant's wire name changes what
//! new entries say, so the names are kept as they are.

/// An audited action. Transitions of a case are the one open family: their names come from
/// the workflow definitions (`application_<action>`, see `ledger::Entry::case_transition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Action {
    // identity: sign-in and sessions
    SignIn,
    SignOut,
    SignOutEverywhere,
    Lockout,
    SessionRevoked,
    TokenIssued,
    TokenRevoked,
    MfaEnrolled,
    RecoveryCodeUsed,
    PasswordChanged,
    NotificationEmailSet,
    NotificationEmailCleared,
    /// A check of role, jurisdiction or clearance that refused.
    Access,
    // identity: organisation and accounts
    AccountCreated,
    RegionCreated,
    DepartmentCreated,
    RoleGranted,
    RoleRevoked,
    ConfigurationChanged,
    // identity: personal data
    ResidentRead,
    ResidentUnmasked,
    ResidentListed,
    EnterpriseRead,
    CorrectionRequested,
    CorrectionRead,
    OwnDataViewed,
    // protect
    DataKeyCreated,
    DataKeyRetired,
    BackupRestored,
    /// A restore set a log back behind checkpoints already signed, and the operator accepted it.
    LedgerForkAccepted,
    // services
    ApplicationRead,
    ApplicationRated,
    RatingAnswered,
    AssistCodeSent,
    TaskClaimed,
    TaskTransferred,
    TaskEscalated,
    CertificateIssued,
    CertificateRevoked,
    AppointmentCheckedIn,
    AppointmentNoShow,
    RegistrationFileSubmitted,
    RegistrationFileUpdated,
    RegistrationTaskCompleted,
    // exchange
    RegistryPublished,
    RegistryImported,
    RegistryFixtureLoaded,
    RegistrySystemsSet,
    RegistryRecordRead,
    /// A registry's records were read for a de-identified open dataset (数据开放).
    RegistryReleased,
    RegistryRecordWritten,
    RegistryRecordChecked,
    RegistryRecordDeleted,
    RegistryDatabaseCreated,
    RegistryDatabaseModified,
    RegistryDatabaseDeleted,
    SharingRequested,
    SharingGranted,
    SharingRefused,
    SharingRevoked,
    ExchangeRead,
    ExchangeVerify,
    ExchangeRefused,
    ConsentGranted,
    ConsentWithdrawn,
    ConsentVerified,
    ConsentWebhookSaved,
    ConsentWebhookDeleted,
    // voice (12345)
    VoiceRequestSubmitted,
    VoiceRequestDispatched,
    VoiceRequestSigned,
    VoiceRequestSentBack,
    VoiceRequestAnswered,
    VoiceRequestRated,
    /// A department read a hotline caller's name and mobile (masked, or plain for a purpose).
    VoiceCallerRead,
    /// 督办: a request's step is due soon or overdue, and its department was told.
    VoiceRequestSupervised,
    /// The person did not rate the answer in time: closed unrated.
    VoiceRequestLapsed,
    /// 延期: the handling department asked for more working days.
    VoiceExtensionAsked,
    /// A dispatcher granted or refused an extension.
    VoiceExtensionDecided,
    /// A dispatcher merged a request into an earlier one about the same thing.
    VoiceRequestMerged,
    /// A region's routing table was changed: which department handles a category there.
    VoiceRouteSet,
    // openness (政府信息公开): publications go on the `public` log, requests on the audit trail
    /// A department published a document of its own accord (主动公开).
    DisclosurePublished,
    /// A published document was revised; the earlier text stays in its history.
    DisclosureRevised,
    /// A published document was repealed (废止).
    DisclosureRepealed,
    /// A department set its 政府信息公开指南.
    DisclosureGuideSet,
    /// A person asked a department for information (依申请公开).
    DisclosureRequested,
    /// A department asked the person to clarify a request, or the person did.
    DisclosureClarification,
    /// A department extended a request's deadline.
    DisclosureExtended,
    /// A department answered a request.
    DisclosureAnswered,
    /// A department entered the annual report's figures the platform cannot know.
    DisclosureReportInputSet,
    /// The department was told a request's deadline is near, or past (督办).
    DisclosureSupervised,
    /// A community published a month's income and spending (社区财务公开).
    CommunityFinancePublished,
    /// A public-resource transaction's notice, bid opening, award or contract was published.
    PublicTransactionPublished,
    /// A dataset, or a new version of it, was opened (数据开放).
    OpenDatasetPublished,
    /// An application for a conditional dataset was approved, refused or revoked.
    OpenDataAccessDecided,
    /// A 数据需求 was answered.
    OpenDataRequestAnswered,
    // insight
    AlertRaised,
    /// The assessment office put a new indicator system in force.
    AssessmentPlanSet,
    AlertAcknowledged,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every action, in declaration order.
    pub fn all() -> &'static [Action] {
        <Action as strum::VariantArray>::VARIANTS
    }
}

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    /// Refused by a check (authorization, agreement, consent).
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for a in Action::all() {
            assert!(seen.insert(a.as_str()), "{} twice", a.as_str());
            assert_eq!(a.as_str().parse::<Action>().ok(), Some(*a));
            // `application_<action>` is the case transitions' family: a fixed action there
            // would be read as a transition, except the two that name no workflow action.
            let fixed = matches!(a, Action::ApplicationRead | Action::ApplicationRated);
            assert!(fixed || !a.as_str().starts_with("application_"), "{}", a.as_str());
        }
        assert_eq!(Action::SignOutEverywhere.as_str(), "sign_out_everywhere");
        assert_eq!(Outcome::Denied.as_str(), "denied");
    }
}
