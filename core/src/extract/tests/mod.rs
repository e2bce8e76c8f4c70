//! Unit tests of the rule extractor; the labelled conversations are in `tests/extraction.rs`.

mod slots;
mod statements;

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

/// The facts (not conversations) of one user message: `(content, slot)`.
fn facts(text: &str) -> Vec<(String, Option<String>)> {
    RuleExtractor
        .extract(&[turn(Role::User, text, 0)])
        .into_iter()
        .filter(|e| e.memory.memory_type != "conversation")
        .map(|e| (e.memory.content, e.slot))
        .collect()
}

fn slot(text: &str) -> Option<String> {
    let got = facts(text);
    assert_eq!(got.len(), 1, "{text:?} gives one fact: {got:?}");
    got[0].1.clone()
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
    assert!(contents(&[turn(Role::User, "it is alike tea", 0)]).len() == 1);
}

#[test]
fn rule_ids_are_unique_and_old_ones_keep_their_summary_keys() {
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "extraction_rule ids are unique");
    // Stores written before the rules grew carry these ids.
    for (id, key) in [
        ("my name is", Some("name")),
        ("i live in", Some("location")),
        ("i prefer", Some("preferences")),
        ("i don't like", Some("dislikes")),
        ("i like", Some("likes")),
        ("remember that", None),
    ] {
        let mut metadata = crate::model::Metadata {
            source_type: "fact".into(),
            importance: 0.5,
            timestamp: Utc::now(),
            topics: Vec::new(),
            extra: serde_json::Map::new(),
        };
        metadata.extra.insert("extraction_rule".into(), id.into());
        assert_eq!(summary_key_of(&metadata), key, "{id}");
    }
}

#[test]
fn conversations_have_no_slot() {
    let got = RuleExtractor.extract(&[turn(Role::User, "I live in Paris", 0)]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].memory.memory_type, "conversation");
    assert_eq!(got[1].slot, None);
    assert_eq!(got[0].slot.as_deref(), Some("home_city"));
}

#[test]
fn odd_input_never_panics() {
    let odd = [
        "",
        " ",
        ".",
        "?!?",
        "I",
        "my",
        "I'm",
        "call me",
        "my name is",
        "i have a",
        "my dog's",
        "I am",
        "remember",
        "remember that",
        "I'm in time",
        "my * name is",
        "İ like Ǆ",
        "’’’",
        "I like 🍵!",
        "I live in 東京",
        "Dr.",
        "Mr. .",
        "I am 0",
        "I am 999 years old",
        "I have a and a and",
        "a, b; c: d (e) \"f\" — g",
        "I YYY",
        "I ÿ",
        "my Y here",
    ];
    for text in odd {
        let _ = RuleExtractor.extract(&[turn(Role::User, text, 0)]);
    }
    let long = "I like tea and I live in Paris because ".repeat(2_000);
    assert!(!facts(&long).is_empty());
}

#[test]
fn triggers_are_normalised_phrases() {
    for rule in RULES {
        for trigger in rule.triggers.split('|') {
            assert!(
                !trigger.is_empty()
                    && trigger == trigger.trim()
                    && !trigger.contains("  ")
                    && trigger == trigger.to_lowercase()
                    && !trigger.contains('\''),
                "rule {:?}: trigger {trigger:?} is spelled as the normaliser writes words",
                rule.id
            );
        }
    }
}
