//! Response building shared by the handlers: JSON with kube-apiserver's
//! headers, Status errors, plain text, and streamed bodies (watch, logs).

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

use crate::status::Status;

pub type Body = BoxBody<Bytes, std::io::Error>;
pub type Response = http::Response<Body>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn with_common_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    if let Ok(id) = HeaderValue::from_str(&crate::store::new_uid()) {
        headers.insert("audit-id", id);
    }
    response
}

/// A JSON body with status `code`.
pub fn json(code: u16, body: Vec<u8>) -> Response {
    let mut response = http::Response::new(full(body));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    with_common_headers(response)
}

pub fn json_value(code: u16, value: &serde_json::Value) -> Response {
    json(code, serde_json::to_vec(value).expect("JSON serializes"))
}

/// A failure Status, with its code as the HTTP status.
pub fn status(status: &Status) -> Response {
    json(status.code(), status.to_json())
}

/// A plain-text body, as Go's net/http sends one written without a
/// content type (the kubelet's errors).
pub fn text(code: u16, body: impl Into<Bytes>) -> Response {
    let mut response = http::Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// A streamed body (chunked transfer encoding): every message received on
/// `rx` is sent as it comes; the body ends when all senders are gone.
pub fn stream(content_type: &'static str, rx: mpsc::Receiver<Bytes>) -> Response {
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, std::io::Error>(Frame::data(bytes)), rx))
    });
    let mut response = http::Response::new(BodyExt::boxed(StreamBody::new(frames)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    with_common_headers(response)
}

/// Go's `http.NotFound` for paths outside the API: `404 page not found`.
pub fn page_not_found() -> Response {
    text(404, "404 page not found\n")
}
