//! Extraction quality on the labelled conversations in `tests/data/conversations.json`: the
//! bundled [`RuleExtractor`] against what a person would expect it to remember, and what
//! should stay believed once superseding has run.
//!
//! `cargo test --test extraction -- --nocapture` prints precision, recall and the
//! final-state accuracy, and every miss.
//!
//! # The file's schema
//!
//! ```text
//! {
//!   "about": "...",
//!   "conversations": [{
//!     "id": "moved-paris-berlin",          // unique, kebab-case
//!     "batch": "tuned" | "held_out" | "blind" | "blind2" | "noise" | "noise2",   // (below)
//!     "note": "what the case tests",
//!     "turns": [{"role": "user" | "assistant", "content": "..."}],   // oldest first
//!     "facts": [{                          // every fact/preference the extractor should
//!       "turn": 0,                         // emit, in order (a restatement is listed again);
//!       "content": "The user lives in Paris.",       // `conversation` memories are not
//!       "memory_type": "fact" | "preference",        // listed
//!       "slot": "home_city" | null
//!     }],
//!     "final_active": [{"content", "memory_type", "slot"}],   // what is believed at the end
//!     "superseded": [{"content", "slot", "superseded_by": "<content of the newer memory>"}]
//!   }]
//! }
//! ```
//!
//! `final_active` and `superseded` follow from `facts` by [`final_facts`], the rule SPEC §10
//! gives: facts are added in order, each compared with the memories still active; the same
//! slot and the same content is a restatement and adds nothing; the same slot with other
//! content supersedes the active memory in that slot; without a slot a memory only
//! deduplicates against identical content. (A test here checks the labels agree with it, so
//! a supersede test through the manager can read `final_active`/`superseded` directly.)
//!
//! Batches: `tuned` conversations were written with the rules; `held_out` (ids `h-…`) after
//! the first rules, `blind` (ids `b-…`) after the second round and `blind2` (ids `c-…`) after
//! the third, each measured before any rule was changed for it. First runs:
//!
//! | batch | conversations | precision | recall | final state right |
//! |---|---|---|---|---|
//! | held_out | 57 | 0.972 | 0.686 | 42/57 |
//! | blind | 52 | 1.000 | 0.814 | 44/52 |
//! | blind2 | 39 | 0.926 | 0.641 | 26/39 |
//! | noise | 60 | 4 false facts in 60 messages | – | 56/60 |
//! | noise2 | 40 | 1 false fact in 40 messages | – | 39/40 |
//!
//! `noise` (ids `n-…`) are ordinary requests ("How do I reverse a linked list?") and
//! `noise2` (ids `m-…`, written after the noise fixes) ordinary first-person messages ("I'm
//! running late for a call") with no lasting fact in them: every fact extracted there is a
//! false one. The one left, "I don't like the tone, make it friendlier", is a known false
//! positive: a liking of "the <thing>" cannot tell the chat's tone from the beach.
//!
//! The rules were then grown for what generalised, so today's figures on those batches are
//! no longer blind; the first runs are the honest estimate for phrasings the rules have not
//! seen (high precision, recall around 0.65–0.8).
//!
//! Matching is on normalised content (lower case, white space collapsed, final full stop
//! dropped) and slot; precision and recall count facts as a multiset per conversation.

use chrono::Utc;
use coda::{MemoryExtractor, Role, RuleExtractor, Turn};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct LabelledSet {
    conversations: Vec<Conversation>,
}

#[derive(Debug, Deserialize)]
struct Conversation {
    id: String,
    batch: String,
    note: String,
    turns: Vec<LabelledTurn>,
    facts: Vec<LabelledFact>,
    final_active: Vec<LabelledFact>,
    superseded: Vec<SupersededFact>,
}

#[derive(Debug, Deserialize)]
struct LabelledTurn {
    role: Role,
    content: String,
}

#[derive(Debug, Clone, Deserialize)]
struct LabelledFact {
    content: String,
    memory_type: String,
    slot: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct SupersededFact {
    content: String,
    slot: Option<String>,
    superseded_by: String,
}

fn load() -> LabelledSet {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/conversations.json");
    serde_json::from_slice(&std::fs::read(path).expect("labelled set")).expect("json")
}

fn turns(conversation: &Conversation) -> Vec<Turn> {
    conversation
        .turns
        .iter()
        .enumerate()
        .map(|(i, t)| Turn {
            role: t.role,
            content: t.content.clone(),
            turn_index: i as u64,
            timestamp: Utc::now(),
            name: None,
        })
        .collect()
}

/// The facts and preferences the extractor makes of a conversation, in order.
fn extracted(conversation: &Conversation) -> Vec<LabelledFact> {
    RuleExtractor
        .extract(&turns(conversation))
        .into_iter()
        .filter(|e| e.memory.memory_type != "conversation")
        .map(|e| LabelledFact {
            content: e.memory.content,
            memory_type: e.memory.memory_type,
            slot: e.slot,
        })
        .collect()
}

fn normalise(content: &str) -> String {
    content
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches('.')
        .to_lowercase()
}

fn key(fact: &LabelledFact) -> (String, Option<String>) {
    (normalise(&fact.content), fact.slot.clone())
}

/// What stays believed after adding `facts` in order (see the module docs): the active
/// memories, and every superseded one with the content that superseded it.
fn final_facts(facts: &[LabelledFact]) -> (Vec<LabelledFact>, Vec<SupersededFact>) {
    let mut active: Vec<LabelledFact> = Vec::new();
    let mut superseded = Vec::new();
    for fact in facts {
        let restated = active
            .iter()
            .any(|a| a.slot == fact.slot && normalise(&a.content) == normalise(&fact.content));
        if restated {
            continue;
        }
        if fact.slot.is_some() {
            active.retain(|a| {
                let replaced = a.slot == fact.slot;
                if replaced {
                    superseded.push(SupersededFact {
                        content: a.content.clone(),
                        slot: a.slot.clone(),
                        superseded_by: fact.content.clone(),
                    });
                }
                !replaced
            });
        }
        active.push(fact.clone());
    }
    (active, superseded)
}

fn sorted_keys(facts: &[LabelledFact]) -> Vec<(String, Option<String>)> {
    let mut keys: Vec<_> = facts.iter().map(key).collect();
    keys.sort();
    keys
}

/// How many of `got` match `want` as multisets of keys.
fn matched(got: &[LabelledFact], want: &[LabelledFact]) -> usize {
    let mut left: Vec<_> = want.iter().map(key).collect();
    got.iter()
        .filter(|g| {
            let k = key(g);
            match left.iter().position(|w| *w == k) {
                Some(at) => {
                    left.swap_remove(at);
                    true
                }
                None => false,
            }
        })
        .count()
}

#[test]
fn the_labelled_set_covers_the_hard_cases() {
    let set = load();
    assert!(set.conversations.len() >= 60, "{}", set.conversations.len());
    let mut ids: Vec<&str> = set.conversations.iter().map(|c| c.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), set.conversations.len(), "ids are unique");
    for id in [
        "two-rex",
        "friend-city",
        "question-home",
        "negated-home",
        "restated-name",
        "moved-paris-berlin",
        "coffee-anymore",
    ] {
        assert!(ids.contains(&id), "{id} is in the set");
    }
    for c in &set.conversations {
        assert!(!c.note.is_empty(), "{} has a note", c.id);
        assert!(
            ["tuned", "held_out", "blind", "blind2", "noise", "noise2"].contains(&c.batch.as_str()),
            "{}: batch {}",
            c.id,
            c.batch
        );
        for fact in c.facts.iter().chain(&c.final_active) {
            assert!(
                ["fact", "preference"].contains(&fact.memory_type.as_str()),
                "{}: {}",
                c.id,
                fact.memory_type
            );
            if let Some(slot) = &fact.slot {
                assert!(
                    slot.chars().all(|ch| ch.is_ascii_lowercase()
                        || ch.is_ascii_digit()
                        || "_:-".contains(ch)),
                    "{}: slot {slot:?}",
                    c.id
                );
            }
        }
    }
}

#[test]
fn labelled_final_states_follow_from_the_labelled_facts() {
    for c in load().conversations {
        let (active, superseded) = final_facts(&c.facts);
        assert_eq!(
            sorted_keys(&active),
            sorted_keys(&c.final_active),
            "{}: final_active",
            c.id
        );
        assert_eq!(superseded, c.superseded, "{}: superseded", c.id);
    }
}

/// Counts over a group of conversations.
#[derive(Default)]
struct Tally {
    conversations: usize,
    labelled: usize,
    extracted: usize,
    right: usize,
    typed_right: usize,
    finals_right: usize,
}

impl Tally {
    /// 1 when nothing was extracted (as in the `noise` batch, where any fact is wrong).
    fn precision(&self) -> f64 {
        if self.extracted == 0 {
            return 1.0;
        }
        self.right as f64 / self.extracted as f64
    }

    /// 1 when nothing was labelled.
    fn recall(&self) -> f64 {
        if self.labelled == 0 {
            return 1.0;
        }
        self.right as f64 / self.labelled as f64
    }

    fn finals(&self) -> f64 {
        self.finals_right as f64 / self.conversations.max(1) as f64
    }

    fn report(&self, name: &str) {
        println!(
            "{name}: {} conversations, {} labelled facts, {} extracted, {} right: precision \
             {:.3}, recall {:.3}; final active facts right in {}/{} ({:.3})",
            self.conversations,
            self.labelled,
            self.extracted,
            self.right,
            self.precision(),
            self.recall(),
            self.finals_right,
            self.conversations,
            self.finals()
        );
    }
}

#[test]
fn the_rule_extractor_finds_the_labelled_facts() {
    let set = load();
    let mut all = Tally::default();
    let mut batches: Vec<(String, Tally)> = Vec::new();
    for c in &set.conversations {
        let got = extracted(c);
        let hit = matched(&got, &c.facts);
        let typed_right = got
            .iter()
            .filter(|g| {
                c.facts
                    .iter()
                    .any(|w| key(w) == key(g) && w.memory_type == g.memory_type)
            })
            .count();
        let (active, _) = final_facts(&got);
        let final_right = sorted_keys(&active) == sorted_keys(&c.final_active);
        if !batches.iter().any(|(b, _)| *b == c.batch) {
            batches.push((c.batch.clone(), Tally::default()));
        }
        let batch = batches
            .iter_mut()
            .find(|(b, _)| *b == c.batch)
            .map(|(_, t)| t)
            .expect("just added");
        for tally in [&mut all, batch] {
            tally.conversations += 1;
            tally.labelled += c.facts.len();
            tally.extracted += got.len();
            tally.right += hit;
            tally.typed_right += typed_right;
            tally.finals_right += usize::from(final_right);
        }
        if hit != got.len() || hit != c.facts.len() || !final_right {
            println!("miss {} ({})", c.id, c.note);
            println!("   want {:?}", c.facts.iter().map(key).collect::<Vec<_>>());
            println!("   got  {:?}", got.iter().map(key).collect::<Vec<_>>());
        }
    }
    for (name, tally) in &batches {
        tally.report(name);
    }
    all.report("extraction, all");
    assert_eq!(
        all.typed_right, all.right,
        "every matched fact has the labelled memory type"
    );
    // Measured 2026-12-02 (precision 0.996, recall 0.979, final state 0.985): set just under,
    // so a regression fails and an honest new hard case does not.
    assert!(all.precision() >= 0.99, "precision {:.3}", all.precision());
    assert!(all.recall() >= 0.97, "recall {:.3}", all.recall());
    assert!(
        all.finals() >= 0.98,
        "final-state accuracy {:.3}",
        all.finals()
    );
}
