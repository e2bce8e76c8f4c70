//! Metadata filters for searches and listings: a small mem0-style expression (SPEC §6).
//!
//! `{"source_type": "fact"}` is equality; `{"importance": {"gte": 0.5}}` compares;
//! `{"topics": {"contains": "name"}}` tests membership; `{"user_id": {"in": ["a", "b"]}}`;
//! `{"and": [...]}`, `{"or": [...]}` and `{"not": {...}}` combine. Several keys in one object
//! must all hold.

use std::cmp::Ordering;

use serde_json::Value;

use chrono::{DateTime, Utc};

use crate::model::{timestamp, Memory};
use crate::{Error, Result};

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Every sub-filter holds.
    And(Vec<Filter>),
    /// At least one sub-filter holds.
    Or(Vec<Filter>),
    /// The sub-filter does not hold.
    Not(Box<Filter>),
    /// The memory is visible at `at`: not superseded unless `superseded`, not expired unless
    /// `expired` (SPEC §10). The manager adds it to every search and listing.
    Visible {
        /// The time expiry is judged at.
        at: DateTime<Utc>,
        /// Whether superseded memories pass.
        superseded: bool,
        /// Whether expired memories pass.
        expired: bool,
    },
    /// A condition on one metadata key.
    Field {
        /// The metadata key.
        key: String,
        /// What its value must satisfy.
        condition: Condition,
    },
}

/// A condition on one metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Equal (for arrays: the array contains it).
    Eq(Value),
    /// Not equal.
    Ne(Value),
    /// Greater than.
    Gt(Value),
    /// Greater than or equal.
    Gte(Value),
    /// Less than.
    Lt(Value),
    /// Less than or equal.
    Lte(Value),
    /// Equal to one of these.
    In(Vec<Value>),
    /// Equal to none of these.
    Nin(Vec<Value>),
    /// An array containing this value, or a string containing this substring.
    Contains(Value),
}

impl Filter {
    /// Parses a filter from JSON; errors name the offending path, e.g. `filter.importance.gte`.
    pub fn parse(value: &Value) -> Result<Filter> {
        parse_node(value, "filter")
    }

    /// A filter matching one `source_type`.
    pub fn source_type(source_type: impl Into<String>) -> Filter {
        Filter::Field {
            key: "source_type".into(),
            condition: Condition::Eq(Value::String(source_type.into())),
        }
    }

    /// Whether `memory` satisfies the filter.
    pub fn matches(&self, memory: &Memory) -> bool {
        match self {
            Filter::And(all) => all.iter().all(|f| f.matches(memory)),
            Filter::Or(any) => any.iter().any(|f| f.matches(memory)),
            Filter::Not(inner) => !inner.matches(memory),
            Filter::Visible {
                at,
                superseded,
                expired,
            } => {
                (*superseded || memory.superseded_by.is_none())
                    && (*expired || !memory.is_expired(*at))
            }
            Filter::Field { key, condition } => {
                condition.holds(memory.metadata.field(key).as_ref())
            }
        }
    }

    /// `filter` (if any) and `also`, as one filter.
    pub fn both(filter: Option<&Filter>, also: Filter) -> Filter {
        match filter {
            None => also,
            Some(Filter::And(parts)) => {
                let mut parts = parts.clone();
                parts.push(also);
                Filter::And(parts)
            }
            Some(other) => Filter::And(vec![other.clone(), also]),
        }
    }
}

fn parse_node(value: &Value, path: &str) -> Result<Filter> {
    let object = value
        .as_object()
        .ok_or_else(|| Error::invalid(path, "a filter must be a JSON object"))?;
    let mut parts = Vec::with_capacity(object.len());
    for (key, inner) in object {
        let here = format!("{path}.{key}");
        let part = match key.as_str() {
            "and" | "or" => {
                let items = inner
                    .as_array()
                    .ok_or_else(|| Error::invalid(&here, "expected an array of filters"))?;
                let subs = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| parse_node(item, &format!("{here}[{i}]")))
                    .collect::<Result<Vec<_>>>()?;
                if key == "and" {
                    Filter::And(subs)
                } else {
                    Filter::Or(subs)
                }
            }
            "not" => Filter::Not(Box::new(parse_node(inner, &here)?)),
            field => Filter::Field {
                key: field.to_owned(),
                condition: parse_condition(inner, &here)?,
            },
        };
        parts.push(part);
    }
    match parts.len() {
        1 => Ok(parts.remove(0)),
        _ => Ok(Filter::And(parts)),
    }
}

fn parse_condition(value: &Value, path: &str) -> Result<Condition> {
    let Some(object) = value.as_object() else {
        return Ok(Condition::Eq(value.clone()));
    };
    if object.len() != 1 {
        return Err(Error::invalid(
            path,
            "a condition object has exactly one operator (eq, ne, gt, gte, lt, lte, in, nin, contains)",
        ));
    }
    let (op, operand) = object.iter().next().expect("one entry, checked above");
    let list = |op: &str| -> Result<Vec<Value>> {
        operand
            .as_array()
            .cloned()
            .ok_or_else(|| Error::invalid(format!("{path}.{op}"), "expected an array"))
    };
    Ok(match op.as_str() {
        "eq" => Condition::Eq(operand.clone()),
        "ne" => Condition::Ne(operand.clone()),
        "gt" => Condition::Gt(operand.clone()),
        "gte" => Condition::Gte(operand.clone()),
        "lt" => Condition::Lt(operand.clone()),
        "lte" => Condition::Lte(operand.clone()),
        "in" => Condition::In(list("in")?),
        "nin" => Condition::Nin(list("nin")?),
        "contains" => Condition::Contains(operand.clone()),
        other => {
            return Err(Error::invalid(
                format!("{path}.{other}"),
                "unknown operator; use eq, ne, gt, gte, lt, lte, in, nin or contains",
            ))
        }
    })
}

impl Condition {
    fn holds(&self, actual: Option<&Value>) -> bool {
        let Some(actual) = actual else {
            // A missing key satisfies only the negative conditions.
            return matches!(self, Condition::Ne(_) | Condition::Nin(_));
        };
        match self {
            Condition::Eq(want) => equals(actual, want),
            Condition::Ne(want) => !equals(actual, want),
            Condition::Gt(want) => compare(actual, want) == Some(Ordering::Greater),
            Condition::Gte(want) => matches!(
                compare(actual, want),
                Some(Ordering::Greater | Ordering::Equal)
            ),
            Condition::Lt(want) => compare(actual, want) == Some(Ordering::Less),
            Condition::Lte(want) => {
                matches!(
                    compare(actual, want),
                    Some(Ordering::Less | Ordering::Equal)
                )
            }
            Condition::In(options) => options.iter().any(|want| equals(actual, want)),
            Condition::Nin(options) => !options.iter().any(|want| equals(actual, want)),
            Condition::Contains(want) => match (actual, want) {
                (Value::Array(items), _) => items.iter().any(|item| scalar_eq(item, want)),
                (Value::String(hay), Value::String(needle)) => hay.contains(needle.as_str()),
                _ => false,
            },
        }
    }
}

/// Equality where an array matches any of its elements, as in mem0 and MongoDB.
fn equals(actual: &Value, want: &Value) -> bool {
    match actual {
        Value::Array(items) if !want.is_array() => items.iter().any(|item| scalar_eq(item, want)),
        _ => scalar_eq(actual, want),
    }
}

fn scalar_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Orders numbers numerically, timestamps by time, other strings lexically.
fn compare(actual: &Value, want: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (actual.as_f64(), want.as_f64()) {
        return x.partial_cmp(&y);
    }
    let (x, y) = (actual.as_str()?, want.as_str()?);
    match (timestamp::parse(x), timestamp::parse(y)) {
        (Some(tx), Some(ty)) => Some(tx.cmp(&ty)),
        _ => Some(x.cmp(y)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta() -> Memory {
        let metadata = serde_json::from_value(json!({
            "source_type": "fact", "importance": 0.8,
            "timestamp": "2025-04-26T12:05:00Z", "topics": ["user", "name"], "user_id": "a"
        }))
        .expect("metadata");
        Memory::new(uuid::Uuid::nil(), "x", metadata)
    }

    #[test]
    fn visible_hides_superseded_and_expired_unless_asked() {
        let now = timestamp::now();
        let visible = |superseded, expired| Filter::Visible {
            at: now,
            superseded,
            expired,
        };
        let mut m = meta();
        assert!(visible(false, false).matches(&m));
        m.superseded_by = Some(uuid::Uuid::nil());
        assert!(!visible(false, false).matches(&m));
        assert!(visible(true, false).matches(&m));
        m.superseded_by = None;
        m.expires_at = Some(now - chrono::Duration::seconds(1));
        assert!(!visible(false, false).matches(&m));
        assert!(visible(false, true).matches(&m));
        m.expires_at = Some(now + chrono::Duration::seconds(60));
        assert!(visible(false, false).matches(&m));
    }

    fn check(filter: Value) -> bool {
        Filter::parse(&filter)
            .expect("valid filter")
            .matches(&meta())
    }

    #[test]
    fn every_operator_evaluates() {
        assert!(check(json!({"source_type": "fact"})));
        assert!(!check(json!({"source_type": "preference"})));
        assert!(check(json!({"importance": {"gte": 0.5}})));
        assert!(!check(json!({"importance": {"lt": 0.5}})));
        assert!(check(json!({"topics": {"contains": "name"}})));
        assert!(check(json!({"topics": "user"})));
        assert!(check(json!({"user_id": {"in": ["a", "b"]}})));
        assert!(check(json!({"user_id": {"nin": ["b"]}})));
        assert!(check(json!({"missing": {"ne": 1}})));
        assert!(!check(json!({"missing": 1})));
        assert!(check(json!({"timestamp": {"gt": "2025-04-26T12:00:00Z"}})));
        assert!(check(
            json!({"and": [{"source_type": "fact"}, {"not": {"user_id": "b"}}]})
        ));
        assert!(check(
            json!({"or": [{"source_type": "x"}, {"importance": {"gt": 0.7}}]})
        ));
        assert!(!check(json!({"source_type": "fact", "user_id": "b"})));
    }

    #[test]
    fn errors_name_the_path() {
        let err = Filter::parse(&json!({"importance": {"bigger": 1}})).expect_err("bad op");
        assert!(
            err.to_string().contains("filter.importance.bigger"),
            "{err}"
        );
        let err = Filter::parse(&json!({"and": [{"a": 1}, 3]})).expect_err("bad item");
        assert!(err.to_string().contains("filter.and[1]"), "{err}");
        let err = Filter::parse(&json!([1])).expect_err("not an object");
        assert!(err.to_string().contains("`filter`"), "{err}");
    }
}
