//! `metav1.Status`: how kube-apiserver reports every failure, with the
//! exact messages, reasons, details and codes of `k8s.io/apimachinery/pkg/
//! api/errors` (NewNotFound, NewForbidden, NewInvalid, NewBadRequest, ...)
//! and the field errors of `pkg/util/validation/field`.
//!
//! Fields are declared in the order kube-apiserver writes them, so the JSON
//! reads the same as a real server's.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<&'static str>,
    metadata: Empty,
    status: &'static str,
    message: String,
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    code: u16,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Empty {}

#[derive(Debug, Clone, Default, Serialize)]
struct Details {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    causes: Vec<Cause>,
}

#[derive(Debug, Clone, Serialize)]
struct Cause {
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    field: String,
}

/// `group/resource` as apimachinery prints a GroupResource: `pods`,
/// `deployments.apps`.
fn qualified(resource: &str, group: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

impl Status {
    fn failure(
        code: u16,
        reason: &'static str,
        message: String,
        details: Option<Details>,
    ) -> Status {
        Status {
            kind: Some("Status"),
            api_version: Some("v1"),
            metadata: Empty {},
            status: "Failure",
            message,
            reason,
            details,
            code,
        }
    }

    pub fn code(&self) -> u16 {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// `NewNotFound`: `pods "web" not found`.
    pub fn not_found(resource: &str, group: &str, name: &str) -> Status {
        Status::failure(
            404,
            "NotFound",
            format!("{} {name:?} not found", qualified(resource, group)),
            Some(Details {
                name: name.to_owned(),
                group: group.to_owned(),
                kind: resource.to_owned(),
                ..Details::default()
            }),
        )
    }

    /// An unknown path under the API: `the server could not find the requested resource`.
    pub fn no_such_resource() -> Status {
        Status::failure(
            404,
            "NotFound",
            "the server could not find the requested resource".to_owned(),
            Some(Details::default()),
        )
    }

    /// `NewForbidden(resource, name, err)`.
    pub fn forbidden(resource: &str, group: &str, name: &str, err: &str) -> Status {
        let resource_q = qualified(resource, group);
        let message = if name.is_empty() {
            format!("{resource_q} is forbidden: {err}")
        } else {
            format!("{resource_q} {name:?} is forbidden: {err}")
        };
        Status::failure(
            403,
            "Forbidden",
            message,
            Some(Details {
                name: name.to_owned(),
                group: group.to_owned(),
                kind: resource.to_owned(),
                ..Details::default()
            }),
        )
    }

    /// `NewInvalid(kind, name, errs)`: 422 with one cause per field error.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Status {
        let qualified_kind = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let causes = errors
            .iter()
            .map(|e| Cause {
                reason: e.kind.cause_type(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        Status::failure(
            422,
            "Invalid",
            format!(
                "{qualified_kind} {name:?} is invalid: {}",
                aggregate(errors)
            ),
            Some(Details {
                name: name.to_owned(),
                group: group.to_owned(),
                kind: kind.to_owned(),
                causes,
            }),
        )
    }

    /// `NewBadRequest(message)`.
    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::failure(400, "BadRequest", message.into(), None)
    }

    /// What the authentication filter answers without valid credentials.
    pub fn unauthorized() -> Status {
        Status::failure(401, "Unauthorized", "Unauthorized".to_owned(), None)
    }

    /// `NewInternalError(err)`.
    pub fn internal(err: &str) -> Status {
        Status::failure(
            500,
            "InternalError",
            format!("Internal error occurred: {err}"),
            Some(Details {
                causes: vec![Cause {
                    reason: "",
                    message: err.to_owned(),
                    field: String::new(),
                }],
                ..Details::default()
            }),
        )
    }

    /// `NewMethodNotSupported`.
    pub fn method_not_supported(resource: &str, group: &str, method: &str) -> Status {
        Status::failure(
            405,
            "MethodNotAllowed",
            format!(
                "{method} is not supported on resources of kind {:?}",
                qualified(resource, group)
            ),
            Some(Details {
                group: group.to_owned(),
                kind: resource.to_owned(),
                ..Details::default()
            }),
        )
    }

    /// A PATCH with a content type the server does not take.
    pub fn unsupported_media_type(content_type: &str) -> Status {
        Status::failure(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, \
                 application/apply-patch+yaml, application/strategic-merge-patch+json \
                 (got {content_type:?})"
            ),
            None,
        )
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a Status serializes")
    }
}

/// The success Status that attach writes to its status channel when the
/// stream ends normally: `{"metadata":{},"status":"Success"}` (the
/// StatusError's ErrStatus has no kind/apiVersion).
pub fn success_stream_status() -> Vec<u8> {
    br#"{"metadata":{},"status":"Success"}"#.to_vec()
}

/// The failure Status of a stream, as `json.Marshal(status.Status())`
/// writes it on the status channel: no kind or apiVersion.
pub fn stream_status(status: &Status) -> Vec<u8> {
    let mut bare = status.clone();
    bare.kind = None;
    bare.api_version = None;
    bare.to_json()
}

/// The kinds of `field.Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Forbidden,
    Duplicate,
    NotFound,
    Invalid,
    NotSupported,
}

impl FieldErrorKind {
    fn text(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "Required value",
            FieldErrorKind::Forbidden => "Forbidden",
            FieldErrorKind::Duplicate => "Duplicate value",
            FieldErrorKind::NotFound => "Not found",
            FieldErrorKind::Invalid => "Invalid value",
            FieldErrorKind::NotSupported => "Unsupported value",
        }
    }

    fn cause_type(self) -> &'static str {
        match self {
            FieldErrorKind::Required => "FieldValueRequired",
            FieldErrorKind::Forbidden => "FieldValueForbidden",
            FieldErrorKind::Duplicate => "FieldValueDuplicate",
            FieldErrorKind::NotFound => "FieldValueNotFound",
            FieldErrorKind::Invalid => "FieldValueInvalid",
            FieldErrorKind::NotSupported => "FieldValueNotSupported",
        }
    }
}

/// One validation error: a field path, what is wrong, the bad value (a
/// string, quoted in messages as Go's `%q` does) and a detail.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub kind: FieldErrorKind,
    pub field: String,
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    pub fn new(
        kind: FieldErrorKind,
        field: impl Into<String>,
        value: Option<&str>,
        detail: &str,
    ) -> FieldError {
        FieldError {
            kind,
            field: field.into(),
            value: value.map(str::to_owned),
            detail: detail.to_owned(),
        }
    }

    /// `ErrorBody()`: the message without the field path.
    pub fn body(&self) -> String {
        let mut s = match (&self.kind, &self.value) {
            (FieldErrorKind::Required | FieldErrorKind::Forbidden, _) | (_, None) => {
                self.kind.text().to_owned()
            }
            (kind, Some(value)) => format!("{}: {value:?}", kind.text()),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }

    /// `Error()`: `field: body`.
    pub fn error(&self) -> String {
        format!("{}: {}", self.field, self.body())
    }
}

/// `utilerrors.NewAggregate(errs).Error()`: one error alone, several in
/// brackets, duplicates dropped.
fn aggregate(errors: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let msg = e.error();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    if seen.len() == 1 {
        seen.remove(0)
    } else {
        format!("[{}]", seen.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_kube_apiserver() {
        assert_eq!(
            String::from_utf8(Status::not_found("pods", "", "web").to_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web\" not found","reason":"NotFound","details":{"name":"web","kind":"pods"},"code":404}"#
        );
        assert_eq!(
            Status::not_found("deployments", "apps", "api").message(),
            r#"deployments.apps "api" not found"#
        );
    }

    #[test]
    fn invalid_aggregates_field_errors() {
        let one = [FieldError::new(
            FieldErrorKind::Duplicate,
            "spec.ephemeralContainers[0].name",
            Some("app"),
            "",
        )];
        let s = Status::invalid("Pod", "", "web", &one);
        assert_eq!(
            String::from_utf8(s.to_json()).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Pod \"web\" is invalid: spec.ephemeralContainers[0].name: Duplicate value: \"app\"","reason":"Invalid","details":{"name":"web","kind":"Pod","causes":[{"reason":"FieldValueDuplicate","message":"Duplicate value: \"app\"","field":"spec.ephemeralContainers[0].name"}]},"code":422}"#
        );
        let two = [
            FieldError::new(
                FieldErrorKind::Required,
                "spec.ephemeralContainers[0].image",
                None,
                "",
            ),
            FieldError::new(
                FieldErrorKind::Forbidden,
                "spec.ephemeralContainers[0].ports",
                None,
                "cannot be set for an Ephemeral Container",
            ),
        ];
        assert_eq!(
            Status::invalid("Pod", "", "web", &two).message(),
            "Pod \"web\" is invalid: [spec.ephemeralContainers[0].image: Required value, \
             spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container]"
        );
    }

    #[test]
    fn stream_statuses_have_no_type_meta() {
        let s = Status::internal(
            "unable to upgrade connection: container x not found in pod web_default",
        );
        assert_eq!(
            String::from_utf8(stream_status(&s)).unwrap(),
            r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: unable to upgrade connection: container x not found in pod web_default","reason":"InternalError","details":{"causes":[{"message":"unable to upgrade connection: container x not found in pod web_default"}]},"code":500}"#
        );
    }
}
