//! The rule table: which phrasings make which memories. Each rule's builder (in
//! [`facts`](super::facts)) checks the words and may decline, so one trigger ("I'm ...") can
//! serve several rules (age, job, diet) without any of them misfiring.

use super::clause::{Clause, Word};
use super::facts as f;

/// One way users state something about themselves.
pub(super) struct Rule {
    /// Recorded as the memory's `extraction_rule`; stable, since stores are reopened with it.
    pub id: &'static str,
    /// Normalised phrases (contractions expanded, `*` = any one word) that introduce it,
    /// separated by `|`.
    pub triggers: &'static str,
    /// The memories the words after the trigger state; empty to decline.
    pub build: fn(&Found) -> Vec<f::Fact>,
    /// The memory type: `fact` or `preference`.
    pub source_type: &'static str,
    pub importance: f64,
    pub topics: &'static [&'static str],
    /// The user-summary key it establishes.
    pub summary_key: Option<&'static str>,
    /// Only when no other rule fired in the clause ("remember that ...", "hi, I'm Alice").
    pub fallback: bool,
}

/// Where a trigger matched in a clause.
pub(super) struct Found<'a> {
    /// The trigger that matched.
    pub trigger: &'static str,
    /// The clause's words before the trigger.
    pub prefix: &'a [Word],
    /// The words `*` stood for.
    pub wild: Vec<&'a Word>,
    /// The clause's words after the trigger.
    pub rest: &'a [Word],
    /// The trigger matched without its "I" ("Just moved to Calgary").
    pub subject_dropped: bool,
    pub clause: &'a Clause,
}

const fn rule(
    id: &'static str,
    triggers: &'static str,
    build: fn(&Found) -> Vec<f::Fact>,
    source_type: &'static str,
    importance: f64,
    topics: &'static [&'static str],
    summary_key: &'static str,
) -> Rule {
    Rule {
        id,
        triggers,
        build,
        source_type,
        importance,
        topics,
        summary_key: Some(summary_key),
        fallback: false,
    }
}

/// Every rule, in the order their memories are emitted within a clause.
pub(super) const RULES: &[Rule] = &[
    rule(
        "my name is",
        "my name is|call me|i am called|i go by|calls me|my first name is|name is",
        f::name,
        "fact",
        0.9,
        &["user", "name"],
        "name",
    ),
    rule(
        "i live in",
        "i live in|i am living in|i moved to|i have moved to|i moved back to|\
            i relocated to|i have relocated to|i am based in|i reside in|we live in|\
            we moved to|we have moved to|we moved here to|i moved here to|we are based in|i settled in|we relocated to|\
            we have relocated to|i have been living in|i have lived in|i am based out of|\
            we have been living in|we have lived in|i love living in|i like living in|\
            i enjoy living in|i have settled in|my home is in|i am now based in",
        f::home,
        "fact",
        0.8,
        &["user", "location"],
        "location",
    ),
    rule(
        "i am from",
        "i am from|i come from|i was born and raised in",
        f::origin,
        "fact",
        0.7,
        &["user", "origin"],
        "origin",
    ),
    rule(
        "i work as",
        "i work as|i am working as|i am employed as|my job is|my profession is|\
            my occupation is|i am a|i am an|i became a|i became an|as a|as an|\
            i have been a|i have been an",
        f::job,
        "fact",
        0.8,
        &["user", "job"],
        "job",
    ),
    rule(
        "i work at",
        "i work at|i work for|i am working at|i am working for|i am employed at|\
            i am employed by|i have a job at|i got a job at|i started working at|\
            i started working for|i have started working at|i work in * at|\
            i work in * * at|i am a * at|i am an * at|i am a * * at|i am an * * at",
        f::employer,
        "fact",
        0.7,
        &["user", "work"],
        "employer",
    ),
    rule(
        "my wife's name is",
        "my * name is|my * is called|my * is named|my * * name is|my * * is called|my * called|\
            my * named",
        f::relation,
        "fact",
        0.8,
        &["user", "family"],
        "family",
    ),
    rule(
        "my wife sarah",
        "my *|my * *",
        f::relation_named_inline,
        "fact",
        0.8,
        &["user", "family"],
        "family",
    ),
    rule(
        "i am married to",
        "i am married to|i married|i got married to",
        f::spouse,
        "fact",
        0.8,
        &["user", "family"],
        "family",
    ),
    rule(
        "my dog's name is",
        "my * name is|my * is called|my * is named|my * * name is|my * * is called|my * called|\
            my * named",
        f::named_pet,
        "fact",
        0.7,
        &["user", "pets"],
        "pets",
    ),
    rule(
        "my dog rex",
        "my *|my * *",
        f::pet_named_inline,
        "fact",
        0.7,
        &["user", "pets"],
        "pets",
    ),
    rule(
        "i have a pet",
        "i have|i have got|we have|we have got|i own|i got|i adopted|we adopted|we got",
        f::pets,
        "fact",
        0.7,
        &["user", "pets"],
        "pets",
    ),
    rule(
        "my timezone is",
        "my timezone is|my time zone is|my tz is|i am in|i am on",
        f::timezone,
        "fact",
        0.7,
        &["user", "timezone"],
        "timezone",
    ),
    rule(
        "my birthday is",
        "my birthday is|i was born on|my bday is|my birthday falls on",
        f::birthday,
        "fact",
        0.7,
        &["user", "birthday"],
        "birthday",
    ),
    rule(
        "i am n years old",
        "i am|i turned|my age is",
        f::age,
        "fact",
        0.6,
        &["user", "age"],
        "age",
    ),
    rule(
        "i speak",
        "i speak|i can speak|i am fluent in",
        f::languages,
        "fact",
        0.6,
        &["user", "language"],
        "languages",
    ),
    rule(
        "my native language is",
        "my native language is|my first language is|my mother tongue is|my native tongue is",
        f::native_language,
        "fact",
        0.7,
        &["user", "language"],
        "languages",
    ),
    rule(
        "reply in",
        "reply in|answer in|respond in|talk to me in|speak to me in|write to me in|\
            reply to me in|answer me in",
        f::reply_language,
        "preference",
        0.7,
        &["user", "preference", "language"],
        "preferences",
    ),
    rule(
        "i am vegetarian",
        "i am|i went|i have gone|i have become|i became",
        f::diet,
        "fact",
        0.7,
        &["user", "diet"],
        "diet",
    ),
    rule(
        "i am allergic to",
        "i am allergic to|i have an allergy to",
        f::allergy,
        "fact",
        0.8,
        &["user", "health"],
        "health",
    ),
    rule(
        "i prefer",
        "i prefer|i would prefer",
        f::prefer,
        "preference",
        0.7,
        &["user", "preference"],
        "preferences",
    ),
    rule(
        "i don't like",
        "i do not like|i dislike|i hate|i can not stand|i detest|i loathe|\
            i am not a fan of|i do not enjoy|i am not into|i do not care for|\
            i am not keen on|i do not love|i have never liked|i never liked|\
            i have never enjoyed|i never enjoyed",
        f::dislike,
        "preference",
        0.7,
        &["user", "preference", "dislikes"],
        "dislikes",
    ),
    rule(
        "i no longer like",
        "i no longer like|i no longer enjoy|i no longer love|i used to like|\
            i used to love|i used to enjoy|i stopped liking|i am no longer into|\
            i have gone off|i went off",
        f::no_longer_like,
        "preference",
        0.7,
        &["user", "preference", "dislikes"],
        "dislikes",
    ),
    rule(
        "my favorite is",
        "my favorite * is|my favourite * is|my favorite * * is|my favourite * * is",
        f::favourite,
        "preference",
        0.7,
        &["user", "preference", "favorite"],
        "likes",
    ),
    rule(
        "i like",
        "i like|i love|i enjoy|i adore|i am into|i am a fan of|i am fond of|\
            i am keen on|i am obsessed with|i am passionate about",
        f::like,
        "preference",
        0.7,
        &["user", "preference", "likes"],
        "likes",
    ),
    Rule {
        id: "hi i am",
        triggers: "i am|* here",
        build: f::greeting_name,
        source_type: "fact",
        importance: 0.9,
        topics: &["user", "name"],
        summary_key: Some("name"),
        fallback: true,
    },
    Rule {
        id: "remember that",
        triggers: "remember that|remember|do not forget that|do not forget|keep in mind that|\
            note that",
        build: f::remember,
        source_type: "fact",
        importance: 0.8,
        topics: &["user", "remember"],
        summary_key: None,
        fallback: true,
    },
];
