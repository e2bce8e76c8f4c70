//! What each rule makes of the words after its trigger: checks that they say what the rule
//! means, then the memory text (about "the user") and its slot.

use super::clause::Word;
use super::rules::Found;
use super::value::{
    article, capitalise, contains, cut, cut_keeping, fold, key, proper, render, third_person,
    third_person_within,
};

/// One memory a rule made: its text, its slot and the value its topics come from.
#[derive(Debug)]
pub(super) struct Fact {
    pub content: String,
    pub slot: Option<String>,
    pub value: String,
}

fn fact(content: String, slot: impl Into<String>, value: String) -> Vec<Fact> {
    vec![Fact {
        content,
        slot: Some(slot.into()),
        value,
    }]
}

/// Words a name never starts with: "call me *back*", "I go by *train*".
const NOT_A_NAME: &[&str] = &[
    "a", "an", "the", "back", "later", "tomorrow", "tonight", "today", "soon", "anytime",
    "whenever", "at", "on", "in", "by", "after", "before", "maybe", "sometime", "crazy",
    "old-fashioned", "out", "up", "daily", "asap", "that", "this", "it", "what", "whatever",
    "anything", "train", "bus", "car", "bike", "foot", "myself", "me", "you", "your", "my",
    "to", "with", "for", "from", "here", "there", "and", "or", "is", "just", "so", "very",
    "sorry", "fine", "good", "well", "great", "ok", "okay", "new", "sure", "ready", "done",
    "glad", "happy", "tired", "curious", "confused", "stuck", "excited", "interested", "still",
    "also", "currently", "about", "trying", "looking", "not", "going", "having", "of", "into",
    "when", "if", "like", "all", "one", "someone", "somebody", "vegan", "vegetarian", "home",
    "away", "busy", "free", "late", "early", "right", "wrong", "afraid", "lost", "hungry",
    "bored", "worried", "nervous", "thinking", "back", "pretty", "quite", "really",
];

const NAME_STOPS: &[&str] = &["and", "or", "for", "from", "instead", "because", "i", "in", "at"];

/// A name of one to three words, none of them a word a name never is.
fn name_words(rest: &[Word]) -> Option<&[Word]> {
    let value = cut(rest, NAME_STOPS);
    let ok = !value.is_empty()
        && value.len() <= 3
        && value
            .iter()
            .all(|w| w.norm.chars().all(|c| c.is_alphabetic() || "-'".contains(c)))
        && !value.iter().any(|w| NOT_A_NAME.contains(&w.norm.as_str()));
    ok.then_some(value)
}

/// "My name is alice smith" → `name`.
pub(super) fn name(found: &Found) -> Vec<Fact> {
    let Some(value) = name_words(found.rest) else {
        return Vec::new();
    };
    // "Don't call me Bob" and "my friends call me ..." are not the user's name; "calls me"
    // is only for "everyone calls me ...".
    if found.trigger == "calls me" && !found.prefix.iter().any(|w| w.norm == "everyone") {
        return Vec::new();
    }
    let name = proper(value);
    fact(format!("The user's name is {name}."), "name", name)
}

/// "Hi, I'm Alice" → `name`: only in a greeting, only a one- or two-word name.
pub(super) fn greeting_name(found: &Found) -> Vec<Fact> {
    let starts = found
        .prefix
        .iter()
        .all(|w| ["hi", "hello", "hey", "hiya", "there", "all", "everyone", "yo"].contains(&w.norm.as_str()));
    if !found.clause.greeting || !starts {
        return Vec::new();
    }
    match name_words(found.rest) {
        Some(value) if value.len() <= 2 && found.rest.len() == value.len() => {
            let name = proper(value);
            fact(format!("The user's name is {name}."), "name", name)
        }
        _ => Vec::new(),
    }
}

/// Words that end a place: "I moved to Berlin *last* year", "I live in Paris *with* my wife".
const PLACE_STOPS: &[&str] = &[
    "for", "with", "last", "next", "this", "a", "in", "ago", "about", "around", "near", "and",
    "or", "at", "on", "after", "before", "to", "from", "since", "because", "by", "i", "we",
    "my", "our", "permanently", "temporarily", "full-time",
];

/// Words no place starts with: "I live in *a* flat", "I moved to *my* parents' house".
const NOT_A_PLACE: &[&str] = &[
    "a", "an", "my", "our", "his", "her", "their", "this", "that", "it", "here", "there",
    "fear", "hope", "denial", "peace", "town", "the", "city", "downtown", "suburbs",
];

/// A place of one to four words after a trigger ("the UK" keeps its article).
fn place(rest: &[Word]) -> Option<String> {
    let rest = match rest.first() {
        Some(w) if w.norm == "the" && rest.len() > 1 => {
            let inner = cut(&rest[1..], PLACE_STOPS);
            if inner.is_empty() || NOT_A_PLACE.contains(&inner[0].norm.as_str()) {
                return None;
            }
            return Some(format!("the {}", proper(inner)));
        }
        _ => rest,
    };
    let value = cut(rest, PLACE_STOPS);
    let ok = !value.is_empty()
        && value.len() <= 4
        && !NOT_A_PLACE.contains(&value[0].norm.as_str())
        && value[0].norm.chars().next().is_some_and(char::is_alphabetic);
    ok.then(|| proper(value))
}

/// "I live in Paris", "I moved to Berlin" → `home_city`: where the user lives now.
pub(super) fn home(found: &Found) -> Vec<Fact> {
    match place(found.rest) {
        Some(city) => fact(format!("The user lives in {city}."), "home_city", city),
        None => Vec::new(),
    }
}

/// "I'm from Lyon" → `origin`: where the user comes from, which is not where they live.
pub(super) fn origin(found: &Found) -> Vec<Fact> {
    match place(found.rest) {
        Some(city) => fact(format!("The user is from {city}."), "origin", city),
        None => Vec::new(),
    }
}

/// Last words of a job: "I'm a *nurse*" is a job, "I'm a *fan* of ..." is not.
const JOBS: &[&str] = &[
    "nurse", "teacher", "engineer", "developer", "doctor", "lawyer", "designer", "programmer",
    "student", "accountant", "chef", "cook", "scientist", "researcher", "manager", "consultant",
    "architect", "writer", "journalist", "artist", "musician", "pharmacist", "dentist",
    "electrician", "plumber", "carpenter", "mechanic", "pilot", "firefighter", "paramedic",
    "surgeon", "therapist", "psychologist", "professor", "lecturer", "analyst", "banker",
    "farmer", "driver", "photographer", "translator", "editor", "librarian", "veterinarian",
    "vet", "waiter", "waitress", "barista", "baker", "cashier", "receptionist", "officer",
    "soldier", "secretary", "administrator", "sysadmin", "tester", "entrepreneur", "founder",
    "freelancer", "contractor", "intern", "physician", "economist", "mathematician",
    "physicist", "chemist", "biologist", "statistician", "marketer", "recruiter", "salesman",
    "saleswoman", "clerk", "technician", "attorney", "paralegal", "tutor", "coach",
    "instructor", "midwife", "caregiver", "janitor", "cleaner", "gardener", "illustrator",
    "animator", "producer", "director", "actor", "actress", "singer", "dancer", "painter",
    "sculptor", "novelist", "poet", "blogger", "streamer", "youtuber", "ceo", "cto", "cfo",
    "coo", "vp", "lead", "owner", "specialist", "coordinator", "assistant", "advisor",
    "adviser", "surveyor", "optician", "radiologist", "anesthesiologist", "pediatrician",
    "psychiatrist", "counselor", "counsellor", "social worker", "welder", "bartender",
    "courier", "postman", "firefighter", "policeman", "policewoman", "detective", "judge",
];

const JOB_STOPS: &[&str] = &[
    "at", "for", "in", "with", "from", "since", "by", "and", "on", "who", "but", "working",
    "so",
];

/// "I work as a nurse", "I'm a software engineer", "my job is nurse" → `job`.
pub(super) fn job(found: &Found) -> Vec<Fact> {
    // "I work for Acme as a designer": "as a" after a work verb of the user's.
    if found.trigger.starts_with("as ") {
        let worker = found.prefix.first().is_some_and(|w| w.norm == "i")
            && found
                .prefix
                .iter()
                .any(|w| ["work", "working", "employed", "started"].contains(&w.norm.as_str()));
        if !worker {
            return Vec::new();
        }
    }
    let explicit = !matches!(found.trigger, "i am a" | "i am an" | "my job is" | "i became a" | "i became an");
    let mut value = cut(found.rest, JOB_STOPS);
    if let Some(first) = value.first() {
        if ["a", "an"].contains(&first.norm.as_str()) {
            value = &value[1..];
        }
    }
    let ends_in_job = value
        .last()
        .is_some_and(|w| JOBS.contains(&w.norm.trim_end_matches('s')));
    if value.is_empty() || value.len() > 5 || !(explicit || ends_in_job) {
        return Vec::new();
    }
    // "I'm a fan of ..." and "I am a student of life" never reach here: the job noun must
    // end the phrase.
    let job = render(value).to_lowercase();
    let job = if job.split(' ').any(|w| ["ceo", "cto", "cfo", "coo", "vp"].contains(&w)) {
        render(value)
    } else {
        job
    };
    fact(
        format!("The user works as {} {job}.", article(&job)),
        "job",
        job.clone(),
    )
}

const EMPLOYER_STOPS: &[&str] = &[
    "as", "in", "since", "for", "doing", "on", "and", "where", "with", "from", "i", "part-time",
    "full-time", "remotely", "during", "nights", "every",
];

/// Words no employer starts with: "I work at *home*", "I work for *a living*".
const NOT_AN_EMPLOYER: &[&str] = &[
    "home", "night", "nights", "weekends", "the", "a", "it", "my", "this", "that", "least",
    "all", "hours", "money", "free", "fun",
];

/// "I work at Google", "I work for Acme Corp" → `employer`.
pub(super) fn employer(found: &Found) -> Vec<Fact> {
    let value = cut(found.rest, EMPLOYER_STOPS);
    if value.first().is_some_and(|w| w.norm == "myself") {
        return fact(
            "The user is self-employed.".to_owned(),
            "employer",
            "self-employed".into(),
        );
    }
    // "the hospital", "a bakery" are employers too when something follows the article.
    let (lead, body) = match value.first() {
        Some(w) if ["the", "a", "an"].contains(&w.norm.as_str()) && value.len() > 1 => {
            (format!("{} ", w.norm), &value[1..])
        }
        _ => (String::new(), value),
    };
    let ok = !body.is_empty()
        && body.len() <= 4
        && !NOT_AN_EMPLOYER.contains(&body[0].norm.as_str());
    if !ok {
        return Vec::new();
    }
    let name = format!("{lead}{}", render(body));
    fact(format!("The user works at {name}."), "employer", name)
}

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
    "sister", "brother", "son", "daughter", "friend", "best friend", "cousin", "colleague",
    "coworker", "child", "kid", "grandmother", "grandfather", "grandma", "grandpa", "aunt",
    "uncle", "niece", "nephew", "roommate", "flatmate", "neighbour", "neighbor",
];

/// The typed relation of `my * name is` / `my * is called`, its possessive dropped.
fn wild_phrase(found: &Found) -> String {
    found
        .wild
        .iter()
        .map(|w| w.norm.trim_end_matches("'s").trim_end_matches('\''))
        .collect::<Vec<_>>()
        .join(" ")
}

/// "My wife's name is Anna", "my sister is called Sara" → `wife`, `sister:sara`.
pub(super) fn relation(found: &Found) -> Vec<Fact> {
    let relation = wild_phrase(found);
    let Some(value) = name_words(found.rest) else {
        return Vec::new();
    };
    let name = proper(value);
    let slot = match ONE_PERSON.iter().find(|(typed, _)| *typed == relation) {
        Some((_, slot)) => (*slot).to_owned(),
        None if SEVERAL_PEOPLE.contains(&relation.as_str()) => {
            format!("{}:{}", relation.replace(' ', "_"), key_of(&name))
        }
        None => return Vec::new(),
    };
    fact(format!("The user's {relation} is called {name}."), slot, name)
}

/// "I'm married to Sam" → `spouse`.
pub(super) fn spouse(found: &Found) -> Vec<Fact> {
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

/// The slot species of a typed word, singular or plural.
fn species(word: &str) -> Option<&'static str> {
    let singular = [word, word.trim_end_matches('s'), word.trim_end_matches("es")];
    SPECIES
        .iter()
        .find(|(typed, _)| singular.contains(typed))
        .map(|(_, slot)| *slot)
}

fn key_of(name: &str) -> String {
    name.split(' ').map(fold).collect::<Vec<_>>().join("_")
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
pub(super) fn named_pet(found: &Found) -> Vec<Fact> {
    let typed = wild_phrase(found);
    let (Some(slot_species), Some(value)) = (species(&typed), name_words(found.rest)) else {
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
pub(super) fn pets(found: &Found) -> Vec<Fact> {
    let mut out = Vec::new();
    let mut words = found.rest;
    loop {
        let Some(count) = words.first().filter(|w| COUNTS.contains(&w.norm.as_str())) else {
            break;
        };
        // The species within three words ("a fluffy little cat").
        let Some(at) = (1..words.len().min(4)).find(|&i| species(&words[i].norm).is_some())
        else {
            break;
        };
        let typed = words[at].norm.clone();
        let slot_species = species(&typed).unwrap_or("pet");
        let mut next = at + 1;
        let mut name = None;
        if words
            .get(next)
            .is_some_and(|w| ["called", "named", "name"].contains(&w.norm.as_str()))
        {
            if let Some(value) = name_words(&words[next + 1..]) {
                next += 1 + value.len();
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

/// Zone abbreviations typed in any case.
fn zone(value: &[Word]) -> String {
    let text = render(value);
    let short = value.len() == 1 && text.chars().count() <= 5;
    let offset = ["utc", "gmt"].iter().any(|z| text.to_lowercase().starts_with(z));
    if short || offset {
        text.to_uppercase()
    } else if text.contains('/') {
        text
    } else {
        proper(value)
    }
}

/// "My timezone is CET", "I'm in Pacific time", "I'm on Eastern time" → `timezone`.
pub(super) fn timezone(found: &Found) -> Vec<Fact> {
    let value = cut(found.rest, &["and", "so", "for", "but"]);
    let value = if found.trigger.starts_with("my ") {
        value
    } else {
        // "I'm in <zone> time" / "time zone": the time word is what makes it a zone.
        let end = ["time zone", "timezone", "time"]
            .iter()
            .find_map(|t| {
                let n = t.split(' ').count();
                (value.len() > n && super::value::starts_with(&value[value.len() - n..], t))
                    .then(|| value.len() - n)
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
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec",
];

/// "My birthday is May 3rd", "I was born on 3 May 1990" → `birthday`.
pub(super) fn birthday(found: &Found) -> Vec<Fact> {
    let mut value = cut(found.rest, &["and", "so", "but", "which"]);
    if value.first().is_some_and(|w| w.norm == "on") {
        value = &value[1..];
    }
    let date_like = value.iter().any(|w| {
        MONTHS.contains(&w.norm.as_str()) || w.norm.chars().any(|c| c.is_ascii_digit())
    });
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
pub(super) fn age(found: &Found) -> Vec<Fact> {
    let Some(years) = found
        .rest
        .first()
        .and_then(|w| w.norm.parse::<u32>().ok())
        .filter(|n| (1..=120).contains(n))
    else {
        return Vec::new();
    };
    let after = &found.rest[1..];
    let said = after.is_empty()
        || ["years old", "year old", "yrs old", "yo", "y/o", "years of age", "now", "this year"]
            .iter()
            .any(|p| super::value::starts_with(after, p));
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
    "english", "french", "german", "spanish", "italian", "portuguese", "dutch", "swedish",
    "norwegian", "danish", "finnish", "polish", "czech", "slovak", "hungarian", "romanian",
    "greek", "turkish", "russian", "ukrainian", "arabic", "hebrew", "persian", "farsi", "hindi",
    "urdu", "bengali", "punjabi", "tamil", "telugu", "chinese", "mandarin", "cantonese",
    "japanese", "korean", "vietnamese", "thai", "indonesian", "malay", "tagalog", "swahili",
    "catalan", "basque", "welsh", "irish", "icelandic", "croatian", "serbian", "bulgarian",
    "esperanto", "latin",
];

/// The languages named in `words`, capitalised.
fn language_names(words: &[Word]) -> Vec<String> {
    words
        .iter()
        .filter(|w| LANGUAGES.contains(&w.norm.as_str()))
        .map(|w| capitalise(&w.norm))
        .collect()
}

/// "I speak French and German" → `language:french`, `language:german`: speaking one more
/// language never supersedes another.
pub(super) fn languages(found: &Found) -> Vec<Fact> {
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
pub(super) fn native_language(found: &Found) -> Vec<Fact> {
    match language_names(cut(found.rest, &["and", "but"])).first() {
        Some(lang) => fact(
            format!("The user's native language is {lang}."),
            "native_language",
            lang.clone(),
        ),
        None => Vec::new(),
    }
}

/// "Please reply in French" → `reply_language`.
pub(super) fn reply_language(found: &Found) -> Vec<Fact> {
    match language_names(cut(found.rest, &["and", "but"])).first() {
        Some(lang) => fact(
            format!("The user wants replies in {lang}."),
            "reply_language",
            lang.clone(),
        ),
        None => Vec::new(),
    }
}

/// "I'm vegetarian", "I went vegan" → `diet`.
pub(super) fn diet(found: &Found) -> Vec<Fact> {
    let words: Vec<&str> = cut(found.rest, PLACE_STOPS)
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
pub(super) fn allergy(found: &Found) -> Vec<Fact> {
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

/// Words no liked thing starts with: "I like *it*", "I love *how* you ...", "I love *you*".
const NOT_A_THING: &[&str] = &[
    "it", "that", "this", "these", "those", "them", "you", "your", "yours", "what", "how",
    "when", "where", "which", "who", "why", "here", "there", "him", "her", "his", "about",
    "being", "the way", "to think", "to say", "to know", "that idea", "the idea", "the sound",
    "the answer", "the suggestion", "when", "if", "so", "more", "less", "most", "both", "one",
];

const THING_STOPS: &[&str] = &["and i", "but", "because", "with you", "from you", "for me"];

/// The thing liked or disliked and its key, or `None` when it is not a thing ("I like it").
fn thing(rest: &[Word]) -> Option<(String, String)> {
    let value = cut(rest, THING_STOPS);
    if value.is_empty()
        || value.len() > 8
        || NOT_A_THING
            .iter()
            .any(|t| super::value::starts_with(value, t))
    {
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
pub(super) fn like(found: &Found) -> Vec<Fact> {
    opinion(found.rest, |t| format!("The user likes {t}."))
}

/// Comparisons a preference keeps in its text: "tea over coffee".
const PREFER_KEEPS: &[&str] = &["over", "rather than", "instead of", "more than", "than", "to"];

/// "I prefer brief responses" → "The user prefers ..." (the thing before "over"/"to" keys it).
pub(super) fn prefer(found: &Found) -> Vec<Fact> {
    let rest = found.rest;
    let head = (1..rest.len())
        .find(|&i| ["to", "than", "over"].contains(&rest[i].norm.as_str()))
        .map_or(rest, |i| &rest[..i]);
    let Some((_, key)) = thing(head) else {
        return Vec::new();
    };
    let text = third_person_within(cut_keeping(rest, THING_STOPS, PREFER_KEEPS));
    fact(format!("The user prefers {text}."), opinion_slot(&key), text)
}

/// "I don't like mushrooms" → dislikes; with "anymore" → "no longer likes".
pub(super) fn dislike(found: &Found) -> Vec<Fact> {
    if contains(found.rest, "anymore") || contains(found.rest, "any more") {
        return no_longer_like(found);
    }
    opinion(found.rest, |t| format!("The user dislikes {t}."))
}

/// "I no longer like coffee", "I don't like coffee anymore" → "The user no longer likes ...",
/// in the same slot as the old liking, which it supersedes.
pub(super) fn no_longer_like(found: &Found) -> Vec<Fact> {
    opinion(found.rest, |t| format!("The user no longer likes {t}."))
}

/// Words that may open a "remember ..." request: it is addressed to the assistant.
const POLITE: &[&str] = &[
    "please", "pls", "also", "and", "oh", "btw", "just", "ok", "okay", "so", "hey", "can",
    "could", "would", "will", "you", "kindly", "and", "fyi", "actually", "now",
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
        _ => found.rest,
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
