//! Recall on a labelled retrieval set (`tests/data/retrieval_set.json`): how often the memory a
//! query is about ranks first, or in the top five, among all the set's memories.
//!
//! Ranking is behind [`Ranker`], so an embedder ([`EmbeddingRanker`]), the BM25 baseline
//! ([`LexicalRanker`]) and any other scorer (hybrid) are measured by the same code.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use uuid::Uuid;

use coda_core::lexical::LexicalIndex;
use coda_core::vector::dot;
use coda_core::{Embedder, Error, Result};

/// The labelled set: memories, and queries each naming the memories relevant to it.
#[derive(Debug, Clone, Deserialize)]
pub struct RetrievalSet {
    /// Every memory a query is ranked against.
    pub memories: Vec<LabelledMemory>,
    /// Queries with their relevant memory ids.
    pub queries: Vec<LabelledQuery>,
}

/// One memory of the set.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledMemory {
    /// Identifier queries refer to, e.g. `m001`.
    pub id: String,
    /// The memory's text.
    pub content: String,
}

/// One query of the set.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelledQuery {
    /// What the user asks.
    pub query: String,
    /// Ids of the memories that answer it.
    pub relevant: Vec<String>,
    /// `keyword` (shares words with its memory) or `paraphrase` (shares few).
    pub kind: String,
}

impl RetrievalSet {
    /// Reads a set from JSON.
    pub fn load(path: &Path) -> Result<RetrievalSet> {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(path, e.to_string()))
    }

    /// The set shipped in the repository's `tests/data`.
    pub fn bundled() -> Result<RetrievalSet> {
        Self::load(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/data/retrieval_set.json"
        )))
    }
}

/// Scores every memory of a set against a query; higher is more relevant.
pub trait Ranker {
    /// One score per memory, in the set's order.
    fn scores(&mut self, query: &str) -> Result<Vec<f32>>;
}

/// Ranks by cosine similarity of embeddings; the memories are embedded once, in a batch.
pub struct EmbeddingRanker<'a> {
    embedder: &'a dyn Embedder,
    memories: Vec<Vec<f32>>,
}

impl<'a> EmbeddingRanker<'a> {
    /// Embeds every memory of `set` with `embedder`.
    pub fn new(embedder: &'a dyn Embedder, set: &RetrievalSet) -> Result<Self> {
        let texts: Vec<&str> = set.memories.iter().map(|m| m.content.as_str()).collect();
        Ok(EmbeddingRanker {
            embedder,
            memories: embedder.embed_batch(&texts)?,
        })
    }
}

impl Ranker for EmbeddingRanker<'_> {
    fn scores(&mut self, query: &str) -> Result<Vec<f32>> {
        let q = self.embedder.embed(query)?;
        Ok(self.memories.iter().map(|m| dot(&q, m)).collect())
    }
}

/// BM25 over the same index the manager's lexical and hybrid search use
/// ([`coda_core::lexical::LexicalIndex`]): the lexical baseline the embedders are compared with.
pub struct LexicalRanker {
    index: LexicalIndex,
    ids: Vec<Uuid>,
}

impl LexicalRanker {
    /// Indexes every memory of `set`.
    pub fn new(set: &RetrievalSet) -> Self {
        let mut index = LexicalIndex::new();
        let ids: Vec<Uuid> = set
            .memories
            .iter()
            .enumerate()
            .map(|(i, memory)| {
                let id = Uuid::from_u128(i as u128 + 1);
                index.insert(id, &memory.content);
                id
            })
            .collect();
        LexicalRanker { index, ids }
    }
}

impl Ranker for LexicalRanker {
    fn scores(&mut self, query: &str) -> Result<Vec<f32>> {
        let hits: HashMap<Uuid, f32> = self
            .index
            .search(query, self.ids.len())
            .into_iter()
            .collect();
        Ok(self
            .ids
            .iter()
            .map(|id| hits.get(id).copied().unwrap_or(0.0))
            .collect())
    }
}

/// Recall of one kind of query.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Recall {
    /// Queries of this kind.
    pub queries: usize,
    /// Queries whose relevant memory ranked first.
    pub hits_at_1: usize,
    /// Queries with a relevant memory in the top five.
    pub hits_at_5: usize,
}

impl Recall {
    /// Fraction of queries answered at rank 1.
    pub fn at_1(&self) -> f64 {
        self.hits_at_1 as f64 / self.queries.max(1) as f64
    }

    /// Fraction of queries answered within the top 5.
    pub fn at_5(&self) -> f64 {
        self.hits_at_5 as f64 / self.queries.max(1) as f64
    }
}

/// Recall per query kind, plus every query together under `all`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecallReport {
    /// Keyed by query kind; `all` sums the rest.
    pub by_kind: BTreeMap<String, Recall>,
}

impl fmt::Display for RecallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<12} {:>7} {:>9} {:>9}",
            "kind", "queries", "recall@1", "recall@5"
        )?;
        for (kind, r) in &self.by_kind {
            writeln!(
                f,
                "{kind:<12} {:>7} {:>8.1}% {:>8.1}%",
                r.queries,
                100.0 * r.at_1(),
                100.0 * r.at_5()
            )?;
        }
        Ok(())
    }
}

/// Ranks every query of `set` with `ranker` and counts where its relevant memory lands. A
/// query whose relevant id is not in the set is an error, so a broken set cannot look like a
/// bad ranker.
pub fn evaluate(set: &RetrievalSet, ranker: &mut dyn Ranker) -> Result<RecallReport> {
    let mut report = RecallReport::default();
    for q in &set.queries {
        let relevant: Vec<usize> = q
            .relevant
            .iter()
            .map(|id| {
                set.memories
                    .iter()
                    .position(|m| &m.id == id)
                    .ok_or_else(|| Error::invalid("relevant", format!("no memory `{id}`")))
            })
            .collect::<Result<_>>()?;
        let scores = ranker.scores(&q.query)?;
        if scores.len() != set.memories.len() {
            return Err(Error::invalid("scores", "one score per memory expected"));
        }
        // Rank of the best relevant memory: how many other memories score at least as high.
        // Ties count against it, so a ranker that scores everything 0 (a lexical ranker on a
        // query sharing no words) finds nothing rather than everything.
        let best = relevant
            .iter()
            .map(|&i| scores[i])
            .fold(f32::NEG_INFINITY, f32::max);
        let rank = scores
            .iter()
            .enumerate()
            .filter(|&(i, &s)| s >= best && !relevant.contains(&i))
            .count();
        for kind in [q.kind.as_str(), "all"] {
            let r = report.by_kind.entry(kind.to_owned()).or_default();
            r.queries += 1;
            r.hits_at_1 += usize::from(rank < 1);
            r.hits_at_5 += usize::from(rank < 5);
        }
    }
    Ok(report)
}

/// Embeds the set with `embedder` and evaluates it.
pub fn evaluate_embedder(set: &RetrievalSet, embedder: &dyn Embedder) -> Result<RecallReport> {
    evaluate(set, &mut EmbeddingRanker::new(embedder, set)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coda_core::HashingEmbedder;

    #[test]
    fn bundled_set_loads_and_hashing_finds_keyword_queries() {
        let set = RetrievalSet::bundled().expect("bundled set");
        let hashing = HashingEmbedder::new(384).expect("hashing");
        let report = evaluate_embedder(&set, &hashing).expect("evaluate");
        let all = report.by_kind["all"];
        assert_eq!(all.queries, set.queries.len());
        assert!(report.by_kind["keyword"].at_5() > 0.8, "{report}");
        assert!(report.to_string().contains("paraphrase"));
    }

    #[test]
    fn lexical_ranker_finds_shared_words() {
        let set = RetrievalSet::bundled().expect("bundled set");
        let report = evaluate(&set, &mut LexicalRanker::new(&set)).expect("evaluate");
        assert!(report.by_kind["keyword"].at_5() > 0.8, "{report}");
    }

    struct Fixed(Vec<f32>);

    impl Ranker for Fixed {
        fn scores(&mut self, _query: &str) -> Result<Vec<f32>> {
            Ok(self.0.clone())
        }
    }

    fn tiny_set(relevant: &str) -> RetrievalSet {
        let memory = |id: &str| LabelledMemory {
            id: id.into(),
            content: id.into(),
        };
        RetrievalSet {
            memories: ["a", "b", "c", "d", "e", "f"].map(memory).to_vec(),
            queries: vec![LabelledQuery {
                query: "q".into(),
                relevant: vec![relevant.into()],
                kind: "keyword".into(),
            }],
        }
    }

    #[test]
    fn ranks_are_counted_at_1_and_5() {
        let scores = vec![0.9, 0.8, 0.7, 0.6, 0.5, 0.4];
        let at = |id: &str| evaluate(&tiny_set(id), &mut Fixed(scores.clone())).expect("eval");
        assert_eq!(
            at("a").by_kind["keyword"],
            Recall {
                queries: 1,
                hits_at_1: 1,
                hits_at_5: 1
            }
        );
        assert_eq!(
            at("e").by_kind["keyword"],
            Recall {
                queries: 1,
                hits_at_1: 0,
                hits_at_5: 1
            }
        );
        assert_eq!(
            at("f").by_kind["all"],
            Recall {
                queries: 1,
                hits_at_1: 0,
                hits_at_5: 0
            }
        );
    }

    #[test]
    fn ties_count_against_the_relevant_memory() {
        let report = evaluate(&tiny_set("c"), &mut Fixed(vec![0.0; 6])).expect("eval");
        assert_eq!(
            report.by_kind["all"].hits_at_5, 0,
            "all-zero scores find nothing"
        );
    }

    #[test]
    fn unknown_relevant_id_is_an_error() {
        let err = evaluate(&tiny_set("zz"), &mut Fixed(vec![0.0; 6])).expect_err("bad set");
        assert!(err.to_string().contains("zz"), "{err}");
    }
}
