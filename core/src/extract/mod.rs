//! Persist: distilling conversation turns into long-term memories.
//!
//! [`MemoryExtractor`] is the seam: the bundled [`RuleExtractor`] recognises explicit user
//! statements with simple patterns; an LLM-based extractor can replace it through
//! [`ManagerBuilder::extractor`](crate::ManagerBuilder::extractor).
//!
//! # How the rules read a message
//!
//! A user message is split into sentences (`.`, `!`, `?`, `;`, new lines) and clauses (commas,
//! "but", "so", "because", and "and"/"also" before a new subject: "... and I live in Rome").
//! Words are lower-cased and contractions expanded ("I'm" → "i am", "don't" → "do not"), so
//! one trigger covers every spelling; adverbs such as "just", "really", "now" may stand inside a
//! trigger ("I *just* moved to", "I *really* like"), and a clause may drop its "I" ("Just moved
//! to Calgary!", "Not a fan of spicy food"; a place must then be capitalised, so "moved to
//! tears" is no move). A clause states nothing when it is a
//! question ("do I like coffee?", "what's my name?"), or when, before the trigger, it negates,
//! supposes or reports ("I never said I live in ...", "if I lived in Paris", "my friend thinks
//! I like ..."). Other people's facts never match: every trigger is about "I"/"my" ("my friend
//! lives in Rome" has no trigger; "my friend's dog is called Rex" is not "my dog").
//!
//! # Slots
//!
//! Each fact and preference names the slot it fills: what it is about, so that a new value for
//! the same slot supersedes the old one and a restatement (same slot, same text) adds nothing.
//! Slots are lower case, `[a-z0-9_:-]`; the parts after `:` are normalised values (lower case,
//! accents folded, articles and possessives dropped, plurals stemmed, `_` between words).
//!
//! | slot | from | one value at a time? |
//! |---|---|---|
//! | `name` | "my name is", "call me", "I go by", "name's Jo", "hi, I'm Alice", "hi, Tom here" | yes |
//! | `home_city` | "I live in", "I moved to", "I relocated to", "I'm based in", "I've been living in", "I love living in" | yes |
//! | `origin` | "I'm from", "I come from" (where they come from, not where they live) | yes |
//! | `job` | "I work as", "I'm working as", "my job is", "I'm a nurse", "I've been a teacher" (a job noun last unless "work as") | yes |
//! | `employer` | "I work at/for", "I got a job at", "I'm an accountant at PwC" | yes |
//! | `wife`, `husband`, `partner`, `girlfriend`, `boyfriend`, `fiance(e)`, `mother`, `father`, `boss`, `spouse` | "my wife's name is", "my wife is called", "my wife Sarah ...", "I'm married to" | yes |
//! | `<relation>:<name>` (`sister:sara`, `friend:tom`) | "my sister is called Sara" | no: one fact per person |
//! | `pet:<species>:<name>` | "I have a dog called Rex", "my dog's name is Rex", "my cat Luna ...", "a golden retriever named Buddy" (breeds map to their species) | no: one fact per pet |
//! | `pet:<species>` | "I have a cat", "I have two cats" (no name) | no |
//! | `timezone` | "my timezone is", "I'm in Pacific time", "I'm on CET" time | yes |
//! | `birthday` | "my birthday is", "I was born on" | yes |
//! | `age` | "I'm 34 (years old)", "I just turned 40" | yes |
//! | `language:<language>` | "I speak French and German" (one fact each) | no |
//! | `native_language` | "my native/first language is" | yes |
//! | `reply_language` | "please reply in French" | yes |
//! | `diet` | "I'm vegetarian", "I went vegan" | yes |
//! | `allergy:<thing>` | "I'm allergic to peanuts" | no: one per allergen |
//! | `opinion:<thing>` | likes, dislikes and preferences of one thing: "I like", "I love", "I'm into", "I prefer", "I don't like", "I hate", "I no longer like", "I don't like ... anymore", "I'm not into ... anymore" | yes: the newest opinion of the thing wins |
//! | `favorite:<thing>` | "my favorite color is green", "my favourite food is ramen" | yes |
//! | `reply_style` | a preference whose thing is answers/responses/replies ("I prefer brief responses") | yes |
//! | none | "remember that ..." with no more specific rule; `conversation` memories | never supersedes |
//!
//! Names and places are capitalised as proper names unless typed with capitals ("the UK");
//! a name in a "Mr."/"Dr." title keeps its full stop.
//!
//! Pets, people with names and languages are keyed by their value too: "a dog called Rex" and
//! "a cat called Rex" are two facts, and a second pet never supersedes the first. A negation
//! without a new value ("I don't live in Paris") makes no fact, so it supersedes nothing.
//! "I prefer tea over coffee" keys on the thing preferred (`opinion:tea`).

mod clause;
mod facts;
mod rules;
mod trigger;
mod value;

use crate::embed::{is_stopword, words};
use crate::model::{NewMemory, Role, Turn};
use clause::clauses;
use rules::{Found, RULES};
use trigger::{find_trigger, states};

/// A memory distilled from turns, and what it tells about the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// The memory to add.
    pub memory: NewMemory,
    /// A user-summary key it establishes (`name`, `location`, ...), for `user_summary_keys`.
    pub summary_key: Option<String>,
    /// What the memory is about (`home_city`, `opinion:green_tea`, `pet:dog:rex`; see the
    /// module docs): a new memory in the same slot supersedes the old one. `None` for
    /// memories that never supersede (conversations, "remember that ...").
    pub slot: Option<String>,
}

/// Turns short-term turns into long-term memories.
pub trait MemoryExtractor: Send + Sync + 'static {
    /// The memories to add for `turns` (the turns since the last persist, oldest first).
    fn extract(&self, turns: &[Turn]) -> Vec<Extracted>;
}

/// The bundled extractor: each user/assistant exchange becomes a `conversation` memory, and
/// explicit user statements ("my name is ...", "I moved to ...", "I like ...", "I work as ...",
/// "remember that ...") become `fact` and `preference` memories phrased about the user, each
/// with its slot (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct RuleExtractor;

impl MemoryExtractor for RuleExtractor {
    fn extract(&self, turns: &[Turn]) -> Vec<Extracted> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < turns.len() {
            let turn = &turns[i];
            if turn.role != Role::User {
                i += 1;
                continue;
            }
            out.extend(statements(&turn.content).into_iter().map(|mut e| {
                e.memory.source_turns = vec![turn.turn_index];
                e
            }));
            let reply = turns.get(i + 1).filter(|next| next.role == Role::Assistant);
            let content = match reply {
                Some(reply) => format!("User: {}\nAssistant: {}", turn.content, reply.content),
                None => format!("User: {}", turn.content),
            };
            let topics = keywords(&content, 3);
            let mut memory = NewMemory::new(content, "conversation")
                .importance(0.4)
                .topics(topics);
            memory.source_turns = std::iter::once(turn)
                .chain(reply)
                .map(|t| t.turn_index)
                .collect();
            out.push(Extracted {
                memory,
                summary_key: None,
                slot: None,
            });
            i += if reply.is_some() { 2 } else { 1 };
        }
        out
    }
}

/// The user-summary key (`name`, `location`, ...) of a memory the bundled extractor made, from
/// its `extraction_rule` metadata: how `user_summary_keys` is rebuilt when a store is reopened.
pub fn summary_key_of(metadata: &crate::model::Metadata) -> Option<&'static str> {
    let rule = metadata.extra.get("extraction_rule")?.as_str()?;
    RULES
        .iter()
        .find(|r| r.id == rule)
        .and_then(|r| r.summary_key)
}

/// Facts and preferences stated in one user message, in the order they were said.
fn statements(text: &str) -> Vec<Extracted> {
    let mut out = Vec::new();
    for clause in clauses(text) {
        if clause.question {
            continue;
        }
        let mut matched = false;
        for fallback in [false, true] {
            if fallback && matched {
                break;
            }
            for rule in RULES.iter().filter(|r| r.fallback == fallback) {
                let facts = rule
                    .triggers
                    .split('|')
                    .find_map(|trigger| matches(&clause, trigger, rule));
                for fact in facts.into_iter().flatten() {
                    let mut topics: Vec<String> =
                        rule.topics.iter().map(|t| t.to_string()).collect();
                    for keyword in keywords(&fact.value, 2) {
                        if !topics.contains(&keyword) {
                            topics.push(keyword);
                        }
                    }
                    out.push(Extracted {
                        memory: NewMemory::new(fact.content, rule.source_type)
                            .importance(rule.importance)
                            .topics(topics)
                            .with("extraction_rule", rule.id),
                        summary_key: rule.summary_key.map(str::to_owned),
                        slot: fact.slot,
                    });
                    matched = true;
                }
            }
        }
    }
    out
}

/// The facts `rule` makes of the first place `trigger` occurs in `clause` as a statement.
fn matches(
    clause: &clause::Clause,
    trigger: &'static str,
    rule: &rules::Rule,
) -> Option<Vec<facts::Fact>> {
    let mut from = 0;
    while let Some((start, end, wild)) = find_trigger(&clause.words, trigger, from) {
        from = start + 1;
        let prefix = &clause.words[..start];
        if !states(prefix) {
            continue;
        }
        let found = Found {
            trigger,
            prefix,
            wild,
            rest: &clause.words[end..],
            subject_dropped: false,
            clause,
        };
        let facts = (rule.build)(&found);
        if !facts.is_empty() {
            return Some(facts);
        }
    }
    // "Just moved to Calgary!", "Not a fan of spicy food": people drop the "I" at the start.
    ["i am ", "i have ", "i "].iter().find_map(|subject| {
        let subjectless = trigger.strip_prefix(subject)?;
        let (start, end, wild) = find_trigger(&clause.words, subjectless, 0)?;
        let prefix = &clause.words[..start];
        if !prefix.iter().all(|w| trigger::opens_a_clause(&w.norm)) {
            return None;
        }
        let found = Found {
            trigger,
            prefix,
            wild,
            rest: &clause.words[end..],
            subject_dropped: true,
            clause,
        };
        Some((rule.build)(&found)).filter(|facts| !facts.is_empty())
    })
}

/// The `n` most frequent content words of `text`, first occurrence breaking ties.
pub fn keywords(text: &str, n: usize) -> Vec<String> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for word in words(text) {
        if word.chars().count() < 3 || is_stopword(&word) || word.chars().all(char::is_numeric) {
            continue;
        }
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some((_, c)) => *c += 1,
            None => counts.push((word, 1)),
        }
    }
    // Stable sort keeps first-occurrence order among equal counts.
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.into_iter().take(n).map(|(w, _)| w).collect()
}

#[cfg(test)]
mod tests;
