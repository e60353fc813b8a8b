//! Just enough of Kubernetes' protobuf encoding to read the one body kubectl
//! sends that way here: a SelfSubjectAccessReview (`kubectl auth can-i`
//! POSTs `application/vnd.kubernetes.protobuf`). The answer goes back as
//! JSON, which the client also accepts.
//!
//! The envelope is `k8s\0` followed by a `runtime.Unknown` message
//! (field 1 typeMeta {apiVersion, kind}, field 2 raw); `raw` is the object:
//! SelfSubjectAccessReview {1 metadata, 2 spec {1 resourceAttributes
//! {1 namespace, 2 verb, 3 group, 4 version, 5 resource, 6 subresource,
//! 7 name}, 2 nonResourceAttributes {1 path, 2 verb}}}.

use serde_json::{Map, Value, json};

const MAGIC: &[u8] = b"k8s\0";

/// One field of a message: its number and, for length-delimited fields,
/// the bytes (varints and fixed-width fields are skipped).
fn fields(mut data: &[u8]) -> Option<Vec<(u64, &[u8])>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let (key, rest) = varint(data)?;
        data = rest;
        let (number, wire) = (key >> 3, key & 7);
        match wire {
            0 => data = varint(data)?.1,
            1 => data = data.get(8..)?,
            5 => data = data.get(4..)?,
            2 => {
                let (len, rest) = varint(data)?;
                let len = usize::try_from(len).ok()?;
                out.push((number, rest.get(..len)?));
                data = rest.get(len..)?;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn varint(data: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, b) in data.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &data[i + 1..]));
        }
    }
    None
}

fn strings(message: &[u8], names: &[&str]) -> Option<Map<String, Value>> {
    let mut map = Map::new();
    for (number, bytes) in fields(message)? {
        if let Some(name) = names.get(number as usize - 1).filter(|_| number >= 1) {
            map.insert(
                (*name).to_owned(),
                Value::String(String::from_utf8_lossy(bytes).into_owned()),
            );
        }
    }
    Some(map)
}

/// Decodes a protobuf SelfSubjectAccessReview into its JSON form.
pub fn self_subject_access_review(body: &[u8]) -> Option<Value> {
    let unknown = body.strip_prefix(MAGIC)?;
    let raw = fields(unknown)?.into_iter().find(|(n, _)| *n == 2)?.1;
    let spec = fields(raw)?.into_iter().find(|(n, _)| *n == 2)?.1;
    let mut spec_json = Map::new();
    for (number, bytes) in fields(spec)? {
        match number {
            1 => {
                let attrs = strings(
                    bytes,
                    &[
                        "namespace",
                        "verb",
                        "group",
                        "version",
                        "resource",
                        "subresource",
                        "name",
                    ],
                )?;
                spec_json.insert("resourceAttributes".to_owned(), Value::Object(attrs));
            }
            2 => {
                let attrs = strings(bytes, &["path", "verb"])?;
                spec_json.insert("nonResourceAttributes".to_owned(), Value::Object(attrs));
            }
            _ => {}
        }
    }
    Some(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": spec_json,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (n, bytes) in fields {
            out.push((n << 3) | 2);
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn decodes_kubectls_auth_can_i_body() {
        let attrs = message(&[
            (1, b"default"),
            (2, b"patch"),
            (5, b"pods"),
            (6, b"ephemeralcontainers"),
        ]);
        let spec = message(&[(1, &attrs)]);
        let review = message(&[(1, &[]), (2, &spec), (3, &[])]);
        let type_meta = message(&[
            (1, b"authorization.k8s.io/v1"),
            (2, b"SelfSubjectAccessReview"),
        ]);
        let mut body = MAGIC.to_vec();
        body.extend(message(&[(1, &type_meta), (2, &review)]));
        let json = self_subject_access_review(&body).unwrap();
        assert_eq!(
            json["spec"]["resourceAttributes"],
            json!({"namespace": "default", "verb": "patch", "resource": "pods", "subresource": "ephemeralcontainers"})
        );
        assert!(self_subject_access_review(b"{}").is_none());
    }
}
