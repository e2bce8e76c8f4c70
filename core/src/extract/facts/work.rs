//! What the user works as, and for whom.

use super::{fact, Fact};
use crate::extract::rules::Found;
use crate::extract::value::{article, cut, render};

/// Last words of a job: "I'm a *nurse*" is a job, "I'm a *fan* of ..." is not.
const JOBS: &[&str] = &[
    "nurse",
    "teacher",
    "engineer",
    "developer",
    "doctor",
    "lawyer",
    "designer",
    "programmer",
    "student",
    "accountant",
    "chef",
    "cook",
    "scientist",
    "researcher",
    "manager",
    "consultant",
    "architect",
    "writer",
    "journalist",
    "artist",
    "musician",
    "pharmacist",
    "dentist",
    "electrician",
    "plumber",
    "carpenter",
    "mechanic",
    "pilot",
    "firefighter",
    "paramedic",
    "surgeon",
    "therapist",
    "psychologist",
    "professor",
    "lecturer",
    "analyst",
    "banker",
    "farmer",
    "driver",
    "photographer",
    "translator",
    "editor",
    "librarian",
    "veterinarian",
    "vet",
    "waiter",
    "waitress",
    "barista",
    "baker",
    "cashier",
    "receptionist",
    "officer",
    "soldier",
    "secretary",
    "administrator",
    "sysadmin",
    "tester",
    "entrepreneur",
    "founder",
    "freelancer",
    "contractor",
    "intern",
    "physician",
    "economist",
    "mathematician",
    "physicist",
    "chemist",
    "biologist",
    "statistician",
    "marketer",
    "recruiter",
    "salesman",
    "saleswoman",
    "clerk",
    "technician",
    "attorney",
    "paralegal",
    "tutor",
    "coach",
    "instructor",
    "midwife",
    "caregiver",
    "janitor",
    "cleaner",
    "gardener",
    "illustrator",
    "animator",
    "producer",
    "director",
    "actor",
    "actress",
    "singer",
    "dancer",
    "painter",
    "sculptor",
    "novelist",
    "poet",
    "blogger",
    "streamer",
    "youtuber",
    "ceo",
    "cto",
    "cfo",
    "coo",
    "vp",
    "lead",
    "owner",
    "specialist",
    "coordinator",
    "assistant",
    "advisor",
    "adviser",
    "surveyor",
    "optician",
    "radiologist",
    "anesthesiologist",
    "pediatrician",
    "psychiatrist",
    "counselor",
    "counsellor",
    "social worker",
    "welder",
    "bartender",
    "courier",
    "postman",
    "firefighter",
    "policeman",
    "policewoman",
    "detective",
    "judge",
];

const JOB_STOPS: &[&str] = &[
    "at", "for", "in", "with", "from", "since", "by", "and", "on", "who", "but", "working", "so",
];

/// "I work as a nurse", "I'm a software engineer", "my job is nurse" → `job`.
pub(in crate::extract) fn job(found: &Found) -> Vec<Fact> {
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
    let explicit = !matches!(
        found.trigger,
        "i am a" | "i am an" | "my job is" | "i became a" | "i became an"
    );
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
    // Lower case, but acronyms stay as typed ("an ER nurse", "CTO").
    let job = render(value)
        .split(' ')
        .map(|w| {
            let acronym = w.chars().filter(|c| c.is_alphabetic()).count() >= 2
                && !w.chars().any(char::is_lowercase);
            if acronym {
                w.to_owned()
            } else {
                w.to_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    fact(
        format!("The user works as {} {job}.", article(&job)),
        "job",
        job.clone(),
    )
}

const EMPLOYER_STOPS: &[&str] = &[
    "as",
    "in",
    "since",
    "for",
    "doing",
    "on",
    "and",
    "where",
    "with",
    "from",
    "i",
    "part-time",
    "full-time",
    "remotely",
    "during",
    "nights",
    "every",
];

/// Words no employer starts with: "I work at *home*", "I work for *a living*".
const NOT_AN_EMPLOYER: &[&str] = &[
    "home", "night", "nights", "weekends", "the", "a", "it", "my", "this", "that", "least", "all",
    "hours", "money", "free", "fun",
];

/// "I work at Google", "I work for Acme Corp" → `employer`.
pub(in crate::extract) fn employer(found: &Found) -> Vec<Fact> {
    // "I'm an accountant at PwC": the words before "at" must be a job.
    // A student studies at a school; that is not an employer.
    if found.trigger.starts_with("i am a")
        && !found
            .wild
            .last()
            .is_some_and(|w| w.norm != "student" && JOBS.contains(&w.norm.trim_end_matches('s')))
    {
        return Vec::new();
    }
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
    let ok =
        !body.is_empty() && body.len() <= 4 && !NOT_AN_EMPLOYER.contains(&body[0].norm.as_str());
    if !ok {
        return Vec::new();
    }
    let name = format!("{lead}{}", render(body));
    fact(format!("The user works at {name}."), "employer", name)
}
