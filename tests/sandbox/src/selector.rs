//! Label and field selectors, as list and watch take them in the query
//! (`labelSelector=app=web,tier!=db`, `fieldSelector=metadata.name=web`).
//!
//! Label selectors support the full kube syntax (`=`, `==`, `!=`, `in`,
//! `notin`, existence and `!key`). Field selectors support what kube-apiserver
//! supports for the kinds served here; any other field is rejected with the
//! real `field label not supported` error, because a client relying on an
//! unsupported field would fail against a real server too.

use serde_json::Value;

use crate::store::Kind;

#[derive(Debug, Clone, PartialEq)]
enum LabelTerm {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    terms: Vec<LabelTerm>,
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut terms = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            terms.push(parse_label_term(part)?);
        }
        Ok(LabelSelector { terms })
    }

    pub fn matches(&self, labels: &Value) -> bool {
        let get = |k: &str| labels.get(k).and_then(Value::as_str);
        self.terms.iter().all(|t| match t {
            LabelTerm::Equals(k, v) => get(k) == Some(v.as_str()),
            LabelTerm::NotEquals(k, v) => get(k) != Some(v.as_str()),
            LabelTerm::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelTerm::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelTerm::Exists(k) => get(k).is_some(),
            LabelTerm::NotExists(k) => get(k).is_none(),
        })
    }
}

/// Splits at commas that are not inside `( )`.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn parse_label_term(part: &str) -> Result<LabelTerm, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(LabelTerm::NotExists(key.trim().to_owned()));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(LabelTerm::NotEquals(
            k.trim().to_owned(),
            v.trim().to_owned(),
        ));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(LabelTerm::Equals(k.trim().to_owned(), v.trim().to_owned()));
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let rest = words[1].trim();
        let (op, list) = if let Some(l) = rest.strip_prefix("notin") {
            ("notin", l)
        } else if let Some(l) = rest.strip_prefix("in") {
            ("in", l)
        } else {
            return Err(format!("unable to parse requirement: {part}"));
        };
        let list = list.trim();
        let Some(inner) = list.strip_prefix('(').and_then(|l| l.strip_suffix(')')) else {
            return Err(format!("unable to parse requirement: {part}"));
        };
        let values = inner.split(',').map(|v| v.trim().to_owned()).collect();
        let key = words[0].to_owned();
        return Ok(if op == "in" {
            LabelTerm::In(key, values)
        } else {
            LabelTerm::NotIn(key, values)
        });
    }
    Ok(LabelTerm::Exists(part.to_owned()))
}

#[derive(Debug, Clone, PartialEq)]
struct FieldTerm {
    path: String,
    value: String,
    negated: bool,
}

/// A parsed field selector for one kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    pub fn parse(kind: Kind, text: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (path, value, negated) = if let Some((p, v)) = part.split_once("!=") {
                (p, v, true)
            } else if let Some((p, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (p, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                ));
            };
            let path = path.trim();
            if !supported_field(kind, path) {
                return Err(format!("field label not supported: {path}"));
            }
            terms.push(FieldTerm {
                path: path.to_owned(),
                value: value.trim().to_owned(),
                negated,
            });
        }
        Ok(FieldSelector { terms })
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|t| {
            let mut node = object;
            for segment in t.path.split('.') {
                node = &node[segment];
            }
            let actual = match node {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (actual == t.value) != t.negated
        })
    }
}

/// The fields kube-apiserver indexes for these kinds (`metadata.name` and
/// `metadata.namespace` everywhere, plus each kind's own).
fn supported_field(kind: Kind, path: &str) -> bool {
    if matches!(path, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match kind {
        Kind::Pod => matches!(
            path,
            "spec.nodeName"
                | "spec.restartPolicy"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        Kind::Event => matches!(
            path,
            "involvedObject.kind"
                | "involvedObject.namespace"
                | "involvedObject.name"
                | "involvedObject.uid"
                | "involvedObject.apiVersion"
                | "involvedObject.resourceVersion"
                | "involvedObject.fieldPath"
                | "reason"
                | "reportingComponent"
                | "source"
                | "type"
        ),
        Kind::Namespace => path == "status.phase",
        Kind::Node => path == "spec.unschedulable",
        Kind::ReplicaSet => path == "status.replicas",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let labels = json!({"app": "web", "tier": "front"});
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web,tier=front", true),
            ("app!=web", false),
            ("app in (db, web)", true),
            ("app notin (db,web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing,app", true),
            ("app=db", false),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&labels),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "web", "namespace": "default"}, "status": {"phase": "Running"}});
        let sel =
            FieldSelector::parse(Kind::Pod, "metadata.name=web,status.phase!=Pending").unwrap();
        assert!(sel.matches(&pod));
        assert!(
            !FieldSelector::parse(Kind::Pod, "metadata.name=db")
                .unwrap()
                .matches(&pod)
        );
        assert_eq!(
            FieldSelector::parse(Kind::Pod, "spec.containers=x").unwrap_err(),
            "field label not supported: spec.containers"
        );
        let event = json!({"involvedObject": {"name": "web"}});
        assert!(
            FieldSelector::parse(Kind::Event, "involvedObject.name=web")
                .unwrap()
                .matches(&event)
        );
    }
}
