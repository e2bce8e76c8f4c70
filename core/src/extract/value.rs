//! Cutting the value out of the words after a trigger, rendering it about the user, and
//! normalising it into a slot.

use super::clause::Word;

/// Phrases that end a value in every rule ("I live in Paris *now*", "I like tea *too*").
const COMMON_STOPS: &[&str] = &[
    "now",
    "anymore",
    "any more",
    "these days",
    "nowadays",
    "lately",
    "too",
    "either",
    "though",
    "actually",
    "btw",
    "lol",
    "haha",
    "please",
    "thanks",
    "thank you",
    "for now",
    "at the moment",
    "right now",
    "currently",
    "if",
    "since",
    "which",
    "who",
    "where",
    "when",
    "while",
    "until",
    "unless",
    "as well",
    "a lot",
    "so much",
    "very much",
    "more than",
    "better than",
    "over",
    "rather than",
    "instead of",
    "instead",
    "from now on",
    "by the way",
    "ok",
    "okay",
    "again",
    "than",
    "whenever",
];

/// Words no value starts with: the statement is negated ("my name is not Bob").
const NEGATIONS: &[&str] = &["not", "no", "never", "nothing", "none"];

/// The value: the words after a trigger up to the first stop (common ones or `extra`), or
/// nothing when it is negated.
pub(super) fn cut<'a>(rest: &'a [Word], extra: &[&str]) -> &'a [Word] {
    cut_keeping(rest, extra, &[])
}

/// Whether `words` start with the space-separated normalised `phrase`.
pub(super) fn starts_with(words: &[Word], phrase: &str) -> bool {
    let mut words = words.iter();
    phrase
        .split(' ')
        .all(|part| words.next().is_some_and(|w| w.norm == part))
}

/// Whether `phrase` occurs anywhere in `words`.
pub(super) fn contains(words: &[Word], phrase: &str) -> bool {
    (0..words.len()).any(|i| starts_with(&words[i..], phrase))
}

/// The words as typed; a contraction whose parts are not all here shows its parts.
pub(super) fn render(words: &[Word]) -> String {
    groups(words).map(as_typed).collect::<Vec<_>>().join(" ")
}

/// First-person words about the speaker rewritten into third person about "the user", for
/// a whole sentence ("my code is 4417" → "the user's code is 4417").
pub(super) fn third_person(words: &[Word]) -> String {
    rewrite(words, true)
}

/// The same inside a sentence about the user ("my coffee black" → "their coffee black").
pub(super) fn third_person_within(words: &[Word]) -> String {
    rewrite(words, false)
}

fn rewrite(words: &[Word], opens: bool) -> String {
    let mut out: Vec<String> = Vec::new();
    // After a bare "I", the next verb agrees with "the user": "I need" → "the user needs".
    let mut verb_due = false;
    for group in groups(words) {
        let norms: Vec<&str> = group.iter().map(|w| w.norm.as_str()).collect();
        let text = match norms.as_slice() {
            ["i"] => "the user".to_owned(),
            ["i", "am"] => "the user is".to_owned(),
            ["i", "have"] => "the user has".to_owned(),
            ["i", rest] => format!("the user {rest}"),
            ["me"] | ["myself"] => "the user".to_owned(),
            ["my"] if opens && out.is_empty() => "the user's".to_owned(),
            ["my"] => "their".to_owned(),
            ["mine"] => "the user's".to_owned(),
            [word] if verb_due => agree(word, &as_typed(group)),
            _ => as_typed(group),
        };
        verb_due =
            norms == ["i"] || (verb_due && norms.len() == 1 && super::trigger::is_filler(norms[0]));
        out.push(text);
    }
    out.join(" ")
}

/// A verb after "I" made to agree with "the user" ("need" → "needs", "am" → "is").
fn agree(norm: &str, typed: &str) -> String {
    match norm {
        "am" => "is".to_owned(),
        "have" => "has".to_owned(),
        "do" => "does".to_owned(),
        "go" => "goes".to_owned(),
        "was" | "will" | "would" | "can" | "could" | "should" | "might" | "must" | "did"
        | "had" | "may" | "shall" => typed.to_owned(),
        _ if super::trigger::is_filler(norm) || !norm.chars().all(char::is_alphabetic) => {
            typed.to_owned()
        }
        // Past tense ("visited") agrees already; "need", "feed" do not end in a past "-ed".
        _ if norm.ends_with("ed") && !norm.ends_with("eed") => typed.to_owned(),
        _ if ["s", "sh", "ch", "x", "z", "o"]
            .iter()
            .any(|e| norm.ends_with(e)) =>
        {
            format!("{typed}es")
        }
        _ => match norm.strip_suffix('y') {
            Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => {
                format!("{}ies", &typed[..typed.len() - 1])
            }
            _ => format!("{typed}s"),
        },
    }
}

/// The value up to the first stop in `extra` or in the common stops not in `keep`.
pub(super) fn cut_keeping<'a>(rest: &'a [Word], extra: &[&str], keep: &[&str]) -> &'a [Word] {
    if rest
        .first()
        .is_some_and(|w| NEGATIONS.contains(&w.norm.as_str()))
    {
        return &[];
    }
    let end = (0..rest.len())
        .find(|&i| {
            COMMON_STOPS
                .iter()
                .filter(|s| !keep.contains(s))
                .chain(extra)
                .any(|stop| starts_with(&rest[i..], stop))
        })
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Splits words into the groups one typed token became (a contraction is one group).
fn groups(words: &[Word]) -> impl Iterator<Item = &[Word]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        if at >= words.len() {
            return None;
        }
        let start = at;
        at += 1;
        while at < words.len() && words[at].orig.is_empty() {
            at += 1;
        }
        Some(&words[start..at])
    })
}

fn as_typed(group: &[Word]) -> String {
    match group.first() {
        Some(first) if !first.orig.is_empty() => first.orig.clone(),
        _ => group
            .iter()
            .map(|w| w.norm.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// A proper name: every word capitalised unless typed with capitals already ("the UK",
/// "McDonald"); small linking words stay lower case inside ("Frankfurt am Main").
pub(super) fn proper(words: &[Word]) -> String {
    let rendered = render(words);
    rendered
        .split(' ')
        .enumerate()
        .map(|(i, word)| {
            let shouting = word.chars().filter(|c| c.is_alphabetic()).count() > 3
                && word.chars().all(|c| !c.is_lowercase());
            if shouting {
                capitalise(&word.to_lowercase())
            } else if word.chars().any(char::is_uppercase)
                || (i > 0 && ["the", "of", "am", "de", "la", "le", "upon", "on"].contains(&word))
            {
                word.to_owned()
            } else {
                capitalise(word)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` with its first letter in upper case.
pub(super) fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `a` or `an` before `word`.
pub(super) fn article(word: &str) -> &'static str {
    let vowel = word
        .chars()
        .next()
        .is_some_and(|c| "aeiouAEIOU".contains(c));
    if vowel {
        "an"
    } else {
        "a"
    }
}

/// Words a thing's key leaves out: articles, possessives, quantities.
const KEY_NOISE: &[&str] = &[
    "a", "an", "the", "my", "some", "any", "our", "all", "kinds", "kind", "of", "sorts", "sort",
    "good", "really", "music", "food", "to",
];

/// The verb of "I like *drinking* tea" or "I like *to* swim", left out so every phrasing of a
/// thing gives one key, but kept when only a preposition follows ("to *read* before bed").
const KEY_VERBS: &[&str] = &[
    "drinking",
    "eating",
    "having",
    "watching",
    "playing",
    "listening",
    "reading",
    "drink",
    "eat",
    "have",
    "watch",
    "play",
    "listen",
    "read",
];

const PREPOSITIONS: &[&str] = &[
    "before", "after", "at", "in", "on", "with", "during", "when", "while", "every", "by",
];

/// The normalised key of a thing ("I love *the green teas*" → `green_tea`): lower case,
/// accents folded, noise words dropped, plurals stemmed, `_` between words; empty when
/// nothing is left.
pub(super) fn key(words: &[Word]) -> String {
    let norms: Vec<&str> = words.iter().map(|w| w.norm.as_str()).collect();
    let mut kept: Vec<String> = Vec::new();
    for (i, word) in norms.iter().enumerate() {
        let verb = KEY_VERBS.contains(word)
            && norms[i + 1..]
                .iter()
                .find(|w| !KEY_VERBS.contains(*w))
                .is_some_and(|next| !PREPOSITIONS.contains(next));
        if !KEY_NOISE.contains(word) && !verb {
            kept.push(stem(&fold(word)));
        }
    }
    kept.retain(|w| !w.is_empty());
    // "I like music": the noise word is the thing itself.
    if kept.is_empty() {
        kept = norms
            .iter()
            .filter(|w| !["a", "an", "the", "my"].contains(*w))
            .map(|w| stem(&fold(w)))
            .filter(|w| !w.is_empty())
            .collect();
    }
    kept.join("_")
}

/// One word made slot-safe: `[a-z0-9-]`, accents folded, anything else dropped.
pub(super) fn fold(word: &str) -> String {
    word.to_lowercase()
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '-' => Some(c),
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => Some('a'),
            'ç' => Some('c'),
            'è' | 'é' | 'ê' | 'ë' => Some('e'),
            'ì' | 'í' | 'î' | 'ï' => Some('i'),
            'ñ' => Some('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => Some('o'),
            'ù' | 'ú' | 'û' | 'ü' => Some('u'),
            'ý' | 'ÿ' => Some('y'),
            'ß' => Some('s'),
            _ => None,
        })
        .collect()
}

/// A light plural stemmer, the same for singular and plural: "teas" → "tea", "movies" and
/// "movie" → "movy", "berries" and "berry" → "berry"; "glass", "news" stay.
fn stem(word: &str) -> String {
    let keep = ["ss", "us", "is", "os", "ws"];
    let base = match word.strip_suffix('s') {
        Some(base) if word.len() > 3 && !keep.iter().any(|k| word.ends_with(k)) => base,
        _ => word,
    };
    match base.strip_suffix("ie") {
        Some(root) if base.len() > 3 => format!("{root}y"),
        _ => base.to_owned(),
    }
}
