//! Where the user lives and where they come from.

use super::{fact, Fact};
use crate::extract::clause::Word;
use crate::extract::rules::Found;
use crate::extract::value::{cut, proper};

/// Words that end a place: "I moved to Berlin *last* year", "I live in Paris *with* my wife".
pub(in crate::extract) const PLACE_STOPS: &[&str] = &[
    "for",
    "with",
    "last",
    "next",
    "this",
    "a",
    "in",
    "ago",
    "about",
    "around",
    "near",
    "and",
    "or",
    "at",
    "on",
    "after",
    "before",
    "to",
    "from",
    "since",
    "because",
    "by",
    "i",
    "we",
    "my",
    "our",
    "permanently",
    "temporarily",
    "full-time",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "few",
    "several",
    "couple",
    "yesterday",
    "today",
    "tomorrow",
    "recently",
    "ages",
];

/// Words no place starts with: "I live in *a* flat", "I moved to *my* parents' house".
const NOT_A_PLACE: &[&str] = &[
    "a",
    "an",
    "my",
    "our",
    "his",
    "her",
    "their",
    "this",
    "that",
    "it",
    "here",
    "there",
    "fear",
    "hope",
    "denial",
    "peace",
    "town",
    "the",
    "city",
    "downtown",
    "suburbs",
    "work",
    "school",
    "college",
    "university",
    "church",
    "abroad",
    "overseas",
    "out",
    "home",
    "nowhere",
    "somewhere",
    "everywhere",
    "experience",
    "memory",
    "scratch",
];

/// Places whose "the" users type in lower case ("the us", "the netherlands").
const THE_PLACES: &[&str] = &[
    "us",
    "usa",
    "uk",
    "uae",
    "netherlands",
    "philippines",
    "bahamas",
    "states",
    "bay",
    "gambia",
    "czech",
    "dominican",
    "maldives",
];

/// A place of one to four words after a trigger ("the UK" keeps its article).
fn place(rest: &[Word]) -> Option<String> {
    let rest = match rest.first() {
        Some(w) if w.norm == "the" && rest.len() > 1 => {
            let inner = cut(&rest[1..], PLACE_STOPS);
            // "the UK", "the Netherlands"; "the support team" is no place.
            let named = inner.first().is_some_and(|w| {
                w.orig.starts_with(char::is_uppercase) || THE_PLACES.contains(&w.norm.as_str())
            });
            if !named || inner.len() > 3 {
                return None;
            }
            return Some(format!("the {}", proper(inner)));
        }
        _ => rest,
    };
    let value = cut(rest, PLACE_STOPS);
    // "... to Denver 2 years ago": a number ends the place.
    let value = match value
        .iter()
        .position(|w| w.norm.starts_with(|c: char| c.is_ascii_digit()))
    {
        Some(at) => &value[..at],
        None => value,
    };
    let ok = !value.is_empty()
        && value.len() <= 4
        && !NOT_A_PLACE.contains(&value[0].norm.as_str())
        && value[0]
            .norm
            .chars()
            .next()
            .is_some_and(char::is_alphabetic);
    ok.then(|| proper(value))
}

/// Without its "I", "moved to tears" is no move: the place must be typed as a name.
fn capitalised_if_subject_dropped(found: &Found) -> bool {
    !found.subject_dropped
        || found
            .rest
            .first()
            .is_some_and(|w| w.orig.starts_with(char::is_uppercase))
}

/// "I live in Paris", "I moved to Berlin" → `home_city`: where the user lives now.
pub(in crate::extract) fn home(found: &Found) -> Vec<Fact> {
    if !capitalised_if_subject_dropped(found) {
        return Vec::new();
    }
    match place(found.rest) {
        Some(city) => fact(format!("The user lives in {city}."), "home_city", city),
        None => Vec::new(),
    }
}

/// "I'm from Lyon" → `origin`: where the user comes from, which is not where they live.
pub(in crate::extract) fn origin(found: &Found) -> Vec<Fact> {
    if !capitalised_if_subject_dropped(found) {
        return Vec::new();
    }
    match place(found.rest) {
        Some(city) => fact(format!("The user is from {city}."), "origin", city),
        None => Vec::new(),
    }
}
