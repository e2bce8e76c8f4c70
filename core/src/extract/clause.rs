//! Splitting a user message into clauses of normalised words, and telling which clauses state
//! something (rather than ask, suppose or report).

/// One word of a clause: as typed, and normalised for matching.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Word {
    /// The word as typed (punctuation trimmed); empty for the second part of a contraction.
    pub orig: String,
    /// Lower case, curly apostrophes straightened, contractions expanded ("don't" → "do", "not").
    pub norm: String,
}

/// A run of words between clause breaks (commas, "but", "and I", ...).
#[derive(Debug, Clone, Default)]
pub(super) struct Clause {
    pub words: Vec<Word>,
    /// The clause is a question: it opens with an auxiliary ("do I ...") or a question word in a
    /// sentence ending in `?`, or it is the last clause of such a sentence.
    pub question: bool,
    /// The sentence opened with a greeting ("hi, I'm Alice"): "I'm <name>" then names the user.
    pub greeting: bool,
}

/// Contractions users type, with or without the apostrophe, and what they stand for.
const CONTRACTIONS: &[(&str, &[&str])] = &[
    ("i'm", &["i", "am"]),
    ("im", &["i", "am"]),
    ("i've", &["i", "have"]),
    ("ive", &["i", "have"]),
    ("i'd", &["i", "would"]),
    ("i'll", &["i", "will"]),
    ("we're", &["we", "are"]),
    ("we've", &["we", "have"]),
    ("don't", &["do", "not"]),
    ("dont", &["do", "not"]),
    ("doesn't", &["does", "not"]),
    ("didn't", &["did", "not"]),
    ("didnt", &["did", "not"]),
    ("can't", &["can", "not"]),
    ("cant", &["can", "not"]),
    ("cannot", &["can", "not"]),
    ("won't", &["will", "not"]),
    ("isn't", &["is", "not"]),
    ("aren't", &["are", "not"]),
    ("wasn't", &["was", "not"]),
    ("haven't", &["have", "not"]),
    ("wouldn't", &["would", "not"]),
    ("what's", &["what", "is"]),
    ("who's", &["who", "is"]),
    ("where's", &["where", "is"]),
    ("it's", &["it", "is"]),
    ("that's", &["that", "is"]),
    ("name's", &["name", "is"]),
    ("birthday's", &["birthday", "is"]),
    ("job's", &["job", "is"]),
    ("timezone's", &["timezone", "is"]),
];

/// Words that start a new clause wherever they stand.
const ALWAYS_BREAK: &[&str] = &[
    "but", "so", "because", "cause", "though", "although", "whereas", "however", "plus",
];

/// After "and" / "also" / "or", these start a new statement ("... and I live in Rome").
const NEW_SUBJECT: &[&str] = &["i", "my", "we", "our", "also", "btw", "oh", "please"];

/// Words that open a yes/no question ("do I like coffee?"), even without a question mark.
const AUXILIARIES: &[&str] = &[
    "do", "does", "did", "am", "is", "are", "was", "were", "can", "could", "would", "will",
    "should", "shall", "have", "has", "may", "might",
];

/// Question words: they open a question only in a sentence that ends in `?`.
const QUESTION_WORDS: &[&str] = &[
    "what", "where", "who", "whom", "whose", "why", "how", "which", "when",
];

/// Greeting words; a sentence starting with them makes "I'm <name>" an introduction.
const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "hiya",
    "howdy",
    "greetings",
    "yo",
    "heya",
];

/// Splits `text` into clauses.
pub(super) fn clauses(text: &str) -> Vec<Clause> {
    let mut out = Vec::new();
    // "Hey! I'm Lena": a sentence that only greets makes the next one a greeting too.
    let mut greeted = false;
    for (sentence, asks) in sentences(text) {
        let start = out.len();
        let mut current = Clause::default();
        let raw = unquoted(sentence.split_whitespace().collect());
        for (i, token) in raw.iter().enumerate() {
            let words = normalise(token);
            let first = words.first().map(|w| w.norm.as_str()).unwrap_or("");
            let next = raw
                .get(i + 1)
                .and_then(|t| normalise(t).into_iter().next())
                .map(|w| w.norm)
                .unwrap_or_default();
            let conjunction = words.len() == 1
                && (ALWAYS_BREAK.contains(&first)
                    || (["and", "also", "or", "then"].contains(&first)
                        && NEW_SUBJECT.contains(&next.as_str())));
            if conjunction || token.starts_with('(') {
                push(&mut out, std::mem::take(&mut current));
                if conjunction {
                    continue;
                }
            }
            current.words.extend(words);
            // "I got a puppy, her name is Bella": the name still belongs to the pet.
            let names_it = ["her", "his", "its"].contains(&next.as_str())
                && raw
                    .get(i + 2)
                    .is_some_and(|t| t.eq_ignore_ascii_case("name"));
            // "I speak Dutch, English and German": a list of languages is one clause.
            let lists_languages = token.ends_with(',')
                && (super::facts::is_language(&next) || next == "and")
                && current
                    .words
                    .iter()
                    .any(|w| super::facts::is_language(&w.norm));
            if (token.ends_with([',', ':', ')', '"']) && !names_it && !lists_languages)
                || *token == "-"
                || *token == "—"
            {
                push(&mut out, std::mem::take(&mut current));
            }
        }
        push(&mut out, current);
        let sentence_clauses = &mut out[start..];
        let greeting = greeted
            || sentence_clauses
                .first()
                .and_then(|c| c.words.first())
                .is_some_and(|w| GREETINGS.contains(&w.norm.as_str()));
        greeted = !sentence_clauses.is_empty()
            && sentence_clauses.iter().flat_map(|c| &c.words).all(|w| {
                GREETINGS.contains(&w.norm.as_str())
                    || ["there", "all", "everyone", "guys", "folks"].contains(&w.norm.as_str())
            });
        let last = sentence_clauses.len().saturating_sub(1);
        for (i, clause) in sentence_clauses.iter_mut().enumerate() {
            clause.greeting = greeting;
            clause.question = !is_request(&clause.words)
                && (opens_question(&clause.words, asks) || (asks && i == last));
        }
    }
    out
}

/// The tokens outside quotation marks: "Translate 'I live in Paris' into French" quotes a
/// statement, it does not make one. A quote opens at a word's start and closes at a word's
/// end; an opening mark with no closing one is left alone.
fn unquoted(tokens: Vec<&str>) -> Vec<&str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        let close = match token.chars().next() {
            Some('"') => Some('"'),
            Some('“') => Some('”'),
            Some('‘') => Some('’'),
            Some('\'') => Some('\''),
            _ => None,
        };
        let end = close.and_then(|close| {
            (i..tokens.len()).find(|&j| {
                let word = tokens[j].trim_end_matches(['.', ',', '!', '?', ';', ':']);
                let inner = if j == i {
                    &word[close.len_utf8().min(word.len())..]
                } else {
                    word
                };
                inner.ends_with(close) && (j > i || inner.len() > close.len_utf8())
            })
        });
        match end {
            Some(end) => i = end + 1,
            None => {
                out.push(token);
                i += 1;
            }
        }
    }
    out
}

fn push(out: &mut Vec<Clause>, clause: Clause) {
    if !clause.words.is_empty() {
        out.push(clause);
    }
}

/// Sentences of `text`, each with whether it ends in a question mark. A full stop splits only
/// before white space or the end, so "3.5" and "Node.js" stay whole.
fn sentences(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let ends = match c {
            '!' | '?' | ';' | '\n' => true,
            '.' => chars.peek().is_none_or(|n| n.is_whitespace()) && !ends_in_title(&current),
            _ => false,
        };
        if ends {
            // "?!" and "..." end one sentence, not several.
            let mut asks = c == '?';
            while let Some(&n) = chars.peek() {
                if !matches!(n, '!' | '?' | '.') {
                    break;
                }
                asks |= n == '?';
                chars.next();
            }
            out.push((std::mem::take(&mut current), asks));
        } else {
            current.push(c);
        }
    }
    out.push((current, false));
    out.retain(|(s, _)| !s.trim().is_empty());
    out
}

/// Titles whose full stop ends no sentence: "Call me Dr. Patel".
const TITLES: &[&str] = &["dr", "mr", "mrs", "ms", "prof", "st", "mt", "jr", "sr"];

fn ends_in_title(text: &str) -> bool {
    let last = text
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("");
    let before = text[..text.len() - last.len()].chars().next_back();
    before.is_none_or(|c| !c.is_alphanumeric()) && TITLES.contains(&last.to_lowercase().as_str())
}

/// A clause opening a question: an auxiliary first ("do I like coffee"), or a question word
/// first in a sentence that asks. "Can you call me Al?" is a request, not a question.
fn opens_question(words: &[Word], asks: bool) -> bool {
    let norms: Vec<&str> = words.iter().map(|w| w.norm.as_str()).collect();
    let Some(&first) = norms.first() else {
        return false;
    };
    if AUXILIARIES.contains(&first) {
        // "Don't forget ...", "don't call me Bob" command; "Don't I live in ...?" asks.
        return asks || norms.get(1) != Some(&"not");
    }
    asks && QUESTION_WORDS.contains(&first)
}

/// "Could you call me Liz?", "can you reply in French?": a request, though it asks.
fn is_request(words: &[Word]) -> bool {
    let norms: Vec<&str> = words.iter().map(|w| w.norm.as_str()).collect();
    norms.len() > 2
        && ["can", "could", "would", "will"].contains(&norms[0])
        && norms[1] == "you"
        && norms
            .iter()
            .skip(2)
            .find(|w| !["please", "just", "kindly", "also"].contains(*w))
            .is_some_and(|w| {
                [
                    "call", "remember", "note", "keep", "reply", "answer", "respond", "talk",
                    "speak", "write",
                ]
                .contains(w)
            })
}

/// The normalised words of one whitespace-separated token.
pub(super) fn normalise(token: &str) -> Vec<Word> {
    let orig = token
        .trim_matches(|c: char| !(c.is_alphanumeric() || "'’+-/".contains(c)))
        .trim_matches(|c: char| c == '\'' || c == '’' || c == '-')
        .to_owned();
    if orig.is_empty() {
        return Vec::new();
    }
    // Keep the full stop of a title ("Dr. Patel").
    let orig = match token.strip_suffix('.') {
        Some(title) if TITLES.contains(&title.to_lowercase().as_str()) => token.to_owned(),
        _ => orig,
    };
    let norm = orig.to_lowercase().replace('’', "'");
    match CONTRACTIONS.iter().find(|(c, _)| *c == norm) {
        Some((_, parts)) => parts
            .iter()
            .enumerate()
            .map(|(i, part)| Word {
                orig: if i == 0 { orig.clone() } else { String::new() },
                norm: (*part).to_owned(),
            })
            .collect(),
        None => vec![Word { orig, norm }],
    }
}
