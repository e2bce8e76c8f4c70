//! Facts about the user themselves: name, age, birthday, timezone, languages, diet, allergies.

use super::home::PLACE_STOPS;
use super::{fact, name_words, Fact, GREETING_WORDS};
use crate::extract::clause::Word;
use crate::extract::rules::Found;
use crate::extract::value::{
    capitalise, cut, key, proper, render, starts_with, third_person_within,
};

/// "My name is alice smith" → `name`.
pub(in crate::extract) fn name(found: &Found) -> Vec<Fact> {
    let Some(value) = name_words(found.rest) else {
        return Vec::new();
    };
    // "Don't call me Bob" and "my friends call me ..." are not the user's name; "calls me"
    // is only for "everyone calls me ...".
    if found.trigger == "calls me" && !found.prefix.iter().any(|w| w.norm == "everyone") {
        return Vec::new();
    }
    // "name's Jordan" only opens a clause; "my friend's name is" is someone else's.
    if found.trigger == "name is"
        && !found
            .prefix
            .iter()
            .all(|w| GREETING_WORDS.contains(&w.norm.as_str()))
    {
        return Vec::new();
    }
    let name = proper(value);
    fact(format!("The user's name is {name}."), "name", name)
}

/// "Hi, I'm Alice" → `name`: only in a greeting, only a one- or two-word name.
pub(in crate::extract) fn greeting_name(found: &Found) -> Vec<Fact> {
    let starts = found
        .prefix
        .iter()
        .all(|w| GREETING_WORDS.contains(&w.norm.as_str()));
    if !found.clause.greeting || !starts {
        return Vec::new();
    }
    // "Tom here": the name is what `*` stood for, and nothing follows.
    let rest = if found.trigger == "* here" {
        if !found.rest.is_empty()
            || !found
                .wild
                .iter()
                .all(|w| w.orig.starts_with(char::is_uppercase))
        {
            return Vec::new();
        }
        &found.clause.words[found.prefix.len()..found.prefix.len() + 1]
    } else {
        found.rest
    };
    match name_words(rest) {
        Some(value) if value.len() <= 2 && rest.len() == value.len() => {
            let name = proper(value);
            fact(format!("The user's name is {name}."), "name", name)
        }
        _ => Vec::new(),
    }
}

/// Zone abbreviations typed in any case.
fn zone(value: &[Word]) -> String {
    let text = render(value);
    let short = value.len() == 1 && text.chars().count() <= 5;
    let offset = ["utc", "gmt"]
        .iter()
        .any(|z| text.to_lowercase().starts_with(z));
    if short || offset {
        text.to_uppercase()
    } else if text.contains('/') {
        text
    } else {
        proper(value)
    }
}

/// "My timezone is CET", "I'm in Pacific time", "I'm on Eastern time" → `timezone`.
pub(in crate::extract) fn timezone(found: &Found) -> Vec<Fact> {
    let value = cut(found.rest, &["and", "so", "for", "but"]);
    let value = if found.trigger.starts_with("my ") {
        value
    } else {
        // "I'm in <zone> time" / "time zone": the time word is what makes it a zone.
        let end = ["time zone", "timezone", "time"].iter().find_map(|t| {
            let n = t.split(' ').count();
            (value.len() > n && starts_with(&value[value.len() - n..], t)).then(|| value.len() - n)
        });
        match end {
            Some(end) => {
                let inner = &value[..end];
                match inner.first() {
                    Some(w) if w.norm == "the" => &inner[1..],
                    _ => inner,
                }
            }
            None => return Vec::new(),
        }
    };
    if value.is_empty() || value.len() > 3 {
        return Vec::new();
    }
    let zone = zone(value);
    let zone = if !found.trigger.starts_with("my ") && zone.chars().any(char::is_lowercase) {
        format!("{zone} time")
    } else {
        zone
    };
    fact(format!("The user's timezone is {zone}."), "timezone", zone)
}

const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
];

/// "My birthday is May 3rd", "I was born on 3 May 1990" → `birthday`.
pub(in crate::extract) fn birthday(found: &Found) -> Vec<Fact> {
    let mut value = cut(found.rest, &["and", "so", "but", "which"]);
    if value.first().is_some_and(|w| w.norm == "on") {
        value = &value[1..];
    }
    let date_like = value
        .iter()
        .any(|w| MONTHS.contains(&w.norm.as_str()) || w.norm.chars().any(|c| c.is_ascii_digit()));
    if value.is_empty() || value.len() > 6 || !date_like {
        return Vec::new();
    }
    let date = value
        .iter()
        .map(|w| {
            if MONTHS.contains(&w.norm.as_str()) {
                capitalise(&w.norm)
            } else {
                render(std::slice::from_ref(w))
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    fact(format!("The user's birthday is {date}."), "birthday", date)
}

/// "I'm 34 years old", "I'm 34", "I just turned 40" → `age`.
pub(in crate::extract) fn age(found: &Found) -> Vec<Fact> {
    let Some(years) = found
        .rest
        .first()
        .and_then(|w| w.norm.parse::<u32>().ok())
        .filter(|n| (1..=120).contains(n))
    else {
        return Vec::new();
    };
    let after = &found.rest[1..];
    // "I turned 50 last week"; "I'm 19 and studying biology".
    let turned = found.trigger == "i turned"
        && after.first().is_none_or(|w| {
            [
                "last",
                "yesterday",
                "today",
                "this",
                "on",
                "in",
                "recently",
                "and",
            ]
            .contains(&w.norm.as_str())
        });
    let and_more = after.first().is_some_and(|w| w.norm == "and")
        && after.get(1).is_some_and(|w| {
            w.norm.ends_with("ing")
                || ["have", "live", "work", "single", "married", "retired"]
                    .contains(&w.norm.as_str())
        });
    let said = turned
        || and_more
        || after.is_empty()
        || [
            "years old",
            "year old",
            "yrs old",
            "yo",
            "y/o",
            "years of age",
            "now",
            "this year",
        ]
        .iter()
        .any(|p| starts_with(after, p));
    if !said {
        return Vec::new();
    }
    fact(
        format!("The user is {years} years old."),
        "age",
        years.to_string(),
    )
}

const LANGUAGES: &[&str] = &[
    "english",
    "french",
    "german",
    "spanish",
    "italian",
    "portuguese",
    "dutch",
    "swedish",
    "norwegian",
    "danish",
    "finnish",
    "polish",
    "czech",
    "slovak",
    "hungarian",
    "romanian",
    "greek",
    "turkish",
    "russian",
    "ukrainian",
    "arabic",
    "hebrew",
    "persian",
    "farsi",
    "hindi",
    "urdu",
    "bengali",
    "punjabi",
    "tamil",
    "telugu",
    "chinese",
    "mandarin",
    "cantonese",
    "japanese",
    "korean",
    "vietnamese",
    "thai",
    "indonesian",
    "malay",
    "tagalog",
    "swahili",
    "catalan",
    "basque",
    "welsh",
    "irish",
    "icelandic",
    "croatian",
    "serbian",
    "bulgarian",
    "esperanto",
    "latin",
];

/// Whether `word` (normalised) names a language.
pub(in crate::extract) fn is_language(word: &str) -> bool {
    LANGUAGES.contains(&word)
}

/// The languages named in `words`, capitalised.
pub(in crate::extract) fn language_names(words: &[Word]) -> Vec<String> {
    words
        .iter()
        .filter(|w| LANGUAGES.contains(&w.norm.as_str()))
        .map(|w| capitalise(&w.norm))
        .collect()
}

/// "I speak French and German" → `language:french`, `language:german`: speaking one more
/// language never supersedes another.
pub(in crate::extract) fn languages(found: &Found) -> Vec<Fact> {
    let value = cut(found.rest, &["with", "to", "at", "when", "but"]);
    language_names(value)
        .into_iter()
        .map(|lang| Fact {
            content: format!("The user speaks {lang}."),
            slot: Some(format!("language:{}", lang.to_lowercase())),
            value: lang,
        })
        .collect()
}

/// "My native language is Polish" → `native_language`.
pub(in crate::extract) fn native_language(found: &Found) -> Vec<Fact> {
    match language_names(cut(found.rest, &["and", "but"])).first() {
        Some(lang) => fact(
            format!("The user's native language is {lang}."),
            "native_language",
            lang.clone(),
        ),
        None => Vec::new(),
    }
}

/// "I'm vegetarian", "I went vegan" → `diet`.
pub(in crate::extract) fn diet(found: &Found) -> Vec<Fact> {
    let rest = match found.rest.first() {
        Some(w) if ["a", "an"].contains(&w.norm.as_str()) => &found.rest[1..],
        _ => found.rest,
    };
    let words: Vec<&str> = cut(rest, PLACE_STOPS)
        .iter()
        .map(|w| w.norm.as_str())
        .filter(|w| !["a", "an", "strict", "fully", "full"].contains(w))
        .collect();
    match words.as_slice() {
        [d, ..] if ["vegetarian", "vegan", "pescatarian", "pescetarian"].contains(d) => {
            if words.len() > 1 {
                return Vec::new();
            }
            fact(format!("The user is {d}."), "diet", (*d).to_owned())
        }
        _ => Vec::new(),
    }
}

/// "I'm allergic to peanuts" → `allergy:peanut`: one fact per allergen.
pub(in crate::extract) fn allergy(found: &Found) -> Vec<Fact> {
    let value = cut(found.rest, &["and", "so", "but"]);
    let k = key(value);
    if value.is_empty() || value.len() > 4 || k.is_empty() {
        return Vec::new();
    }
    let text = third_person_within(value);
    fact(
        format!("The user is allergic to {text}."),
        format!("allergy:{k}"),
        text,
    )
}
