//! Full-text search over published documents: titles, numbers and bodies segmented with
//! jieba into an in-memory tantivy index, rebuilt when the stored documents change (a city's
//! disclosures number in the thousands; building takes well under a second).

use std::collections::HashMap;

use tantivy::collector::TopDocs;
use tantivy::query::QueryParser;
use tantivy::schema::{Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, ReloadPolicy, TantivyDocument, doc};

use super::DocumentSummary;

/// The stored state an index was built from: how many documents, their versions summed,
/// and the last change.
pub type Generation = (i64, i64, i64);

/// The most hits a query ranks before filters apply.
const MAX_HITS: usize = 2_000;

pub struct DocumentIndex {
    /// Segments a query as the index segmented the text.
    jieba: TextAnalyzer,
    reader: IndexReader,
    parser: QueryParser,
    id: Field,
    /// Newest publication first.
    documents: Vec<DocumentSummary>,
    position: HashMap<String, usize>,
}

impl DocumentIndex {
    /// `documents` with their bodies, newest publication first.
    pub fn build(documents: Vec<(DocumentSummary, String)>) -> Result<DocumentIndex, tantivy::TantivyError> {
        let mut sb = Schema::builder();
        let zh = TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("jieba")
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        );
        let id = sb.add_text_field("id", STRING | STORED);
        let title = sb.add_text_field("title", zh.clone());
        let body = sb.add_text_field("body", zh);
        let number = sb.add_text_field("number", STRING);
        let index = Index::create_in_ram(sb.build());
        let jieba = TextAnalyzer::from(tantivy_jieba::JiebaTokenizer::new());
        index.tokenizers().register("jieba", jieba.clone());
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000)?;
        let mut summaries = Vec::with_capacity(documents.len());
        let mut position = HashMap::with_capacity(documents.len());
        for (s, text) in documents {
            let mut d = doc!(id => s.id.as_str(), title => s.title.as_str(), body => text);
            if let Some(n) = &s.document_number {
                d.add_text(number, n);
            }
            writer.add_document(d)?;
            position.insert(s.id.clone(), summaries.len());
            summaries.push(s);
        }
        writer.commit()?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let mut parser = QueryParser::for_index(&index, vec![title, body, number]);
        parser.set_field_boost(title, 4.0);
        Ok(DocumentIndex { jieba, reader, parser, id, documents: summaries, position })
    }

    /// The documents `query` finds, best match first; all of them, newest first, for an empty
    /// query.
    pub fn find(&self, query: &str) -> Vec<&DocumentSummary> {
        let query = query.trim();
        if query.is_empty() {
            return self.documents.iter().collect();
        }
        // The words of the query, each a term of its own: the parser would read 养老认证 as
        // the phrase 养老 认证 and miss 养老待遇资格认证. Query syntax typed by people goes
        // with the punctuation.
        let mut words = Vec::new();
        let mut analyzer = self.jieba.clone();
        let mut tokens = analyzer.token_stream(query);
        while tokens.advance() {
            let word = tokens.token().text.trim();
            if word.chars().any(char::is_alphanumeric) {
                words.push(word.chars().filter(|c| c.is_alphanumeric()).collect::<String>());
            }
        }
        let (parsed, _) = self.parser.parse_query_lenient(&words.join(" "));
        let searcher = self.reader.searcher();
        let hits = match searcher.search(&parsed, &TopDocs::with_limit(MAX_HITS).order_by_score()) {
            Ok(hits) => hits,
            Err(e) => {
                // The index is in memory: a failure is a fault to log, not the reader's.
                tracing::error!(error = %e, "the disclosure search index failed a query");
                return Vec::new();
            }
        };
        hits.into_iter()
            .filter_map(|(_, address)| {
                let d = searcher.doc::<TantivyDocument>(address).ok()?;
                let id = d.get_first(self.id)?.as_str()?;
                self.position.get(id).and_then(|&i| self.documents.get(i))
            })
            .collect()
    }
}
