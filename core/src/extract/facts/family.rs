//! The people and pets in the user's life: one-person relations supersede, the rest are keyed by name.

use super::{fact, key_of, name_words, wild_phrase, Fact, NOT_A_NAME};
use crate::extract::clause::Word;
use crate::extract::rules::Found;
use crate::extract::value::{article, proper, starts_with};

/// Relations that are one person at a time: a new name supersedes the old one.
const ONE_PERSON: &[(&str, &str)] = &[
    ("wife", "wife"),
    ("husband", "husband"),
    ("partner", "partner"),
    ("girlfriend", "girlfriend"),
    ("boyfriend", "boyfriend"),
    ("fiance", "fiance"),
    ("fiancé", "fiance"),
    ("fiancee", "fiancee"),
    ("fiancée", "fiancee"),
    ("spouse", "spouse"),
    ("mother", "mother"),
    ("mom", "mother"),
    ("mum", "mother"),
    ("father", "father"),
    ("dad", "father"),
    ("boss", "boss"),
    ("manager", "boss"),
];

/// Relations of which there can be several: each name is its own fact.
const SEVERAL_PEOPLE: &[&str] = &[
    "sister",
    "brother",
    "son",
    "daughter",
    "friend",
    "best friend",
    "cousin",
    "colleague",
    "coworker",
    "child",
    "kid",
    "grandmother",
    "grandfather",
    "grandma",
    "grandpa",
    "aunt",
    "uncle",
    "niece",
    "nephew",
    "roommate",
    "flatmate",
    "neighbour",
    "neighbor",
];

/// "My wife's name is Anna", "my sister is called Sara" → `wife`, `sister:sara`.
pub(in crate::extract) fn relation(found: &Found) -> Vec<Fact> {
    match name_words(found.rest) {
        Some(value) => relation_fact(&wild_phrase(found), value),
        None => Vec::new(),
    }
}

fn relation_fact(relation: &str, value: &[Word]) -> Vec<Fact> {
    let name = proper(value);
    let slot = match ONE_PERSON.iter().find(|(typed, _)| *typed == relation) {
        Some((_, slot)) => (*slot).to_owned(),
        None if SEVERAL_PEOPLE.contains(&relation) => {
            format!("{}:{}", relation.replace(' ', "_"), key_of(&name))
        }
        None => return Vec::new(),
    };
    fact(
        format!("The user's {relation} is called {name}."),
        slot,
        name,
    )
}

/// A name typed with a capital right after "my <relation>" ("my wife Sarah loves sushi"):
/// lower-case words there are verbs or nouns ("my wife loves"), never names.
fn inline_name<'a>(found: &Found<'a>) -> Option<&'a [Word]> {
    let first = found.rest.first()?;
    let capital = first.orig.chars().next().is_some_and(char::is_uppercase);
    let possessive = found.wild.iter().any(|w| w.norm.ends_with("'s"));
    if !capital || possessive {
        return None;
    }
    let value = name_words(&found.rest[..1])?;
    // "My Dog Is Great": every word capitalised is a title, not a name.
    let titled = found.rest.get(1).is_some_and(|w| {
        w.orig.chars().next().is_some_and(char::is_uppercase)
            && NOT_A_NAME.contains(&w.norm.as_str())
    });
    (!titled).then_some(value)
}

/// "My wife Sarah loves sushi" → `wife`, "my friend Tom ..." → `friend:tom`.
pub(in crate::extract) fn relation_named_inline(found: &Found) -> Vec<Fact> {
    match inline_name(found) {
        Some(value) => relation_fact(&wild_phrase(found), value),
        None => Vec::new(),
    }
}

/// "My cat Luna just turned 3" → `pet:cat:luna`.
pub(in crate::extract) fn pet_named_inline(found: &Found) -> Vec<Fact> {
    let typed = wild_phrase(found);
    match (pet_species(&typed), inline_name(found)) {
        (Some((typed, slot_species)), Some(value)) => {
            vec![pet_fact(&typed, slot_species, Some(proper(value)))]
        }
        _ => Vec::new(),
    }
}

/// "I'm married to Sam" → `spouse`.
pub(in crate::extract) fn spouse(found: &Found) -> Vec<Fact> {
    match name_words(found.rest) {
        Some(value) => {
            let name = proper(value);
            fact(format!("The user is married to {name}."), "spouse", name)
        }
        None => Vec::new(),
    }
}

/// Pet species, with the species their slot uses ("puppy" is a dog).
const SPECIES: &[(&str, &str)] = &[
    ("dog", "dog"),
    ("puppy", "dog"),
    ("pup", "dog"),
    ("cat", "cat"),
    ("kitten", "cat"),
    ("kitty", "cat"),
    ("parrot", "parrot"),
    ("bird", "bird"),
    ("budgie", "budgie"),
    ("rabbit", "rabbit"),
    ("bunny", "rabbit"),
    ("hamster", "hamster"),
    ("fish", "fish"),
    ("goldfish", "goldfish"),
    ("turtle", "turtle"),
    ("tortoise", "tortoise"),
    ("snake", "snake"),
    ("lizard", "lizard"),
    ("gecko", "gecko"),
    ("horse", "horse"),
    ("pony", "pony"),
    ("ferret", "ferret"),
    ("gerbil", "gerbil"),
    ("mouse", "mouse"),
    ("rat", "rat"),
    ("chicken", "chicken"),
    ("hedgehog", "hedgehog"),
    ("guinea-pig", "guinea_pig"),
    ("pig", "pig"),
    ("goat", "goat"),
    ("iguana", "iguana"),
    ("chinchilla", "chinchilla"),
];

/// Breeds, as the species their slot uses.
const BREEDS: &[(&str, &str)] = &[
    ("retriever", "dog"),
    ("labrador", "dog"),
    ("poodle", "dog"),
    ("beagle", "dog"),
    ("terrier", "dog"),
    ("bulldog", "dog"),
    ("husky", "dog"),
    ("dachshund", "dog"),
    ("corgi", "dog"),
    ("collie", "dog"),
    ("spaniel", "dog"),
    ("chihuahua", "dog"),
    ("pug", "dog"),
    ("labradoodle", "dog"),
    ("shepherd", "dog"),
    ("greyhound", "dog"),
    ("rottweiler", "dog"),
    ("schnauzer", "dog"),
    ("tabby", "cat"),
    ("siamese", "cat"),
];

/// Words typed before a breed that belong to it ("golden retriever", "border collie").
const BREED_FIRST_WORDS: &[&str] = &[
    "golden",
    "german",
    "french",
    "english",
    "border",
    "jack",
    "yorkshire",
    "siberian",
    "cocker",
    "springer",
    "bernese",
    "australian",
    "maine",
    "black",
    "chocolate",
    "yellow",
];

/// The slot species of a typed word (or two-word breed), singular or plural.
fn pet_species(typed: &str) -> Option<(String, &'static str)> {
    let last = typed.rsplit(' ').next().unwrap_or(typed);
    let first = typed.split(' ').next().unwrap_or(typed);
    let two_words = typed.contains(' ');
    if let Some(slot) = species(last) {
        return (!two_words).then(|| (typed.to_owned(), slot));
    }
    let breed = BREEDS
        .iter()
        .find(|(b, _)| *b == last || last.trim_end_matches('s') == *b)
        .map(|(_, slot)| *slot)?;
    (!two_words || BREED_FIRST_WORDS.contains(&first)).then(|| (typed.to_owned(), breed))
}

/// The slot species of a typed word, singular or plural.
fn species(word: &str) -> Option<&'static str> {
    let singular = [
        word,
        word.trim_end_matches('s'),
        word.trim_end_matches("es"),
    ];
    SPECIES
        .iter()
        .find(|(typed, _)| singular.contains(typed))
        .map(|(_, slot)| *slot)
}

fn pet_fact(typed: &str, slot_species: &str, name: Option<String>) -> Fact {
    match name {
        Some(name) => Fact {
            content: format!("The user has {} {typed} called {name}.", article(typed)),
            slot: Some(format!("pet:{slot_species}:{}", key_of(&name))),
            value: format!("{typed} {name}"),
        },
        None => Fact {
            content: format!("The user has {} {typed}.", article(typed)),
            slot: Some(format!("pet:{slot_species}")),
            value: typed.to_owned(),
        },
    }
}

/// "My dog's name is Rex", "my cat is called Tom" → `pet:dog:rex`, `pet:cat:tom`.
pub(in crate::extract) fn named_pet(found: &Found) -> Vec<Fact> {
    let (Some((typed, slot_species)), Some(value)) =
        (pet_species(&wild_phrase(found)), name_words(found.rest))
    else {
        return Vec::new();
    };
    vec![pet_fact(&typed, slot_species, Some(proper(value)))]
}

/// Counts before a species: "a dog", "two cats".
const COUNTS: &[&str] = &[
    "a", "an", "one", "two", "three", "four", "five", "some", "2", "3", "4", "5", "new",
];

/// "I have a dog called Rex and a cat named Tom", "I've got two cats" → one fact per pet:
/// `pet:<species>:<name>` when named, `pet:<species>` when not. A new pet never supersedes
/// another; restating one adds nothing.
pub(in crate::extract) fn pets(found: &Found) -> Vec<Fact> {
    let mut out = Vec::new();
    let mut words = found.rest;
    // "three kids and a dog": items that are not pets are passed over.
    while let Some(first) = words.first() {
        if !COUNTS.contains(&first.norm.as_str()) {
            match words.iter().position(|w| w.norm == "and") {
                Some(and) if out.is_empty() || and == 0 => {
                    words = &words[and + 1..];
                    continue;
                }
                _ => break,
            }
        }
        let count = first;
        // The species within three words ("a fluffy little cat", "a golden retriever").
        let Some((at, typed, slot_species)) = (1..words.len().min(4)).find_map(|i| {
            let one = pet_species(&words[i].norm);
            let two = (i > 1)
                .then(|| pet_species(&format!("{} {}", words[i - 1].norm, words[i].norm)))
                .flatten();
            two.or(one).map(|(typed, slot)| (i, typed, slot))
        }) else {
            // "three kids and a dog": not a pet; the next item may be.
            match words.iter().position(|w| w.norm == "and") {
                Some(and) => {
                    words = &words[and + 1..];
                    continue;
                }
                None => break,
            }
        };
        let mut next = at + 1;
        let mut name = None;
        // "a dog called Rex", "a puppy, her name is Bella".
        let naming = [
            "called",
            "named",
            "name",
            "her name is",
            "his name is",
            "its name is",
        ]
        .iter()
        .find(|p| starts_with(&words[next.min(words.len())..], p));
        if let Some(naming) = naming {
            let after = next + naming.split(' ').count();
            if let Some(value) = name_words(&words[after..]) {
                next = after + value.len();
                name = Some(proper(value));
            }
        }
        let plural = !["a", "an", "one", "new"].contains(&count.norm.as_str());
        if plural && name.is_none() {
            out.push(Fact {
                content: format!("The user has {} {typed}.", count.norm),
                slot: Some(format!("pet:{slot_species}")),
                value: typed.clone(),
            });
        } else {
            out.push(pet_fact(&typed, slot_species, name));
        }
        match words.get(next) {
            Some(w) if w.norm == "and" => words = &words[next + 1..],
            _ => break,
        }
    }
    out
}
