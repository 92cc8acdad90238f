//! 数据开放: datasets a department opens to society. A dataset comes from a registry —
//! de-identified by rules and held to k-anonymity — or from an uploaded file checked against
//! declared columns. Each version keeps its rows and is an entry on the `public` ledger with
//! the SHA-256 of its CSV. 无条件开放 datasets are read by anyone; 有条件开放 ones with an
//! API key granted on an approved application, under a rate limit. Views, downloads and API
//! calls are counted per day, and people ask for datasets they miss (数据需求).

mod access;
pub(crate) mod catalogue;
pub mod deidentify;
mod demands;
pub mod files;
mod publishing;
mod repo;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use access::{AccessApplication, DEFAULT_CALLS_PER_MINUTE, DataAccess, IssuedKey, KeyUse};
pub use catalogue::{
    DataCatalogue, DatasetPage, DatasetQuery, DatasetSort, DownloadFormat, Facets, MAX_PAGE_ROWS, RowPage, RowQuery,
};
pub use demands::{DataDemand, DataDemands};
pub use publishing::{DataPublishing, DatasetSpec, Deidentification, RegistrySource};

use crate::Theme;

kernel::vocabulary! {
    /// 开放属性: who may read a dataset.
    #[schema(as = OpenDataOpenLevel)]
    pub enum OpenLevel {
        /// 无条件开放: anyone, without an account.
        Unconditional,
        /// 有条件开放: on an approved application, with an API key.
        Conditional,
    }
}

kernel::vocabulary! {
    /// 更新频率
    #[schema(as = OpenDataFrequency)]
    pub enum Frequency {
        Daily,
        Weekly,
        Monthly,
        Quarterly,
        Yearly,
        Irregular,
    }
}

impl Frequency {
    /// How long until a registry dataset is refreshed; none for irregular ones.
    pub fn period(self) -> Option<chrono::Duration> {
        let days = match self {
            Frequency::Daily => 1,
            Frequency::Weekly => 7,
            Frequency::Monthly => 30,
            Frequency::Quarterly => 91,
            Frequency::Yearly => 365,
            Frequency::Irregular => return None,
        };
        Some(chrono::Duration::days(days))
    }
}

kernel::vocabulary! {
    /// The licence readers reuse a dataset under.
    #[schema(as = OpenDataLicence)]
    pub enum Licence {
        /// Creative Commons Attribution 4.0: reuse with credit to the department.
        Attribution,
        /// CC0 1.0: no conditions.
        PublicDomain,
    }
}

impl Licence {
    /// The licence's identifier in CKAN's licence list.
    pub fn ckan_id(self) -> &'static str {
        match self {
            Licence::Attribution => "cc-by",
            Licence::PublicDomain => "cc-zero",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Licence::Attribution => "Creative Commons Attribution 4.0",
            Licence::PublicDomain => "Creative Commons CCZero 1.0",
        }
    }

    pub fn url(self) -> &'static str {
        match self {
            Licence::Attribution => "https://creativecommons.org/licenses/by/4.0/",
            Licence::PublicDomain => "https://creativecommons.org/publicdomain/zero/1.0/",
        }
    }
}

kernel::vocabulary! {
    /// Where a dataset's rows come from.
    #[schema(as = OpenDataDataSource)]
    pub enum DataSource {
        /// An uploaded CSV, XLSX or JSON file.
        File,
        /// A registry, de-identified.
        Registry,
    }
}

kernel::vocabulary! {
    /// The type of a column's values.
    #[schema(as = OpenDataColumnType)]
    pub enum ColumnType {
        Text,
        Integer,
        Number,
        /// YYYY-MM-DD
        Date,
        /// YYYY-MM
        Month,
        Boolean,
        /// One of the column's codes.
        Code,
    }
}

kernel::vocabulary! {
    /// Where an application for a conditional dataset stands.
    #[schema(as = OpenDataAccessState)]
    pub enum AccessState {
        Pending,
        Approved,
        Refused,
        Revoked,
    }
}

kernel::vocabulary! {
    /// Where a 数据需求 stands.
    #[schema(as = OpenDataDemandState)]
    pub enum DemandState {
        Open,
        Answered,
    }
}

/// A column of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Column {
    /// Lower-case letters, digits and _: the key in rows and the CSV header.
    pub name: String,
    /// What readers see.
    pub title: String,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    #[serde(default)]
    pub required: bool,
    /// The codes of a coded column.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
}

/// A dataset as the catalogue lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatasetSummary {
    pub id: String,
    /// The dataset's name in URLs.
    pub name: String,
    pub title: String,
    pub description: String,
    pub department_code: String,
    pub department_name: String,
    pub theme: Theme,
    pub open_level: OpenLevel,
    pub frequency: Frequency,
    pub licence: Licence,
    pub tags: Vec<String>,
    pub source: DataSource,
    pub version: i64,
    pub row_count: i64,
    /// The k a registry dataset reached.
    pub k_reached: Option<i64>,
    pub published_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One version of a dataset.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DatasetVersion {
    pub version: i64,
    pub row_count: i64,
    pub k_reached: Option<i64>,
    /// SHA-256 (hex) of the version's CSV as downloaded, which its ledger entry carries.
    pub sha256: String,
    pub ledger_index: i64,
    pub note: Option<String>,
    pub published_at: DateTime<Utc>,
}

/// Views, downloads and API calls.
#[derive(Debug, Clone, Copy, Default, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub views: i64,
    pub downloads: i64,
    pub api_calls: i64,
}

/// A dataset with its columns, how it was made, its versions and usage.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Dataset {
    #[serde(flatten)]
    pub summary: DatasetSummary,
    pub columns: Vec<Column>,
    /// For a registry dataset: the registry, the rules applied and the k required.
    pub registry: Option<String>,
    pub rules: Option<Vec<deidentify::ColumnRule>>,
    pub k_required: Option<i64>,
    /// Newest first.
    pub versions: Vec<DatasetVersion>,
    pub usage: Usage,
    pub next_refresh_at: Option<DateTime<Utc>>,
}

/// What a reader did with a dataset, counted per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseKind {
    View,
    Download,
    ApiCall,
}

/// Who reads rows: anyone, or a holder of an API key (required for conditional datasets).
#[derive(Debug, Clone, Copy)]
pub enum Reader<'a> {
    Anyone,
    Key(&'a str),
}
