//! Unit tests of the rule extractor; the labelled conversations are in `tests/extraction.rs`.

use super::*;
use chrono::Utc;

fn turn(role: Role, content: &str, i: u64) -> Turn {
    Turn {
        role,
        content: content.into(),
        turn_index: i,
        timestamp: Utc::now(),
        name: None,
    }
}

fn contents(turns: &[Turn]) -> Vec<String> {
    RuleExtractor
        .extract(turns)
        .into_iter()
        .map(|e| e.memory.content)
        .collect()
}

#[test]
fn user_statements_become_facts_about_the_user() {
    let got = contents(&[
        turn(
            Role::User,
            "Hi! My name is alice smith, and I live in Paris.",
            0,
        ),
        turn(Role::Assistant, "Nice to meet you, Alice.", 1),
        turn(Role::User, "I prefer brief responses. I like jazz music", 2),
        turn(
            Role::User,
            "Please remember that my sister is called Sara",
            3,
        ),
        turn(Role::User, "I don't like mushrooms", 4),
    ]);
    for want in [
        "The user's name is Alice Smith.",
        "The user lives in Paris.",
        "The user prefers brief responses.",
        "The user likes jazz music.",
        "The user's sister is called Sara.",
        "The user dislikes mushrooms.",
    ] {
        assert!(
            got.contains(&want.to_owned()),
            "missing {want:?} in {got:?}"
        );
    }
    assert!(got.contains(&"User: Hi! My name is alice smith, and I live in Paris.\nAssistant: Nice to meet you, Alice.".to_owned()));
}

#[test]
fn facts_carry_type_importance_topics_and_summary_key() {
    let got = RuleExtractor.extract(&[turn(Role::User, "my name is Bob", 0)]);
    let fact = &got[0];
    assert_eq!(fact.memory.memory_type, "fact");
    assert!(fact.memory.importance > 0.5);
    assert_eq!(fact.memory.metadata["topics"][1], "name");
    assert_eq!(fact.summary_key.as_deref(), Some("name"));
    assert_eq!(got[1].memory.memory_type, "conversation");
}

#[test]
fn phrases_match_only_at_word_boundaries() {
    assert!(
        contents(&[turn(Role::User, "Unlike yesterday I like tea", 0)])
            .contains(&"The user likes tea.".to_owned())
    );
    assert!(contents(&[turn(Role::User, "it is alike tea", 0)]).len() == 1);
}

/// The facts (not conversations) of one user message: `(content, slot)`.
fn facts(text: &str) -> Vec<(String, Option<String>)> {
    RuleExtractor
        .extract(&[turn(Role::User, text, 0)])
        .into_iter()
        .filter(|e| e.memory.memory_type != "conversation")
        .map(|e| (e.memory.content, e.slot))
        .collect()
}

fn slot(text: &str) -> Option<String> {
    let got = facts(text);
    assert_eq!(got.len(), 1, "{text:?} gives one fact: {got:?}");
    got[0].1.clone()
}

#[test]
fn every_phrasing_of_a_thing_gives_one_slot() {
    for text in [
        "I love green tea!",
        "I like green tea.",
        "i really like the green teas",
    ] {
        assert_eq!(slot(text).as_deref(), Some("opinion:green_tea"), "{text}");
    }
    // Likes, dislikes and preferences of one thing share it, so the newest wins.
    for text in [
        "I don't like coffee anymore",
        "I no longer like coffee",
        "I hate coffee",
        "I'm not into coffee anymore",
        "I prefer coffee over tea",
        "I like drinking coffee",
    ] {
        assert_eq!(slot(text).as_deref(), Some("opinion:coffee"), "{text}");
    }
    assert_eq!(
        facts("I don't like coffee anymore")[0].0,
        "The user no longer likes coffee."
    );
}

#[test]
fn slots_are_lower_case_and_slot_safe() {
    for text in [
        "I love Crème Brûlée",
        "I have a dog called Élodie",
        "My sister is called Zoë Smith",
        "I'm allergic to Brazil nuts",
    ] {
        let slot = slot(text).expect("a slot");
        assert!(
            slot.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_:-".contains(c)),
            "{text}: {slot}"
        );
    }
    assert_eq!(
        slot("I love Crème Brûlée").as_deref(),
        Some("opinion:creme_brulee")
    );
}

#[test]
fn pets_are_keyed_by_species_and_name() {
    assert_eq!(
        slot("I have a dog called Rex").as_deref(),
        Some("pet:dog:rex")
    );
    assert_eq!(
        slot("I have a cat called Rex").as_deref(),
        Some("pet:cat:rex")
    );
    assert_eq!(
        slot("my puppy's name is Rex").as_deref(),
        Some("pet:dog:rex")
    );
    assert_eq!(slot("I have two cats").as_deref(), Some("pet:cat"));
    assert_eq!(
        facts("I have a dog named Max and a cat called Tom"),
        [
            (
                "The user has a dog called Max.".to_owned(),
                Some("pet:dog:max".to_owned())
            ),
            (
                "The user has a cat called Tom.".to_owned(),
                Some("pet:cat:tom".to_owned())
            ),
        ]
    );
}

#[test]
fn one_person_relations_have_one_slot_and_others_one_per_name() {
    assert_eq!(slot("My wife's name is Anna").as_deref(), Some("wife"));
    assert_eq!(slot("my mum is called Jo").as_deref(), Some("mother"));
    assert_eq!(
        slot("My brother is called Ben").as_deref(),
        Some("brother:ben")
    );
    assert_eq!(
        facts("My wife is called Anna")[0].0,
        "The user's wife is called Anna."
    );
    // Another person's pet or name is no fact about the user.
    assert!(facts("My friend's dog is called Rex").is_empty());
    assert!(facts("my car is called Bessie").is_empty());
}

#[test]
fn home_and_origin_are_different_slots() {
    assert_eq!(slot("I moved to Berlin").as_deref(), Some("home_city"));
    assert_eq!(
        slot("I relocated to Lisbon in May").as_deref(),
        Some("home_city")
    );
    assert_eq!(slot("I'm from Lyon").as_deref(), Some("origin"));
    assert_eq!(
        facts("I moved to Berlin last year")[0].0,
        "The user lives in Berlin."
    );
}

#[test]
fn questions_suppositions_reports_and_negations_state_nothing() {
    for text in [
        "do I like coffee?",
        "Do I like coffee",
        "what's my name?",
        "Is my name Bob?",
        "if I lived in Paris I'd be happy",
        "If I live in Paris next year, what then?",
        "my friend lives in Rome",
        "My friend thinks I live in Rome",
        "I don't live in Paris",
        "I never said I live in Paris",
        "my name is not Bob",
        "Don't call me Bob",
        "call me back later",
        "I'd like a coffee",
        "I like it",
        "I love how you said that",
    ] {
        assert!(facts(text).is_empty(), "{text:?} gave {:?}", facts(text));
    }
}

#[test]
fn a_request_phrased_as_a_question_still_states() {
    assert_eq!(slot("Could you call me Liz?").as_deref(), Some("name"));
    assert_eq!(
        slot("can you please reply in French?").as_deref(),
        Some("reply_language")
    );
    assert!(facts("Can you tell me where I live?").is_empty());
}

#[test]
fn contractions_fillers_and_politeness_are_read_through() {
    for text in [
        "I'm based in Oslo",
        "im based in oslo",
        "I am based in Oslo",
        "Oh and btw, I just moved to Oslo!",
        "Actually, I live in Oslo now.",
        "Please remember that I live in Oslo",
        "I’ve moved to Oslo",
    ] {
        assert_eq!(
            facts(text),
            [(
                "The user lives in Oslo.".to_owned(),
                Some("home_city".to_owned())
            )],
            "{text}"
        );
    }
}

#[test]
fn several_statements_in_one_message_are_each_kept_in_order() {
    let got: Vec<String> =
        facts("My name is Priya, I live in Pune and I work as a data scientist.")
            .into_iter()
            .map(|(c, _)| c)
            .collect();
    assert_eq!(
        got,
        [
            "The user's name is Priya.",
            "The user lives in Pune.",
            "The user works as a data scientist.",
        ]
    );
}

#[test]
fn a_job_needs_a_job_word_unless_said_outright() {
    assert_eq!(slot("I'm a nurse").as_deref(), Some("job"));
    assert_eq!(slot("I work as a dog walker").as_deref(), Some("job"));
    assert!(facts("I'm a bit tired").is_empty());
    assert_eq!(
        slot("I'm a huge fan of Radiohead").as_deref(),
        Some("opinion:radiohead")
    );
    assert_eq!(
        facts("I work for myself")[0].0,
        "The user is self-employed."
    );
    assert!(facts("I work from home").is_empty());
}

#[test]
fn dates_ages_zones_and_languages() {
    assert_eq!(facts("I'm 34 years old")[0].0, "The user is 34 years old.");
    assert!(facts("I'm 5 minutes away").is_empty());
    assert_eq!(
        facts("my timezone is cet")[0].0,
        "The user's timezone is CET."
    );
    assert_eq!(
        facts("I'm on Eastern time")[0].0,
        "The user's timezone is Eastern time."
    );
    assert!(facts("I'm in a meeting").is_empty());
    assert_eq!(
        facts("My birthday is May 3rd")[0].0,
        "The user's birthday is May 3rd."
    );
    assert_eq!(
        facts("I speak French and German")
            .into_iter()
            .map(|(_, s)| s.unwrap_or_default())
            .collect::<Vec<_>>(),
        ["language:french", "language:german"]
    );
}

#[test]
fn third_person_agrees_with_the_user() {
    assert_eq!(
        facts("remember that I need a visa")[0].0,
        "The user needs a visa."
    );
    assert_eq!(
        facts("remember that I have a meeting on Friday")[0].0,
        "The user has a meeting on Friday."
    );
    assert_eq!(
        facts("I like my coffee black")[0].0,
        "The user likes their coffee black."
    );
    // What "remember that ..." is about is unknown: no slot, it never supersedes.
    assert_eq!(slot("Remember that my locker code is 4417"), None);
}

#[test]
fn rule_ids_are_unique_and_old_ones_keep_their_summary_keys() {
    let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "extraction_rule ids are unique");
    // Stores written before the rules grew carry these ids.
    for (id, key) in [
        ("my name is", Some("name")),
        ("i live in", Some("location")),
        ("i prefer", Some("preferences")),
        ("i don't like", Some("dislikes")),
        ("i like", Some("likes")),
        ("remember that", None),
    ] {
        let mut metadata = crate::model::Metadata {
            source_type: "fact".into(),
            importance: 0.5,
            timestamp: Utc::now(),
            topics: Vec::new(),
            extra: serde_json::Map::new(),
        };
        metadata.extra.insert("extraction_rule".into(), id.into());
        assert_eq!(summary_key_of(&metadata), key, "{id}");
    }
}

#[test]
fn conversations_have_no_slot() {
    let got = RuleExtractor.extract(&[turn(Role::User, "I live in Paris", 0)]);
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].memory.memory_type, "conversation");
    assert_eq!(got[1].slot, None);
    assert_eq!(got[0].slot.as_deref(), Some("home_city"));
}

#[test]
fn odd_input_never_panics() {
    let odd = [
        "",
        " ",
        ".",
        "?!?",
        "I",
        "my",
        "I'm",
        "call me",
        "my name is",
        "i have a",
        "my dog's",
        "I am",
        "remember",
        "remember that",
        "I'm in time",
        "my * name is",
        "İ like Ǆ",
        "’’’",
        "I like 🍵!",
        "I live in 東京",
        "Dr.",
        "Mr. .",
        "I am 0",
        "I am 999 years old",
        "I have a and a and",
        "a, b; c: d (e) \"f\" — g",
        "I YYY",
        "I ÿ",
        "my Y here",
    ];
    for text in odd {
        let _ = RuleExtractor.extract(&[turn(Role::User, text, 0)]);
    }
    let long = "I like tea and I live in Paris because ".repeat(2_000);
    assert!(!facts(&long).is_empty());
}

#[test]
fn triggers_are_normalised_phrases() {
    for rule in RULES {
        for trigger in rule.triggers.split('|') {
            assert!(
                !trigger.is_empty()
                    && trigger == trigger.trim()
                    && !trigger.contains("  ")
                    && trigger == trigger.to_lowercase()
                    && !trigger.contains('\''),
                "rule {:?}: trigger {trigger:?} is spelled as the normaliser writes words",
                rule.id
            );
        }
    }
}

#[test]
fn a_dropped_i_still_states_but_only_at_the_start() {
    assert_eq!(slot("Just moved to Calgary!").as_deref(), Some("home_city"));
    assert_eq!(
        slot("Not a fan of spicy food").as_deref(),
        Some("opinion:spicy")
    );
    assert_eq!(
        slot("Oh, finally settled in Barcelona").as_deref(),
        Some("home_city")
    );
    for text in [
        "Like I said, it works",
        "Love this!",
        "Have a great day",
        "Got it, thanks",
        "Live long and prosper",
        "Call me maybe",
        "Work at it",
        "Speak to you soon",
        "Moved to tears by that",
        "the dog moved to the sofa",
    ] {
        assert!(facts(text).is_empty(), "{text:?} gave {:?}", facts(text));
    }
}

#[test]
fn pets_named_later_and_lists_with_other_things() {
    assert_eq!(
        facts("I just got a new puppy, her name is Bella!")[0].0,
        "The user has a puppy called Bella."
    );
    assert_eq!(
        facts("We have three kids and a golden retriever"),
        [(
            "The user has a golden retriever.".to_owned(),
            Some("pet:dog".to_owned())
        )]
    );
    assert_eq!(slot("My husband's called Dave").as_deref(), Some("husband"));
    assert!(facts("My friend called me yesterday").is_empty());
}

#[test]
fn ages_and_places_end_where_the_time_phrase_starts() {
    assert_eq!(
        facts("I turned 50 last week")[0].0,
        "The user is 50 years old."
    );
    assert_eq!(
        facts("I'm 19 and studying biology")[0].0,
        "The user is 19 years old."
    );
    assert!(facts("I'm 5 and a half feet tall").is_empty());
    assert_eq!(
        facts("We moved here to Denver two years ago")[0].0,
        "The user lives in Denver."
    );
    assert_eq!(
        facts("I moved to Denver 2 years ago")[0].0,
        "The user lives in Denver."
    );
}

#[test]
fn quoted_requests_and_to_dos_state_nothing() {
    for text in [
        "Translate 'I live in Paris' into French.",
        "Translate \"my name is Bob\" please",
        "He wrote “I love jazz” on the wall",
        "Can you remember things between chats?",
        "Remember to add error handling.",
        "Don't forget to call mom",
        "I hate to bother you, but one more thing",
        "I'm from the support team",
        "I'm from work",
    ] {
        assert!(facts(text).is_empty(), "{text:?} gave {:?}", facts(text));
    }
    // A quote that never closes is an apostrophe, and the rest still counts.
    assert_eq!(slot("'cause I live in Oslo").as_deref(), Some("home_city"));
    assert_eq!(facts("I'm from the US")[0].0, "The user is from the US.");
    assert_eq!(
        facts("remember that the meeting is at 5")[0].0,
        "The meeting is at 5."
    );
}
