//! Which clauses state something, and how it is phrased about the user.

use super::{facts, slot};

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
