//! A BM25 keyword index over memory content, for lexical and hybrid search.

use std::collections::HashMap;

use crate::embed::{is_stopword, stem, words};
use crate::model::MemoryId;
use crate::vector::TopK;

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalisation.
const B: f32 = 0.75;

/// Words that carry no evidence in a question put to a memory ("where does she get her
/// haircut"), on top of the shared stop words; the hashing embedder keeps them.
const QUESTION_FILLER: [&str; 2] = ["get", "got"];

/// The terms BM25 scores: lower-cased words without stop words, lightly stemmed, with a final
/// "e" dropped so that "take", "takes" and "taking" (or "donate" and "donated") meet.
pub fn terms(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|w| !is_stopword(w) && !QUESTION_FILLER.contains(&w.as_str()))
        .map(|w| {
            let stemmed = stem(&w);
            match stemmed.strip_suffix('e') {
                Some(base) if stemmed.chars().count() > 3 => base.to_owned(),
                _ => stemmed.to_owned(),
            }
        })
        .collect()
}

/// An inverted index: term → postings (document, term frequency), plus document lengths.
///
/// Postings are plain vectors: building the index for a whole snapshot is pushes, not a hash map
/// per term; removal filters only the postings of the removed document's own terms.
#[derive(Debug, Default, Clone)]
pub struct LexicalIndex {
    postings: HashMap<String, Vec<(MemoryId, u32)>>,
    lengths: HashMap<MemoryId, u32>,
    total_length: u64,
}

impl LexicalIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of indexed documents.
    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// Indexes `text` as document `id`, replacing an earlier version.
    pub fn insert(&mut self, id: MemoryId, text: &str) {
        self.remove(id);
        let mut terms = terms(text);
        let length = terms.len() as u32;
        terms.sort_unstable();
        let mut i = 0;
        while i < terms.len() {
            let run = terms[i..].iter().take_while(|t| **t == terms[i]).count();
            let term = std::mem::take(&mut terms[i]);
            self.postings
                .entry(term)
                .or_default()
                .push((id, run as u32));
            i += run;
        }
        self.lengths.insert(id, length);
        self.total_length += u64::from(length);
    }

    /// Removes document `id` (its terms are found again from `text`-free bookkeeping).
    pub fn remove(&mut self, id: MemoryId) {
        let Some(length) = self.lengths.remove(&id) else {
            return;
        };
        self.total_length -= u64::from(length);
        self.postings.retain(|_, docs| {
            docs.retain(|(doc, _)| *doc != id);
            !docs.is_empty()
        });
    }

    /// Removes document `id` whose content was `text` — faster than [`remove`](Self::remove),
    /// which has to look at every term.
    pub fn remove_text(&mut self, id: MemoryId, text: &str) {
        let Some(length) = self.lengths.remove(&id) else {
            return;
        };
        self.total_length -= u64::from(length);
        for term in terms(text) {
            if let Some(docs) = self.postings.get_mut(&term) {
                docs.retain(|(doc, _)| *doc != id);
                if docs.is_empty() {
                    self.postings.remove(&term);
                }
            }
        }
    }

    /// Empties the index.
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The BM25 score of a typical full match for `query`: a document of average length holding
    /// every distinct query term once — including terms no document has. Dividing by it (and
    /// capping at 1) gives the share of the query's evidence a document matches, so a query that
    /// shares one common word with a memory does not look like a perfect lexical match.
    pub fn max_score(&self, query: &str) -> f32 {
        let n = self.lengths.len() as f32;
        let mut seen: Vec<String> = Vec::new();
        let mut total = 0.0;
        for term in terms(query) {
            if seen.contains(&term) {
                continue;
            }
            let df = self
                .postings
                .get(&term)
                .map_or(0.0, |docs| docs.len() as f32);
            // With tf = 1 and average length, BM25's term factor (K1+1)/(1+K1) is 1: the idf.
            total += ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            seen.push(term);
        }
        total
    }

    /// The `k` best documents for `query` by BM25, best first.
    pub fn search(&self, query: &str, k: usize) -> Vec<(MemoryId, f32)> {
        let n = self.lengths.len() as f32;
        if n == 0.0 || k == 0 {
            return Vec::new();
        }
        let average = (self.total_length as f32 / n).max(1.0);
        let mut scores: HashMap<MemoryId, f32> = HashMap::new();
        let mut seen = Vec::new();
        for term in terms(query) {
            if seen.contains(&term) {
                continue;
            }
            let Some(docs) = self.postings.get(&term) else {
                seen.push(term);
                continue;
            };
            let df = docs.len() as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(id, tf) in docs {
                let tf = tf as f32;
                let length = self.lengths.get(&id).copied().unwrap_or(0) as f32;
                let norm = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * length / average));
                *scores.entry(id).or_insert(0.0) += idf * norm;
            }
            seen.push(term);
        }
        let ids: Vec<(MemoryId, f32)> = scores.into_iter().collect();
        let mut top = TopK::new(k);
        for (i, (_, score)) in ids.iter().enumerate() {
            top.offer(i, *score);
        }
        top.into_sorted()
            .into_iter()
            .map(|(i, score)| (ids[i].0, score))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn rare_terms_outrank_common_ones_and_removal_works() {
        let mut index = LexicalIndex::new();
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        index.insert(a, "The user has a dog named Rex.");
        index.insert(b, "The user walks the dog every morning.");
        index.insert(c, "The user drinks coffee every morning.");
        let hits = index.search("what is the dog named", 3);
        assert_eq!(hits[0].0, a);
        assert_eq!(hits.len(), 2, "only documents sharing a term score");
        index.remove_text(a, "The user has a dog named Rex.");
        assert_eq!(index.search("named", 3), vec![]);
        index.remove(b);
        assert_eq!(index.len(), 1);
        assert_eq!(index.search("morning coffee", 3)[0].0, c);
        index.insert(c, "Replaced text about tea.");
        assert!(
            index.search("coffee", 3).is_empty(),
            "insert replaces the old version"
        );
    }

    #[test]
    fn verb_forms_meet_and_question_filler_is_dropped() {
        assert_eq!(terms("take"), terms("takes"));
        assert_eq!(terms("taking"), terms("takes"));
        assert_eq!(terms("donate"), terms("donated"));
        assert_eq!(terms("lives"), terms("live"));
        assert_eq!(terms("where does she get her haircut"), vec!["haircut"]);
        assert_eq!(terms("the"), Vec::<String>::new());
        assert_eq!(terms("trees"), terms("tree"));
        assert_eq!(
            terms("one"),
            vec!["one"],
            "three letters are too short to trim"
        );
    }

    #[test]
    fn max_score_counts_every_query_term_even_unseen_ones() {
        let mut index = LexicalIndex::new();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        index.insert(a, "The user has a dog named Rex.");
        index.insert(b, "The user drinks green tea.");
        let full = index.search("dog Rex", 1)[0].1 / index.max_score("dog Rex");
        let partial = index.search("dog zebra", 1)[0].1 / index.max_score("dog zebra");
        assert!(
            full > 0.9,
            "a memory holding every query term is a near-full match: {full}"
        );
        assert!(partial < 0.6, "half the evidence is missing: {partial}");
        assert_eq!(
            index.max_score("the a of"),
            0.0,
            "stop words carry no evidence"
        );
    }
}
