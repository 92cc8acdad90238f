//! The open-data catalogue as DCAT-AP 3 — Turtle, RDF/XML or JSON-LD — at `/catalog.ttl`,
//! `/catalog.rdf`, `/catalog.jsonld` (and `/catalog` by the `Accept` header), and each
//! dataset at `/data/datasets/{name}/dcat.ttl|rdf|jsonld`. It conforms to the DCAT-AP 3
//! SHACL shapes published by SEMIC (checked in CI): every object a range constrains is typed
//! (foaf:Agent, dct:LicenseDocument, dct:Frequency, …), controlled values are the EU
//! vocabularies' (file types, frequencies, access rights, languages). docs/open-data.md maps
//! the Chinese metadata to DCAT properties.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use oxrdf::vocab::{rdf, xsd};
use oxrdf::{Literal, NamedNode, Term, Triple};
use oxrdfio::{JsonLdProfileSet, RdfFormat, RdfSerializer};

use super::{DISTRIBUTIONS, site_origin};
use crate::AppState;
use crate::error::ApiError;
use crate::i18n::{Lang, text};
use openness::data::{DatasetSummary, Frequency, OpenLevel};

const DCAT: &str = "http://www.w3.org/ns/dcat#";
const DCT: &str = "http://purl.org/dc/terms/";
const FOAF: &str = "http://xmlns.com/foaf/0.1/";
const SKOS: &str = "http://www.w3.org/2004/02/skos/core#";
const VCARD: &str = "http://www.w3.org/2006/vcard/ns#";
const EU: &str = "http://publications.europa.eu/resource/authority/";

pub fn router() -> Router<AppState> {
    Router::new().route("/catalog", get(negotiated)).route("/catalog.{ext}", get(by_extension))
}

/// The RDF serialisations served, by extension and media type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Syntax {
    Turtle,
    RdfXml,
    JsonLd,
}

impl Syntax {
    pub fn from_extension(ext: &str) -> Option<Syntax> {
        match ext {
            "ttl" => Some(Syntax::Turtle),
            "rdf" => Some(Syntax::RdfXml),
            "jsonld" => Some(Syntax::JsonLd),
            _ => None,
        }
    }

    /// The syntax an `Accept` header asks for first, if it asks for RDF at all.
    pub fn from_accept(headers: &HeaderMap) -> Option<Syntax> {
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok())?;
        accept.split(',').map(|part| part.split(';').next().unwrap_or("").trim()).find_map(|media| match media {
            "text/turtle" | "application/x-turtle" => Some(Syntax::Turtle),
            "application/rdf+xml" => Some(Syntax::RdfXml),
            "application/ld+json" => Some(Syntax::JsonLd),
            _ => None,
        })
    }

    fn media_type(self) -> &'static str {
        match self {
            Syntax::Turtle => "text/turtle; charset=utf-8",
            Syntax::RdfXml => "application/rdf+xml; charset=utf-8",
            Syntax::JsonLd => "application/ld+json",
        }
    }

    fn format(self) -> RdfFormat {
        match self {
            Syntax::Turtle => RdfFormat::Turtle,
            Syntax::RdfXml => RdfFormat::RdfXml,
            Syntax::JsonLd => RdfFormat::JsonLd { profile: JsonLdProfileSet::empty() },
        }
    }
}

async fn negotiated(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let syntax = Syntax::from_accept(&headers).unwrap_or(Syntax::Turtle);
    catalog(&state, &headers, syntax).await
}

async fn by_extension(
    State(state): State<AppState>,
    Path(ext): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let syntax = Syntax::from_extension(&ext).ok_or_else(|| ApiError::not_found("catalog format"))?;
    catalog(&state, &headers, syntax).await
}

async fn catalog(state: &AppState, headers: &HeaderMap, syntax: Syntax) -> Result<Response, ApiError> {
    let origin = site_origin(headers, state.secure_cookies);
    let datasets = state.openness.catalogue().all().await?;
    let mut g = Graph::new(&origin);
    g.catalog(&datasets);
    for d in &datasets {
        g.dataset(d);
    }
    g.respond(syntax)
}

/// One dataset's description, for `/data/datasets/{name}/dcat.*`.
pub async fn dataset(state: &AppState, headers: &HeaderMap, name: &str, syntax: Syntax) -> Result<Response, ApiError> {
    let origin = site_origin(headers, state.secure_cookies);
    let d = state.openness.catalogue().dataset(name).await?;
    let mut g = Graph::new(&origin);
    g.dataset(&d.summary);
    g.respond(syntax)
}

fn iri(s: impl Into<String>) -> NamedNode {
    NamedNode::new_unchecked(s)
}

fn term(base: &str, local: &str) -> NamedNode {
    iri(format!("{base}{local}"))
}

fn zh(text: &str) -> Term {
    Literal::new_language_tagged_literal_unchecked(text, "zh").into()
}

fn date_time(t: chrono::DateTime<chrono::Utc>) -> Term {
    Literal::new_typed_literal(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true), xsd::DATE_TIME).into()
}

/// The triples of a response, written into one of the syntaxes.
struct Graph {
    origin: String,
    triples: Vec<Triple>,
}

impl Graph {
    fn new(origin: &str) -> Graph {
        Graph { origin: origin.to_string(), triples: Vec::new() }
    }

    fn add(&mut self, s: &NamedNode, p: NamedNode, o: impl Into<Term>) {
        self.triples.push(Triple::new(s.clone(), p, o.into()));
    }

    fn typed(&mut self, s: &NamedNode, class: NamedNode) {
        self.add(s, rdf::TYPE.into_owned(), class);
    }

    fn catalog(&mut self, datasets: &[DatasetSummary]) {
        let c = iri(format!("{}/catalog", self.origin));
        self.typed(&c, term(DCAT, "Catalog"));
        self.add(&c, term(DCT, "title"), zh("通办 · 政府数据开放目录"));
        self.add(
            &c,
            term(DCT, "description"),
            zh("各部门开放的政府数据集：登记数据经脱敏并满足 k-匿名后开放，文件数据经字段校验后开放。"),
        );
        let platform = iri(format!("{}/data", self.origin));
        self.typed(&platform, term(FOAF, "Agent"));
        self.add(&platform, term(FOAF, "name"), zh("通办政府数据开放平台"));
        self.add(&c, term(DCT, "publisher"), platform);
        let home = iri(format!("{}/data", self.origin));
        self.typed(&home, term(FOAF, "Document"));
        self.add(&c, term(FOAF, "homepage"), home);
        self.language(&c);
        let scheme = iri(format!("{}/data/themes", self.origin));
        self.typed(&scheme, term(SKOS, "ConceptScheme"));
        self.add(&scheme, term(DCT, "title"), zh("主题分类"));
        self.add(&c, term(DCAT, "themeTaxonomy"), scheme);
        if let Some(latest) = datasets.iter().map(|d| d.updated_at).max() {
            self.add(&c, term(DCT, "modified"), date_time(latest));
        }
        for d in datasets {
            self.add(&c, term(DCAT, "dataset"), self.dataset_iri(d));
        }
    }

    /// The dataset itself: its page's address with a fragment, so that the page (a
    /// foaf:Document) and the dataset stay two resources.
    fn dataset_iri(&self, d: &DatasetSummary) -> NamedNode {
        iri(format!("{}/data/datasets/{}#dataset", self.origin, d.name))
    }

    fn language(&mut self, s: &NamedNode) {
        let chinese = term(EU, "language/ZHO");
        self.typed(&chinese, term(DCT, "LinguisticSystem"));
        self.add(s, term(DCT, "language"), chinese);
    }

    fn dataset(&mut self, d: &DatasetSummary) {
        let ds = self.dataset_iri(d);
        self.typed(&ds, term(DCAT, "Dataset"));
        self.add(&ds, term(DCT, "identifier"), Literal::new_simple_literal(&d.id));
        self.add(&ds, term(DCT, "title"), zh(&d.title));
        self.add(&ds, term(DCT, "description"), zh(&d.description));
        for t in &d.tags {
            self.add(&ds, term(DCAT, "keyword"), zh(t));
        }
        self.add(&ds, term(DCT, "issued"), date_time(d.published_at));
        self.add(&ds, term(DCT, "modified"), date_time(d.updated_at));
        self.add(&ds, term(DCAT, "version"), Literal::new_simple_literal(d.version.to_string()));
        self.language(&ds);
        let page = iri(format!("{}/data/datasets/{}", self.origin, d.name));
        self.typed(&page, term(FOAF, "Document"));
        self.add(&ds, term(DCAT, "landingPage"), page);

        let publisher = iri(format!("{}/open/departments/{}", self.origin, d.department_code));
        self.typed(&publisher, term(FOAF, "Agent"));
        self.add(&publisher, term(FOAF, "name"), zh(&d.department_name));
        self.add(&ds, term(DCT, "publisher"), publisher.clone());
        let contact = iri(format!("{}/open/departments/{}#contact", self.origin, d.department_code));
        self.typed(&contact, term(VCARD, "Kind"));
        self.typed(&contact, term(VCARD, "Organization"));
        self.add(&contact, term(VCARD, "fn"), zh(&d.department_name));
        self.add(&contact, term(VCARD, "hasURL"), publisher);
        self.add(&ds, term(DCAT, "contactPoint"), contact);

        let theme = iri(format!("{}/data/themes/{}", self.origin, d.theme.as_str()));
        self.typed(&theme, term(SKOS, "Concept"));
        self.add(&theme, term(SKOS, "prefLabel"), zh(text(Lang::Zh, &format!("open.theme.{}", d.theme.as_str()))));
        self.add(&theme, term(SKOS, "inScheme"), iri(format!("{}/data/themes", self.origin)));
        self.add(&ds, term(DCAT, "theme"), theme);

        let frequency = term(EU, frequency_code(d.frequency));
        self.typed(&frequency, term(DCT, "Frequency"));
        self.add(&ds, term(DCT, "accrualPeriodicity"), frequency);
        let rights = term(
            EU,
            match d.open_level {
                OpenLevel::Unconditional => "access-right/PUBLIC",
                OpenLevel::Conditional => "access-right/RESTRICTED",
            },
        );
        self.typed(&rights, term(DCT, "RightsStatement"));
        self.add(&ds, term(DCT, "accessRights"), rights);

        let licence = iri(d.licence.url());
        self.typed(&licence, term(DCT, "LicenseDocument"));
        for dist in DISTRIBUTIONS {
            let di = iri(format!("{}/data/datasets/{}#{}", self.origin, d.name, dist.suffix));
            self.typed(&di, term(DCAT, "Distribution"));
            self.add(&ds, term(DCAT, "distribution"), di.clone());
            self.add(&di, term(DCT, "title"), zh(&format!("{}（{}）", d.title, dist.format)));
            self.add(&di, term(DCT, "description"), zh(dist.description));
            let url = iri(format!("{}/data/datasets/{}/{}", self.origin, d.name, dist.file));
            self.add(&di, term(DCAT, "accessURL"), url.clone());
            self.add(&di, term(DCAT, "downloadURL"), url);
            let format = term(EU, &format!("file-type/{}", dist.format));
            self.typed(&format, term(DCT, "MediaTypeOrExtent"));
            self.add(&di, term(DCT, "format"), format);
            let media = iri(format!("https://www.iana.org/assignments/media-types/{}", dist.media_type));
            self.typed(&media, term(DCT, "MediaType"));
            self.add(&di, term(DCAT, "mediaType"), media);
            self.add(&di, term(DCT, "license"), licence.clone());
            self.add(&di, term(DCT, "modified"), date_time(d.updated_at));
        }
    }

    fn respond(mut self, syntax: Syntax) -> Result<Response, ApiError> {
        // A node described twice (the publisher of two datasets) is written once, and each
        // subject's statements together.
        let mut seen = std::collections::HashSet::new();
        self.triples.retain(|t| seen.insert(t.clone()));
        self.triples.sort_by_cached_key(|t| t.subject.to_string());
        let mut serializer = RdfSerializer::from_format(syntax.format());
        for (prefix, ns) in [("dcat", DCAT), ("dct", DCT), ("foaf", FOAF), ("skos", SKOS), ("vcard", VCARD)] {
            serializer = serializer.with_prefix(prefix, ns).map_err(|e| {
                tracing::error!(error = %e, "a DCAT prefix does not parse");
                ApiError::internal()
            })?;
        }
        let mut writer = serializer.for_writer(Vec::new());
        for t in &self.triples {
            writer.serialize_triple(t).map_err(|e| {
                tracing::error!(error = %e, "a DCAT triple did not serialise");
                ApiError::internal()
            })?;
        }
        let bytes = writer.finish().map_err(|e| {
            tracing::error!(error = %e, "the DCAT catalogue did not serialise");
            ApiError::internal()
        })?;
        let mut r = (StatusCode::OK, bytes).into_response();
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(syntax.media_type()));
        r.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept"));
        r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        Ok(r)
    }
}

/// The EU frequency vocabulary's code.
fn frequency_code(f: Frequency) -> &'static str {
    match f {
        Frequency::Daily => "frequency/DAILY",
        Frequency::Weekly => "frequency/WEEKLY",
        Frequency::Monthly => "frequency/MONTHLY",
        Frequency::Quarterly => "frequency/QUARTERLY",
        Frequency::Yearly => "frequency/ANNUAL",
        Frequency::Irregular => "frequency/IRREG",
    }
}
