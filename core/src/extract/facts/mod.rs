//! What each rule makes of the words after its trigger: checks that they say what the rule
//! means, then the memory text (about "the user") and its slot.

mod family;
mod home;
mod personal;
mod tastes;
mod work;

pub(super) use family::{
    named_pet, pet_named_inline, pets, relation, relation_named_inline, spouse,
};
pub(super) use home::{home, origin};
pub(super) use personal::{
    age, allergy, birthday, diet, greeting_name, is_language, languages, name, native_language,
    timezone,
};
pub(super) use tastes::{dislike, favourite, like, no_longer_like, prefer, reply_language};
pub(super) use work::{employer, job};

use super::clause::Word;
use super::rules::Found;
use super::value::{capitalise, cut, fold, third_person};

/// One memory a rule made: its text, its slot and the value its topics come from.
#[derive(Debug)]
pub(super) struct Fact {
    pub content: String,
    pub slot: Option<String>,
    pub value: String,
}

pub(super) fn fact(content: String, slot: impl Into<String>, value: String) -> Vec<Fact> {
    vec![Fact {
        content,
        slot: Some(slot.into()),
        value,
    }]
}

/// Words a name never starts with: "call me *back*", "I go by *train*".
pub(super) const NOT_A_NAME: &[&str] = &[
    "a",
    "an",
    "the",
    "back",
    "later",
    "tomorrow",
    "tonight",
    "today",
    "soon",
    "anytime",
    "whenever",
    "at",
    "on",
    "in",
    "by",
    "after",
    "before",
    "maybe",
    "sometime",
    "crazy",
    "old-fashioned",
    "out",
    "up",
    "daily",
    "asap",
    "that",
    "this",
    "it",
    "what",
    "whatever",
    "anything",
    "train",
    "bus",
    "car",
    "bike",
    "foot",
    "myself",
    "me",
    "you",
    "your",
    "my",
    "to",
    "with",
    "for",
    "from",
    "here",
    "there",
    "and",
    "or",
    "is",
    "just",
    "so",
    "very",
    "sorry",
    "fine",
    "good",
    "well",
    "great",
    "ok",
    "okay",
    "new",
    "sure",
    "ready",
    "done",
    "glad",
    "happy",
    "tired",
    "curious",
    "confused",
    "stuck",
    "excited",
    "interested",
    "still",
    "also",
    "currently",
    "about",
    "trying",
    "looking",
    "not",
    "going",
    "having",
    "of",
    "into",
    "when",
    "if",
    "like",
    "all",
    "one",
    "someone",
    "somebody",
    "vegan",
    "vegetarian",
    "home",
    "away",
    "busy",
    "free",
    "late",
    "early",
    "right",
    "wrong",
    "afraid",
    "lost",
    "hungry",
    "bored",
    "worried",
    "nervous",
    "thinking",
    "back",
    "pretty",
    "quite",
    "really",
];

/// Words that may come before a name's trigger at the start of a clause.
pub(super) const GREETING_WORDS: &[&str] = &[
    "hi", "hello", "hey", "hiya", "there", "all", "everyone", "yo", "btw", "oh", "and", "so",
    "well", "ok", "okay", "also", "actually",
];

const NAME_STOPS: &[&str] = &[
    "and", "or", "for", "from", "instead", "because", "i", "in", "at", "by", "with", "to", "but",
    "on", "here",
];

/// A name of one to four words, none of them a word a name never is.
pub(super) fn name_words(rest: &[Word]) -> Option<&[Word]> {
    let value = cut(rest, NAME_STOPS);
    let ok = !value.is_empty()
        && value.len() <= 4
        && value.iter().all(|w| {
            w.norm
                .chars()
                .all(|c| c.is_alphabetic() || "-'.".contains(c))
        })
        && !value.iter().any(|w| NOT_A_NAME.contains(&w.norm.as_str()));
    ok.then_some(value)
}

/// The typed relation of `my * name is` / `my * is called`, its possessive dropped.
pub(super) fn wild_phrase(found: &Found) -> String {
    // "my husband's called Dave" is "my husband is called"; "my friend called me" is not.
    let elided_is = !found.trigger.contains(" is ")
        && (found.trigger.ends_with(" called") || found.trigger.ends_with(" named"));
    if elided_is && !found.wild.last().is_some_and(|w| w.norm.ends_with("'s")) {
        return String::new();
    }
    found
        .wild
        .iter()
        .map(|w| w.norm.trim_end_matches("'s").trim_end_matches('\''))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn key_of(name: &str) -> String {
    name.split(' ').map(fold).collect::<Vec<_>>().join("_")
}

/// Words that may open a "remember ..." request: it is addressed to the assistant.
const POLITE: &[&str] = &[
    "please", "pls", "also", "and", "oh", "btw", "just", "ok", "okay", "so", "hey", "can", "could",
    "would", "will", "you", "kindly", "and", "fyi", "actually", "now",
];

/// "Remember that my code is 1234" → the statement in third person, with no slot: what it
/// is about is unknown, so it never supersedes.
pub(super) fn remember(found: &Found) -> Vec<Fact> {
    if !found
        .prefix
        .iter()
        .all(|w| POLITE.contains(&w.norm.as_str()))
    {
        return Vec::new();
    }
    let rest = match found.rest.first() {
        Some(w) if w.norm == "that" => &found.rest[1..],
        // About the user: "remember my code ...", "don't forget I have ..."; "remember to add
        // error handling" is a to-do and "can you remember things?" a question.
        Some(w) if ["i", "my", "we", "our", "me"].contains(&w.norm.as_str()) => found.rest,
        _ => return Vec::new(),
    };
    let text = third_person(rest);
    if text.trim().is_empty() {
        return Vec::new();
    }
    vec![Fact {
        content: format!("{}.", capitalise(&text)),
        slot: None,
        value: text,
    }]
}
