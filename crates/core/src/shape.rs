//! Reading a typed value from a YAML/JSON tree while collecting every shape problem (a
//! wrong type, an unknown or missing field), not just serde's first.
//!
//! Serde stops at the first error. The reader records it with its path, puts a stand-in of
//! the right type in its place (or removes the unknown field) and reads again, until the
//! tree reads. The stand-ins are never used: the caller reports the problems and drops
//! rule violations found under a field that already has a shape problem.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::quote::{clip_message, quote};

/// No spec has this many problems; past it the list would only be noise.
const MAX_PROBLEMS: usize = 100;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// What to do with the field a problem is at.
enum Fix {
    /// Drop it (an unknown field).
    Remove,
    /// Put a stand-in of the type serde wants there.
    StandIn,
}

/// Reads `T` from `tree`: the value when it has the right shape, and every shape problem,
/// each with its field path (`versions[0].url`).
pub(crate) fn read<T: DeserializeOwned>(mut tree: Value) -> (Option<T>, Vec<FieldError>) {
    let mut problems = Vec::new();
    let mut seen: Vec<Vec<Step>> = Vec::new();
    // Fields given a stand-in: a problem found inside one is the stand-in's, not the user's.
    let mut stood_in: Vec<Vec<Step>> = Vec::new();
    loop {
        let err = match attempt::<T>(&tree) {
            Ok(value) => return (Some(value), problems),
            Err(err) => err,
        };
        let (at, reason, fix) = explain(&tree, &err);
        // A stand-in that did not take, or no end to the problems: stop with what was found.
        if seen.contains(&at) || problems.len() >= MAX_PROBLEMS {
            return (None, problems);
        }
        seen.push(at.clone());
        let inside_stand_in = stood_in
            .iter()
            .any(|s| at.len() > s.len() && at.starts_with(s));
        if !inside_stand_in {
            problems.push(FieldError {
                path: render(&at),
                reason,
            });
        }
        if matches!(fix, Fix::StandIn) {
            stood_in.push(at.clone());
        }
        if !repair::<T>(&mut tree, &at, fix) {
            return (None, problems);
        }
    }
}

/// The first shape error of `tree` as `T`, with the path serde found it at.
struct ShapeError {
    path: Option<Vec<Step>>,
    message: String,
}

fn attempt<T: DeserializeOwned>(tree: &Value) -> Result<T, ShapeError> {
    serde_path_to_error::deserialize(tree).map_err(|err| {
        let path = steps(err.path());
        ShapeError {
            path,
            message: err.into_inner().to_string(),
        }
    })
}

/// The path as steps; `None` when serde could not name a step.
fn steps(path: &serde_path_to_error::Path) -> Option<Vec<Step>> {
    use serde_path_to_error::Segment;
    path.iter()
        .map(|segment| match segment {
            Segment::Seq { index } => Some(Step::Index(*index)),
            Segment::Map { key } => Some(Step::Key(key.clone())),
            Segment::Enum { .. } | Segment::Unknown => None,
        })
        .collect()
}

/// Where the problem is, what to tell the user, and how to get past it.
fn explain(tree: &Value, err: &ShapeError) -> (Vec<Step>, String, Fix) {
    let mut at = err.path.clone().unwrap_or_default();
    let message = err.message.as_str();
    if let Some(rest) = message.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default();
        at.push(Step::Key(field.to_owned()));
        return (at, "is required".to_owned(), Fix::StandIn);
    }
    if message.starts_with("unknown field `") {
        let known = message
            .split_once(", expected ")
            .map(|(_, list)| list.trim_start_matches("one of ").replace('`', ""));
        let reason = match known {
            Some(list) => format!("unknown field; the fields here are {list}"),
            None => "unknown field; this part takes no fields".to_owned(),
        };
        return (at, reason, Fix::Remove);
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let choices = rest
            .split_once(", expected ")
            .map(|(_, list)| list.replace('`', ""))
            .unwrap_or_default();
        let shown = node(tree, &at).map(show).unwrap_or_default();
        return (
            at,
            format!("{shown} is not a choice here; choose {choices}"),
            Fix::StandIn,
        );
    }
    let typed = ["invalid type: ", "invalid value: ", "invalid length "]
        .iter()
        .any(|p| message.starts_with(p));
    if typed && let Some((_, expected)) = message.rsplit_once(", expected ") {
        let shown = node(tree, &at).map(show).unwrap_or_default();
        return (at, wanted(&shown, expected), Fix::StandIn);
    }
    // A message of slogate's own (e.g. a duration it cannot read), already short.
    (at, clip_message(message), Fix::StandIn)
}

/// `shown is not <what serde expects, in the user's words>`.
fn wanted(shown: &str, expected: &str) -> String {
    let expected = expected.trim();
    let what = match expected {
        "u8" => "a whole number from 0 to 255".to_owned(),
        "u16" => "a whole number from 0 to 65535".to_owned(),
        "u32" => "a whole number from 0 to 4294967295".to_owned(),
        "u64" | "usize" => "a whole number of 0 or more".to_owned(),
        "i32" | "i64" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a string" if shown.parse::<f64>().is_ok() || shown == "true" || shown == "false" => {
            return format!("{shown} is not a string; write it in quotes (\"{shown}\")");
        }
        "a sequence" => "a list".to_owned(),
        _ if expected.starts_with("struct ") || expected == "a map" => {
            "a mapping of fields (key: value)".to_owned()
        }
        other => other.to_owned(),
    };
    format!("{shown} is not {what}")
}

/// A value as a message shows it: strings quoted and cut short, lists and mappings named.
fn show(value: &Value) -> String {
    match value {
        Value::Null => "an empty value".to_owned(),
        Value::String(s) => quote(s),
        Value::Number(n) => clip_message(&n.to_string()),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

fn node<'a>(tree: &'a Value, at: &[Step]) -> Option<&'a Value> {
    at.iter().try_fold(tree, |v, step| match step {
        Step::Key(k) => v.get(k),
        Step::Index(i) => v.get(i),
    })
}

/// Gets past the problem at `at`: removes the field, or finds a stand-in after which serde
/// no longer stops there. False when nothing works.
fn repair<T: DeserializeOwned>(tree: &mut Value, at: &[Step], fix: Fix) -> bool {
    let Some((last, parent_at)) = at.split_last() else {
        return try_stand_ins::<T>(tree, at, |tree, value| {
            *tree = value.unwrap_or(Value::Null);
            true
        });
    };
    let parent_at = parent_at.to_vec();
    let last = last.clone();
    let set = move |tree: &mut Value, value: Option<Value>| -> bool {
        let Some(parent) = node_mut(tree, &parent_at) else {
            return false;
        };
        match (&last, parent, value) {
            (Step::Key(k), Value::Object(map), Some(v)) => {
                map.insert(k.clone(), v);
            }
            (Step::Key(k), Value::Object(map), None) => {
                map.remove(k);
            }
            (Step::Index(i), Value::Array(items), Some(v)) if *i < items.len() => items[*i] = v,
            _ => return false,
        }
        true
    };
    match fix {
        Fix::Remove => set(tree, None),
        Fix::StandIn => try_stand_ins::<T>(tree, at, set),
    }
}

/// Tries a stand-in of each JSON type (and, last, leaving the field out) until serde gets
/// past `at`.
fn try_stand_ins<T: DeserializeOwned>(
    tree: &mut Value,
    at: &[Step],
    set: impl Fn(&mut Value, Option<Value>) -> bool,
) -> bool {
    let original = node(tree, at).cloned();
    let stand_ins = [
        Some(Value::from(0)),
        Some(Value::from("1s")),
        Some(Value::Bool(false)),
        Some(Value::Array(Vec::new())),
        Some(Value::Object(serde_json::Map::new())),
        None,
    ];
    for stand_in in stand_ins {
        if !set(tree, stand_in) {
            continue;
        }
        match attempt::<T>(tree) {
            Ok(_) => return true,
            Err(err) => {
                let (next, _, _) = explain(tree, &err);
                if next != at {
                    return true;
                }
            }
        }
    }
    set(tree, original);
    false
}

fn node_mut<'a>(tree: &'a mut Value, at: &[Step]) -> Option<&'a mut Value> {
    at.iter().try_fold(tree, |v, step| match step {
        Step::Key(k) => v.get_mut(k),
        Step::Index(i) => v.get_mut(i),
    })
}

/// `versions[0].url`; a key too long to show whole is cut.
fn render(at: &[Step]) -> String {
    let mut path = String::new();
    for step in at {
        match step {
            Step::Key(k) => {
                if !path.is_empty() {
                    path.push('.');
                }
                let shown = quote(k);
                if shown.len() == k.len() + 2 && !k.contains(['.', '[', ' ']) {
                    path.push_str(k);
                } else {
                    path.push_str(&shown);
                }
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

/// One problem found in a spec: where (`load.qps`, `slos[1].metric`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field, e.g. `versions[0].url`; empty for the document as a whole.
    pub path: String,
    /// Why the value is not accepted.
    pub reason: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}
