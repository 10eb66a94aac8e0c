//! The keyword index: tantivy BM25 over chunk text (heading path included) with English stemming
//! and stop words, plus the source name as an exact-match field for filtering.

use std::path::{Path, PathBuf};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions, Value, STRING,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::error::{io, Error, Result};

const TOKENIZER: &str = "en_kb";
/// Tantivy's minimum per indexing thread is 15 MB; one thread: ingestion is embedding-bound.
const WRITER_MEMORY: usize = 20_000_000;

pub(crate) struct Bm25 {
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    id: Field,
    text: Field,
    source: Field,
}

impl Bm25 {
    /// Opens the index in `dir`, creating it when `dir` holds none.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let err = |source| Error::Index {
            dir: dir.to_owned(),
            source,
        };
        let exists = dir.join("meta.json").exists();
        let index = if exists {
            Index::open_in_dir(dir).map_err(err)?
        } else {
            Index::create_in_dir(dir, schema()).map_err(err)?
        };
        let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(StopWordFilter::new(Language::English).ok_or_else(|| {
                err(tantivy::TantivyError::InvalidArgument(
                    "no English stop words".into(),
                ))
            })?)
            .filter(Stemmer::new(Language::English))
            .build();
        index.tokenizers().register(TOKENIZER, analyzer);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(err)?;
        let schema = index.schema();
        let field = |name: &str| {
            schema.get_field(name).map_err(|_| Error::Corrupt {
                path: dir.join("meta.json"),
                reason: format!("no field {name}"),
            })
        };
        Ok(Bm25 {
            dir: dir.to_owned(),
            id: field("id")?,
            text: field("text")?,
            source: field("source")?,
            index,
            reader,
        })
    }

    fn err(&self) -> impl Fn(tantivy::TantivyError) -> Error + '_ {
        |source| Error::Index {
            dir: self.dir.clone(),
            source,
        }
    }

    /// A writer for one batch of changes; dropped without [`commit`](Self::commit) it changes nothing.
    pub(crate) fn writer(&self) -> Result<IndexWriter> {
        self.index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(self.err())
    }

    pub(crate) fn add(
        &self,
        writer: &IndexWriter,
        id: u64,
        source: &str,
        text: &str,
    ) -> Result<()> {
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.id, id);
        doc.add_text(self.source, source);
        doc.add_text(self.text, text);
        writer.add_document(doc).map_err(self.err())?;
        Ok(())
    }

    pub(crate) fn delete(&self, writer: &IndexWriter, id: u64) {
        writer.delete_term(Term::from_field_u64(self.id, id));
    }

    pub(crate) fn delete_all(&self, writer: &mut IndexWriter) -> Result<()> {
        writer.delete_all_documents().map_err(self.err())?;
        Ok(())
    }

    pub(crate) fn commit(&self, mut writer: IndexWriter) -> Result<()> {
        writer.commit().map_err(self.err())?;
        writer.wait_merging_threads().map_err(self.err())?;
        self.reader.reload().map_err(self.err())
    }

    pub(crate) fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The best `k` chunk ids for `query`, best first, optionally only from `source`.
    pub(crate) fn search(
        &self,
        query: &str,
        k: usize,
        source: Option<&str>,
    ) -> Result<Vec<(u64, f32)>> {
        // The query is a caller's words, not tantivy syntax: keep letters and digits only.
        let words: String = query
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { ' ' })
            .collect();
        let words = words
            .split_whitespace()
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join(" ");
        if words.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let parser = QueryParser::for_index(&self.index, vec![self.text]);
        let (mut parsed, _) = parser.parse_query_lenient(&words);
        if let Some(source) = source {
            let filter = TermQuery::new(
                Term::from_field_text(self.source, source),
                IndexRecordOption::Basic,
            );
            parsed = Box::new(BooleanQuery::new(vec![
                (Occur::Must, parsed),
                (Occur::Must, Box::new(filter) as Box<dyn Query>),
            ]));
        }
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&parsed, &TopDocs::with_limit(k))
            .map_err(self.err())?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address).map_err(self.err())?;
            if let Some(id) = doc.get_first(self.id).and_then(|v| v.as_u64()) {
                hits.push((id, score));
            }
        }
        Ok(hits)
    }
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    builder.add_u64_field("id", NumericOptions::default().set_indexed().set_stored());
    builder.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        ),
    );
    builder.add_text_field("source", STRING);
    builder.build()
}
