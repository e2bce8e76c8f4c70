//! How hybrid search turns each candidate's cosine similarity and lexical score into one score.
//!
//! The default, [`SearchFusion::Adaptive`], gives the lexical score a say only as far as the
//! query's words are found. A paraphrase shares few words with its answer, and the ones it
//! shares ("seat", "name") point at the wrong memory as often as at the right one, so a fixed
//! lexical weight costs paraphrase recall with a semantic embedder; a query that names things
//! ("Biscuit", "levothyroxine") is answered best by the memory holding those words. Measured on
//! `tests/data/retrieval_set.json` against fixed weights, min-max and z-score normalisation and
//! reciprocal-rank fusion (README, "Search modes"), it is the only one tried that ranks no worse
//! than vector search on paraphrases and no worse than lexical search on keyword queries, with
//! both bundled embedders.

use crate::config::SearchFusion;

/// The evidence a hybrid candidate brings: its cosine similarity to the query and its lexical
/// score (BM25 over the BM25 of a typical full match, capped at 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Signals {
    /// Cosine similarity of the embeddings.
    pub cosine: f32,
    /// Normalised BM25, in [0, 1]; 0 when the memory shares no query term.
    pub lexical: f32,
}

/// A best lexical match holding at least this share of the query's evidence is taken as the
/// query naming what it wants: the lexical score gets its full weight.
const FULL_MATCH: f32 = 0.9;
/// Below a full match, the lexical weight falls with the best match's share of the evidence to
/// this power (a query half matched gets 1/16 of the weight)...
const COVERAGE_POWER: i32 = 4;
/// ...and with the agreement of the two signals over the candidates (their correlation, negative
/// taken as none) to this power: where cosine and lexical rank the candidates alike the query is
/// about its words, where they disagree the embedding has understood something the words miss.
const AGREEMENT_POWER: i32 = 2;
/// Reciprocal-rank fusion's damping constant (Cormack et al. use 60).
const RRF_K: f32 = 60.0;

/// The hybrid score of each candidate (in the order given) under `fusion`, with the configured
/// `vector_weight` and `lexical_weight`.
pub(super) fn fuse(
    fusion: SearchFusion,
    vector_weight: f32,
    lexical_weight: f32,
    candidates: &[Signals],
) -> Vec<f32> {
    match fusion {
        SearchFusion::Weighted => candidates
            .iter()
            .map(|c| vector_weight * c.cosine + lexical_weight * c.lexical)
            .collect(),
        SearchFusion::Adaptive => {
            let trust = lexical_trust(candidates);
            let lexical_weight = lexical_weight * trust;
            let total = vector_weight + lexical_weight;
            candidates
                .iter()
                .map(|c| {
                    if total > 0.0 {
                        (vector_weight * c.cosine + lexical_weight * c.lexical) / total
                    } else {
                        0.0
                    }
                })
                .collect()
        }
        SearchFusion::Rrf => {
            let by_cosine = ranks(candidates, |c| c.cosine);
            let by_lexical = ranks(candidates, |c| c.lexical);
            candidates
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let lexical = if c.lexical > 0.0 {
                        lexical_weight / (RRF_K + by_lexical[i] as f32)
                    } else {
                        0.0
                    };
                    vector_weight / (RRF_K + by_cosine[i] as f32) + lexical
                })
                .collect()
        }
    }
}

/// How far the adaptive fusion lets the lexical score count for this query, in [0, 1].
pub(super) fn lexical_trust(candidates: &[Signals]) -> f32 {
    let coverage = candidates.iter().map(|c| c.lexical).fold(0.0, f32::max);
    if coverage >= FULL_MATCH {
        return 1.0;
    }
    let agreement = correlation(candidates).max(0.0) as f32;
    coverage.powi(COVERAGE_POWER) * agreement.powi(AGREEMENT_POWER)
}

/// Pearson correlation of cosine and lexical scores over the candidates; 0 when either is
/// constant or there are fewer than two.
fn correlation(candidates: &[Signals]) -> f64 {
    let n = candidates.len() as f64;
    if candidates.len() < 2 {
        return 0.0;
    }
    let mean = |f: fn(&Signals) -> f32| candidates.iter().map(|c| f64::from(f(c))).sum::<f64>() / n;
    let (mc, ml) = (mean(|c| c.cosine), mean(|c| c.lexical));
    let (mut cov, mut vc, mut vl) = (0.0, 0.0, 0.0);
    for c in candidates {
        let (dc, dl) = (f64::from(c.cosine) - mc, f64::from(c.lexical) - ml);
        cov += dc * dl;
        vc += dc * dc;
        vl += dl * dl;
    }
    if vc > 0.0 && vl > 0.0 {
        cov / (vc * vl).sqrt()
    } else {
        0.0
    }
}

/// Each candidate's 1-based rank by `key`, highest first.
fn ranks(candidates: &[Signals], key: fn(&Signals) -> f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| key(&candidates[b]).total_cmp(&key(&candidates[a])));
    let mut rank = vec![0; candidates.len()];
    for (position, i) in order.into_iter().enumerate() {
        rank[i] = position + 1;
    }
    rank
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signals(pairs: &[(f32, f32)]) -> Vec<Signals> {
        pairs
            .iter()
            .map(|&(cosine, lexical)| Signals { cosine, lexical })
            .collect()
    }

    fn best(scores: &[f32]) -> usize {
        (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .expect("candidates")
    }

    #[test]
    fn a_partial_word_match_that_disagrees_with_the_embedding_leaves_cosine_order() {
        // A paraphrase: the second memory shares a word with the query, the first means it.
        let c = signals(&[(0.48, 0.38), (0.36, 0.8), (0.30, 0.0), (0.25, 0.0)]);
        let scores = fuse(SearchFusion::Adaptive, 0.5, 1.0, &c);
        assert_eq!(best(&scores), 0);
        let weighted = fuse(SearchFusion::Weighted, 0.5, 1.0, &c);
        assert_eq!(
            best(&weighted),
            1,
            "a fixed weight lets the shared word win"
        );
    }

    #[test]
    fn a_full_word_match_outranks_a_closer_embedding() {
        let c = signals(&[(0.43, 0.55), (0.26, 0.91), (0.30, 0.72)]);
        assert_eq!(lexical_trust(&c), 1.0);
        assert_eq!(best(&fuse(SearchFusion::Adaptive, 0.5, 1.0, &c)), 1);
    }

    #[test]
    fn without_lexical_evidence_the_score_is_the_cosine() {
        let c = signals(&[(0.7, 0.0), (0.2, 0.0)]);
        assert_eq!(lexical_trust(&c), 0.0);
        assert_eq!(fuse(SearchFusion::Adaptive, 0.5, 1.0, &c), vec![0.7, 0.2]);
        assert_eq!(fuse(SearchFusion::Adaptive, 0.0, 0.0, &c), vec![0.0, 0.0]);
    }

    #[test]
    fn agreeing_signals_let_a_partial_match_count() {
        let agree = signals(&[(0.6, 0.8), (0.4, 0.5), (0.2, 0.1)]);
        let disagree = signals(&[(0.6, 0.1), (0.4, 0.5), (0.2, 0.8)]);
        assert!(lexical_trust(&agree) > 0.3, "{}", lexical_trust(&agree));
        assert_eq!(lexical_trust(&disagree), 0.0);
    }

    #[test]
    fn rrf_adds_reciprocal_ranks_and_ignores_absent_lexical_hits() {
        let c = signals(&[(0.9, 0.0), (0.5, 0.9), (0.1, 0.5)]);
        let scores = fuse(SearchFusion::Rrf, 1.0, 1.0, &c);
        assert_eq!(scores[0], 1.0 / 61.0);
        assert_eq!(scores[1], 1.0 / 62.0 + 1.0 / 61.0);
        assert_eq!(scores[2], 1.0 / 63.0 + 1.0 / 62.0);
    }
}
