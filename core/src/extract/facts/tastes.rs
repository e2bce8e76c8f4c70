//! Likes, dislikes, preferences and favourites: one `opinion:<thing>` slot per thing.

use super::personal::language_names;
use super::{fact, Fact};
use crate::extract::clause::Word;
use crate::extract::rules::Found;
use crate::extract::value::{
    contains, cut, cut_keeping, key, render, starts_with, third_person_within,
};

/// "My favorite color is green" → `favorite:color`.
pub(in crate::extract) fn favourite(found: &Found) -> Vec<Fact> {
    let what: Vec<&Word> = found.wild.clone();
    let value = cut(found.rest, &["and", "but", "because"]);
    let what_words: Vec<Word> = what.iter().map(|w| (*w).clone()).collect();
    let k = key(&what_words);
    if value.is_empty() || value.len() > 6 || k.is_empty() {
        return Vec::new();
    }
    let typed = if found.trigger.contains("favourite") {
        "favourite"
    } else {
        "favorite"
    };
    let text = third_person_within(value);
    fact(
        format!("The user's {typed} {} is {text}.", render(&what_words)),
        format!("favorite:{k}"),
        text,
    )
}

/// "Please reply in French" → `reply_language`.
pub(in crate::extract) fn reply_language(found: &Found) -> Vec<Fact> {
    match language_names(cut(found.rest, &["and", "but"])).first() {
        Some(lang) => fact(
            format!("The user wants replies in {lang}."),
            "reply_language",
            lang.clone(),
        ),
        None => Vec::new(),
    }
}

/// Words no liked thing starts with: "I like *it*", "I love *how* you ...", "I love *you*".
const NOT_A_THING: &[&str] = &[
    "to bother",
    "to ask",
    "to interrupt",
    "to admit",
    "to break",
    "to tell",
    "to disappoint",
    "to be",
    "to see",
    "to hear",
    "i",
    "we",
    "he",
    "she",
    "they",
    "it",
    "that",
    "this",
    "these",
    "those",
    "them",
    "you",
    "your",
    "yours",
    "what",
    "how",
    "when",
    "where",
    "which",
    "who",
    "why",
    "here",
    "there",
    "him",
    "her",
    "his",
    "about",
    "being",
    "the way",
    "to think",
    "to say",
    "to know",
    "that idea",
    "the idea",
    "the sound",
    "the answer",
    "the suggestion",
    "when",
    "if",
    "so",
    "more",
    "less",
    "most",
    "both",
    "one",
];

const THING_STOPS: &[&str] = &["and i", "but", "because", "with you", "from you", "for me"];

/// The thing liked or disliked and its key, or `None` when it is not a thing ("I like it").
fn thing(rest: &[Word]) -> Option<(String, String)> {
    let value = cut(rest, THING_STOPS);
    if value.is_empty() || value.len() > 8 || NOT_A_THING.iter().any(|t| starts_with(value, t)) {
        return None;
    }
    let key = key(value);
    (!key.is_empty()).then(|| (third_person_within(value), key))
}

/// The slot of an opinion about a thing: `reply_style` for how answers should be, else
/// `opinion:<key>`, shared by likes, dislikes and preferences of that thing.
fn opinion_slot(key: &str) -> String {
    let last = key.rsplit('_').next().unwrap_or(key);
    if ["answer", "response", "reply", "explanation"].contains(&last) {
        "reply_style".to_owned()
    } else {
        format!("opinion:{key}")
    }
}

fn opinion(rest: &[Word], phrase: impl Fn(&str) -> String) -> Vec<Fact> {
    match thing(rest) {
        Some((text, key)) => fact(phrase(&text), opinion_slot(&key), text),
        None => Vec::new(),
    }
}

/// "I like jazz", "I love green tea!" → "The user likes ..." in `opinion:<thing>`.
pub(in crate::extract) fn like(found: &Found) -> Vec<Fact> {
    opinion(found.rest, |t| format!("The user likes {t}."))
}

/// Comparisons a preference keeps in its text: "tea over coffee".
const PREFER_KEEPS: &[&str] = &[
    "over",
    "rather than",
    "instead of",
    "more than",
    "than",
    "to",
];

/// "I prefer brief responses" → "The user prefers ..." (the thing before "over"/"to" keys it).
pub(in crate::extract) fn prefer(found: &Found) -> Vec<Fact> {
    let rest = found.rest;
    let head = (1..rest.len())
        .find(|&i| ["to", "than", "over"].contains(&rest[i].norm.as_str()))
        .map_or(rest, |i| &rest[..i]);
    let Some((_, key)) = thing(head) else {
        return Vec::new();
    };
    let text = third_person_within(cut_keeping(rest, THING_STOPS, PREFER_KEEPS));
    fact(
        format!("The user prefers {text}."),
        opinion_slot(&key),
        text,
    )
}

/// "I don't like mushrooms" → dislikes; with "anymore" → "no longer likes".
pub(in crate::extract) fn dislike(found: &Found) -> Vec<Fact> {
    if contains(found.rest, "anymore") || contains(found.rest, "any more") {
        return no_longer_like(found);
    }
    opinion(found.rest, |t| format!("The user dislikes {t}."))
}

/// "I no longer like coffee", "I don't like coffee anymore" → "The user no longer likes ...",
/// in the same slot as the old liking, which it supersedes.
pub(in crate::extract) fn no_longer_like(found: &Found) -> Vec<Fact> {
    opinion(found.rest, |t| format!("The user no longer likes {t}."))
}
