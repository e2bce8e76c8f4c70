//! The slot each phrasing fills.

use super::{facts, slot};

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
fn a_list_of_languages_is_one_fact_each() {
    let slots: Vec<String> = facts("I speak Dutch, English, and a bit of German.")
        .into_iter()
        .filter_map(|(_, s)| s)
        .collect();
    assert_eq!(
        slots,
        ["language:dutch", "language:english", "language:german"]
    );
    // Only a list that started with a language runs on past the comma.
    assert_eq!(
        facts("I live in Rome, English is spoken there"),
        [(
            "The user lives in Rome.".to_owned(),
            Some("home_city".to_owned())
        )]
    );
}
