//! Finding a trigger in a clause, and telling whether what precedes it leaves a statement.

use super::clause::Word;

/// Words that may stand between the words of a trigger without changing what it says
/// ("I *just* moved to", "I *really* like", "I'm a *huge* fan of").
const FILLERS: &[&str] = &[
    "now",
    "currently",
    "just",
    "recently",
    "still",
    "actually",
    "really",
    "also",
    "finally",
    "totally",
    "absolutely",
    "truly",
    "honestly",
    "mostly",
    "usually",
    "generally",
    "definitely",
    "genuinely",
    "kinda",
    "originally",
    "even",
    "always",
    "already",
    "officially",
    "basically",
    "literally",
    "sometimes",
    "newly",
    "big",
    "huge",
    "massive",
    "very",
    "permanently",
    "happily",
];

/// Words that may open a clause before a statement whose "I" was dropped ("*Finally*
/// settled in Barcelona", "*Oh*, just moved to ...").
pub(super) fn opens_a_clause(word: &str) -> bool {
    is_filler(word)
        || [
            "oh", "btw", "so", "and", "well", "lol", "haha", "ok", "okay", "yeah", "yes", "hey",
            "update", "fyi", "also",
        ]
        .contains(&word)
}

/// Whether `word` may stand inside a trigger without changing it.
pub(super) fn is_filler(word: &str) -> bool {
    FILLERS.contains(&word)
}

/// Where `trigger` (space-separated normalised words; `*` stands for any one word) occurs in
/// `words`, fillers allowed between its words: the index of its first word, the index just
/// after its last, and the words `*` stood for.
pub(super) fn find_trigger<'a>(
    words: &'a [Word],
    trigger: &str,
    from: usize,
) -> Option<(usize, usize, Vec<&'a Word>)> {
    // Runs for every trigger on every clause: no allocation until a first word matches.
    let mut parts = trigger.split(' ');
    let first = parts.next()?;
    'start: for start in from..words.len() {
        if first != "*" && words[start].norm != first {
            continue;
        }
        let mut wild = Vec::new();
        if first == "*" {
            wild.push(&words[start]);
        }
        let mut at = start + 1;
        for part in parts.clone() {
            while at < words.len()
                && words[at].norm != part
                && FILLERS.contains(&words[at].norm.as_str())
            {
                at += 1;
            }
            let Some(word) = words.get(at) else {
                continue 'start;
            };
            if part == "*" {
                wild.push(word);
            } else if word.norm != part {
                continue 'start;
            }
            at += 1;
        }
        return Some((start, at, wild));
    }
    None
}

/// Words that, before a trigger in the same clause, mean the user is not stating it about
/// themselves now: negations ("I never said I live in ..."), suppositions ("if I lived in
/// ..."), and reported speech ("my friend thinks I like ...").
const NOT_A_STATEMENT: &[&str] = &[
    "not",
    "never",
    "no",
    "if",
    "unless",
    "suppose",
    "supposing",
    "imagine",
    "wish",
    "whether",
    "would",
    "might",
    "could",
    "maybe",
    "perhaps",
    "pretend",
    "hypothetically",
    "says",
    "said",
    "thinks",
    "thought",
    "told",
    "tells",
    "claims",
    "claimed",
    "believes",
    "assumed",
    "assumes",
    "asked",
    "asks",
    "heard",
    "wonder",
    "wondering",
    "should",
    "says",
    "joked",
];

/// Whether the words before a trigger leave it a plain statement. Everything up to a
/// "remember that" / "don't forget that" is the request itself and does not count.
pub(super) fn states(prefix: &[Word]) -> bool {
    // "Could you call me Al?" asks for something; its "could" supposes nothing.
    let request = prefix.len() >= 2
        && ["can", "could", "would", "will"].contains(&prefix[0].norm.as_str())
        && prefix[1].norm == "you";
    let prefix = if request { &prefix[2..] } else { prefix };
    let anchor = prefix
        .iter()
        .enumerate()
        .rev()
        .find(|(i, w)| {
            ["that", "remember", "know", "fyi", "btw"].contains(&w.norm.as_str())
                && (w.norm != "that"
                    || i.checked_sub(1)
                        .and_then(|p| prefix.get(p))
                        .is_some_and(|p| {
                            ["remember", "forget", "note", "mind", "know"]
                                .contains(&p.norm.as_str())
                        }))
        })
        .map_or(0, |(i, _)| i + 1);
    !prefix[anchor..]
        .iter()
        .any(|w| NOT_A_STATEMENT.contains(&w.norm.as_str()))
}
