//! Persist: distilling conversation turns into long-term memories.
//!
//! [`MemoryExtractor`] is the seam: the bundled [`RuleExtractor`] recognises explicit user
//! statements with simple patterns; an LLM-based extractor can replace it through
//! [`ManagerBuilder::extractor`](crate::ManagerBuilder::extractor).

use crate::embed::{is_stopword, words};
use crate::model::{NewMemory, Role, Turn};

/// A memory distilled from turns, and what it tells about the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    /// The memory to add.
    pub memory: NewMemory,
    /// A user-summary key it establishes (`name`, `location`, ...), for `user_summary_keys`.
    pub summary_key: Option<String>,
    /// What the memory is about, so a new value supersedes the old (SPEC §10).
    pub slot: Option<String>,
}

/// Turns short-term turns into long-term memories.
pub trait MemoryExtractor: Send + Sync + 'static {
    /// The memories to add for `turns` (the turns since the last persist, oldest first).
    fn extract(&self, turns: &[Turn]) -> Vec<Extracted>;
}

/// The bundled extractor: each user/assistant exchange becomes a `conversation` memory, and
/// explicit user statements ("my name is ...", "I prefer ...", "I like ...", "I live in ...",
/// "remember that ...") become `fact` and `preference` memories phrased about the user.
#[derive(Debug, Clone, Default)]
pub struct RuleExtractor;

struct Rule {
    /// Lower-case phrases that introduce the statement.
    triggers: &'static [&'static str],
    /// Builds the memory text from the captured rest of the sentence.
    phrase: fn(&str) -> String,
    source_type: &'static str,
    importance: f64,
    topics: &'static [&'static str],
    summary_key: Option<&'static str>,
}

const RULES: &[Rule] = &[
    Rule {
        triggers: &["my name is ", "call me ", "i'm called ", "i am called "],
        phrase: |v| format!("The user's name is {}.", title_case(v)),
        source_type: "fact",
        importance: 0.9,
        topics: &["user", "name"],
        summary_key: Some("name"),
    },
    Rule {
        triggers: &["i live in ", "i'm living in ", "i am living in "],
        phrase: |v| format!("The user lives in {}.", title_case(v)),
        source_type: "fact",
        importance: 0.8,
        topics: &["user", "location"],
        summary_key: Some("location"),
    },
    Rule {
        triggers: &["i prefer "],
        phrase: |v| format!("The user prefers {}.", third_person(v)),
        source_type: "preference",
        importance: 0.7,
        topics: &["user", "preference"],
        summary_key: Some("preferences"),
    },
    Rule {
        triggers: &["i don't like ", "i do not like ", "i dislike ", "i hate "],
        phrase: |v| format!("The user dislikes {}.", third_person(v)),
        source_type: "preference",
        importance: 0.7,
        topics: &["user", "preference", "dislikes"],
        summary_key: Some("dislikes"),
    },
    Rule {
        triggers: &["i like ", "i love ", "i enjoy "],
        phrase: |v| format!("The user likes {}.", third_person(v)),
        source_type: "preference",
        importance: 0.7,
        topics: &["user", "preference", "likes"],
        summary_key: Some("likes"),
    },
    Rule {
        triggers: &["remember that "],
        phrase: |v| format!("{}.", capitalise(&third_person(v))),
        source_type: "fact",
        importance: 0.8,
        topics: &["user", "remember"],
        summary_key: None,
    },
];

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
            out.extend(statements(&turn.content));
            let reply = turns.get(i + 1).filter(|next| next.role == Role::Assistant);
            let content = match reply {
                Some(reply) => format!("User: {}\nAssistant: {}", turn.content, reply.content),
                None => format!("User: {}", turn.content),
            };
            let topics = keywords(&content, 3);
            out.push(Extracted {
                memory: NewMemory::new(content, "conversation")
                    .importance(0.4)
                    .topics(topics),
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
        .find(|r| r.triggers[0].trim() == rule)
        .and_then(|r| r.summary_key)
}

/// Facts and preferences stated in one user message.
fn statements(text: &str) -> Vec<Extracted> {
    let mut out = Vec::new();
    for sentence in text.split(['.', '!', '?', ';', '\n']) {
        let lower = sentence.to_lowercase().replace('’', "'");
        // Match on the lower-cased sentence; the capture keeps the original case when the
        // lengths agree (they do for everything but a few exotic characters).
        let same_len = lower.len() == sentence.len();
        let mut matched = false;
        for rule in RULES {
            // "remember that ..." is the catch-all: only when no specific rule fired.
            if matched && rule.summary_key.is_none() {
                continue;
            }
            let Some(start) = rule
                .triggers
                .iter()
                .find_map(|t| find_phrase(&lower, t).map(|at| at + t.len()))
            else {
                continue;
            };
            let source = if same_len { sentence } else { lower.as_str() };
            let value = clean_value(&source[start..]);
            if value.is_empty() {
                continue;
            }
            let mut topics: Vec<String> = rule.topics.iter().map(|t| t.to_string()).collect();
            for keyword in keywords(&value, 2) {
                if !topics.contains(&keyword) {
                    topics.push(keyword);
                }
            }
            out.push(Extracted {
                memory: NewMemory::new((rule.phrase)(&value), rule.source_type)
                    .importance(rule.importance)
                    .topics(topics)
                    .with("extraction_rule", rule.triggers[0].trim()),
                summary_key: rule.summary_key.map(str::to_owned),
                slot: None,
            });
            matched = true;
        }
    }
    out
}

/// Finds `phrase` at a word boundary.
fn find_phrase(haystack: &str, phrase: &str) -> Option<usize> {
    haystack
        .match_indices(phrase)
        .map(|(at, _)| at)
        .find(|&at| {
            at == 0
                || haystack[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| !c.is_alphanumeric() && c != '\'')
        })
}

/// Trims the captured statement at a clause break ("..., but ...", "... and I ...").
fn clean_value(raw: &str) -> String {
    let mut value = raw.trim();
    for stop in [",", " but ", " and i ", " so ", " because "] {
        if let Some(at) = value.to_lowercase().find(stop) {
            value = value[..at.min(value.len())].trim();
        }
    }
    value
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != ')')
        .to_owned()
}

/// Rewrites first-person words about the speaker into third person about "the user".
fn third_person(text: &str) -> String {
    let mut out = Vec::new();
    let mut previous_was_subject = false;
    for word in text.split_whitespace() {
        let lower = word.to_lowercase();
        let replaced = match lower.as_str() {
            "i" => "the user",
            "i'm" => "the user is",
            "i've" => "the user has",
            "me" | "myself" => "the user",
            "my" | "mine" => "the user's",
            "am" if previous_was_subject => "is",
            _ => word,
        };
        previous_was_subject = lower == "i";
        out.push(replaced.to_owned());
    }
    out.join(" ")
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn title_case(text: &str) -> String {
    text.split_whitespace()
        .map(capitalise)
        .collect::<Vec<_>>()
        .join(" ")
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
mod tests {
    use super::*;
    use chrono::Utc;

    fn turn(role: Role, content: &str, i: u64) -> Turn {
        Turn {
            role,
            content: content.into(),
            turn_index: i,
            timestamp: Utc::now(),
            name: None,
        }
    }

    fn contents(turns: &[Turn]) -> Vec<String> {
        RuleExtractor
            .extract(turns)
            .into_iter()
            .map(|e| e.memory.content)
            .collect()
    }

    #[test]
    fn user_statements_become_facts_about_the_user() {
        let got = contents(&[
            turn(
                Role::User,
                "Hi! My name is alice smith, and I live in Paris.",
                0,
            ),
            turn(Role::Assistant, "Nice to meet you, Alice.", 1),
            turn(Role::User, "I prefer brief responses. I like jazz music", 2),
            turn(
                Role::User,
                "Please remember that my sister is called Sara",
                3,
            ),
            turn(Role::User, "I don't like mushrooms", 4),
        ]);
        for want in [
            "The user's name is Alice Smith.",
            "The user lives in Paris.",
            "The user prefers brief responses.",
            "The user likes jazz music.",
            "The user's sister is called Sara.",
            "The user dislikes mushrooms.",
        ] {
            assert!(
                got.contains(&want.to_owned()),
                "missing {want:?} in {got:?}"
            );
        }
        assert!(got.contains(&"User: Hi! My name is alice smith, and I live in Paris.\nAssistant: Nice to meet you, Alice.".to_owned()));
    }

    #[test]
    fn facts_carry_type_importance_topics_and_summary_key() {
        let got = RuleExtractor.extract(&[turn(Role::User, "my name is Bob", 0)]);
        let fact = &got[0];
        assert_eq!(fact.memory.memory_type, "fact");
        assert!(fact.memory.importance > 0.5);
        assert_eq!(fact.memory.metadata["topics"][1], "name");
        assert_eq!(fact.summary_key.as_deref(), Some("name"));
        assert_eq!(got[1].memory.memory_type, "conversation");
    }

    #[test]
    fn phrases_match_only_at_word_boundaries() {
        assert!(
            contents(&[turn(Role::User, "Unlike yesterday I like tea", 0)])
                .contains(&"The user likes tea.".to_owned())
        );
        assert_eq!(find_phrase("alike ", "like "), None);
    }
}
