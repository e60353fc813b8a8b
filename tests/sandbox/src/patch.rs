//! The three patch formats kube-apiserver applies to a Pod:
//! strategic merge patch (what kubectl sends), JSON merge patch (RFC 7386)
//! and JSON patch (RFC 6902).
//!
//! The strategic merge follows `apimachinery/pkg/util/strategicpatch` for
//! the Pod's schema: lists that carry a `patchMergeKey` are merged by that
//! key (containers and ephemeral containers by `name`, ports by
//! `containerPort`, ...), other lists are replaced; `null` deletes a field;
//! the directives `$patch` (`replace`, `delete`, `merge`), `$retainKeys`,
//! `$setElementOrder/FIELD` and `$deleteFromPrimitiveList/FIELD` are honoured.

use serde_json::{Map, Value};

/// The merge key of a list field of the Pod schema, by field name (the
/// names are unambiguous within a Pod).
fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets"
        | "env"
        | "resourceClaims"
        | "schedulingGates" => "name",
        "ports" => "containerPort",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "resizePolicy" => "resourceName",
        _ => return None,
    })
}

/// Primitive lists whose patch strategy is `merge` (a union).
fn merges_primitives(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch.
pub fn strategic_merge(original: &Value, patch: &Value) -> Result<Value, String> {
    match (original, patch) {
        (Value::Object(o), Value::Object(p)) => merge_map(o, p).map(Value::Object),
        (_, Value::Object(p)) => merge_map(&Map::new(), p).map(Value::Object),
        _ => Err("the patch is not a JSON object".to_owned()),
    }
}

fn merge_map(
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            let mut p = patch.clone();
            p.remove("$patch");
            return Ok(p);
        }
        Some("delete") => return Ok(Map::new()),
        Some("merge") | None => {}
        Some(other) => return Err(format!("Unknown patch type: {other}")),
    }
    let mut result = original.clone();
    if let Some(retain) = patch.get("$retainKeys") {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or("$retainKeys is not a list")?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        result.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (key, value) in patch {
        if key == "$patch" || key == "$retainKeys" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            let remove = value
                .as_array()
                .ok_or("$deleteFromPrimitiveList is not a list")?;
            if let Some(Value::Array(items)) = result.get_mut(field) {
                items.retain(|i| !remove.contains(i));
            }
            continue;
        }
        if key.starts_with("$setElementOrder/") {
            continue;
        }
        if value.is_null() {
            result.remove(key);
            continue;
        }
        let merged = match (result.get(key), value) {
            (Some(Value::Object(o)), Value::Object(p)) => Value::Object(merge_map(o, p)?),
            (None, Value::Object(p)) => Value::Object(merge_map(&Map::new(), p)?),
            (Some(Value::Array(o)), Value::Array(p)) => Value::Array(merge_list(key, o, p)?),
            (None, Value::Array(p)) => Value::Array(merge_list(key, &[], p)?),
            (_, v) => v.clone(),
        };
        result.insert(key.clone(), merged);
    }
    for (key, order) in patch {
        if let Some(field) = key.strip_prefix("$setElementOrder/") {
            let order = order.as_array().ok_or("$setElementOrder is not a list")?;
            if let Some(Value::Array(items)) = result.get_mut(field) {
                reorder(field, items, order);
            }
        }
    }
    Ok(result)
}

fn merge_list(field: &str, original: &[Value], patch: &[Value]) -> Result<Vec<Value>, String> {
    // A list-level `{"$patch": "replace"}` element replaces the whole list.
    if patch
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect());
    }
    if let Some(key) = merge_key(field) {
        let mut result: Vec<Value> = original.to_vec();
        for item in patch {
            let Some(item_map) = item.as_object() else {
                return Err(format!(
                    "list {field} with merge key {key} holds a non-object"
                ));
            };
            let id = item_map.get(key).cloned().unwrap_or(Value::Null);
            let pos = result.iter().position(|o| o.get(key) == Some(&id));
            if item_map.get("$patch").and_then(Value::as_str) == Some("delete") {
                if let Some(p) = pos {
                    result.remove(p);
                }
                continue;
            }
            match pos {
                Some(p) => {
                    let merged = match &result[p] {
                        Value::Object(o) => merge_map(o, item_map)?,
                        _ => item_map.clone(),
                    };
                    result[p] = Value::Object(merged);
                }
                None => result.push(Value::Object(merge_map(&Map::new(), item_map)?)),
            }
        }
        return Ok(result);
    }
    if merges_primitives(field) {
        let mut result = original.to_vec();
        for item in patch {
            if !result.contains(item) {
                result.push(item.clone());
            }
        }
        return Ok(result);
    }
    Ok(patch.to_vec())
}

/// `$setElementOrder`: the listed elements in the listed order; elements
/// not listed keep their places after them.
fn reorder(field: &str, items: &mut Vec<Value>, order: &[Value]) {
    let key = merge_key(field);
    let rank = |item: &Value| {
        order.iter().position(|o| match key {
            Some(k) => o.get(k).is_some() && o.get(k) == item.get(k),
            None => o == item,
        })
    };
    let mut ranked: Vec<(usize, usize, Value)> = items
        .drain(..)
        .enumerate()
        .map(|(i, v)| (rank(&v).unwrap_or(usize::MAX), i, v))
        .collect();
    ranked.sort_by_key(|(r, i, _)| (*r, *i));
    items.extend(ranked.into_iter().map(|(_, _, v)| v));
}

/// RFC 7386 JSON merge patch.
pub fn json_merge(original: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(p) => {
            let mut result = match original {
                Value::Object(o) => o.clone(),
                _ => Map::new(),
            };
            for (k, v) in p {
                if v.is_null() {
                    result.remove(k);
                } else {
                    let merged = json_merge(result.get(k).unwrap_or(&Value::Null), v);
                    result.insert(k.clone(), merged);
                }
            }
            Value::Object(result)
        }
        other => other.clone(),
    }
}

/// RFC 6902 JSON patch (add, remove, replace, move, copy, test).
pub fn json_patch(original: &Value, patch: &Value) -> Result<Value, String> {
    let ops = patch
        .as_array()
        .ok_or("a JSON patch must be a list of operations")?;
    let mut doc = original.clone();
    for op in ops {
        let name = op["op"].as_str().ok_or("operation without \"op\"")?;
        let path = op["path"].as_str().ok_or("operation without \"path\"")?;
        match name {
            "add" => add(&mut doc, path, op["value"].clone())?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, op["value"].clone())?;
            }
            "move" => {
                let from = op["from"].as_str().ok_or("move without \"from\"")?;
                let v = remove(&mut doc, from)?;
                add(&mut doc, path, v)?;
            }
            "copy" => {
                let from = op["from"].as_str().ok_or("copy without \"from\"")?;
                let v = doc
                    .pointer(from)
                    .cloned()
                    .ok_or(format!("doc is missing path: {from}"))?;
                add(&mut doc, path, v)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&op["value"]) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(doc)
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or(format!("invalid path {path:?}"))?;
    Ok((
        parent.to_owned(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or(format!("doc is missing path: {path}"))?;
    match target {
        Value::Object(map) => {
            map.insert(last, value);
        }
        Value::Array(list) => {
            if last == "-" {
                list.push(value);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| format!("invalid index {last:?}"))?;
                if i > list.len() {
                    return Err(format!(
                        "add operation does not apply: index {i} out of bounds"
                    ));
                }
                list.insert(i, value);
            }
        }
        _ => return Err(format!("doc is missing path: {path}")),
    }
    Ok(())
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or(format!("doc is missing path: {path}"))?;
    match target {
        Value::Object(map) => map
            .remove(&last)
            .ok_or(format!("doc is missing path: {path}")),
        Value::Array(list) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid index {last:?}"))?;
            if i >= list.len() {
                return Err(format!("doc is missing path: {path}"));
            }
            Ok(list.remove(i))
        }
        _ => Err(format!("doc is missing path: {path}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kubectl_debug_patch_appends_by_name_and_keeps_order() {
        let pod = json!({"spec": {
            "containers": [{"name": "app", "image": "a"}],
            "ephemeralContainers": [{"name": "debugger-a", "image": "x"}],
        }});
        let patch = json!({"spec": {
            "$setElementOrder/ephemeralContainers": [{"name": "debugger-a"}, {"name": "debugger-b"}],
            "ephemeralContainers": [{"name": "debugger-b", "image": "y", "stdin": true}],
        }});
        let out = strategic_merge(&pod, &patch).unwrap();
        assert_eq!(
            out["spec"]["ephemeralContainers"],
            json!([{"name": "debugger-a", "image": "x"}, {"name": "debugger-b", "image": "y", "stdin": true}])
        );
        assert_eq!(out["spec"]["containers"], pod["spec"]["containers"]);
    }

    #[test]
    fn strategic_directives() {
        let orig = json!({"a": {"x": 1, "y": 2}, "l": [1, 2], "finalizers": ["f1"],
                          "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]});
        let out = strategic_merge(
            &orig,
            &json!({"a": {"$patch": "replace", "z": 3}, "l": [3], "finalizers": ["f2"],
                    "env": [{"name": "A", "$patch": "delete"}, {"name": "B", "value": "3"}]}),
        )
        .unwrap();
        assert_eq!(out["a"], json!({"z": 3}));
        assert_eq!(out["l"], json!([3]));
        assert_eq!(out["finalizers"], json!(["f1", "f2"]));
        assert_eq!(out["env"], json!([{"name": "B", "value": "3"}]));
        let out = strategic_merge(
            &orig,
            &json!({"a": {"x": null}, "$deleteFromPrimitiveList/finalizers": ["f1"]}),
        )
        .unwrap();
        assert_eq!(out["a"], json!({"y": 2}));
        assert_eq!(out["finalizers"], json!([]));
    }

    #[test]
    fn merge_and_json_patches() {
        let orig = json!({"spec": {"ephemeralContainers": [{"name": "a"}]}});
        assert_eq!(
            json_merge(
                &orig,
                &json!({"spec": {"ephemeralContainers": [{"name": "b"}]}})
            ),
            json!({"spec": {"ephemeralContainers": [{"name": "b"}]}})
        );
        let out = json_patch(
            &orig,
            &json!([{"op": "add", "path": "/spec/ephemeralContainers/-", "value": {"name": "b"}},
                    {"op": "test", "path": "/spec/ephemeralContainers/0/name", "value": "a"}]),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ephemeralContainers"],
            json!([{"name": "a"}, {"name": "b"}])
        );
        assert!(json_patch(&orig, &json!([{"op": "remove", "path": "/spec/x"}])).is_err());
    }
}
