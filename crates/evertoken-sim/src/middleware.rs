//! The layer in front of every route: GitHub Enterprise `/api/v3` prefix
//! stripping, request recording, latency, and fault injection.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::faults::{Fault, Route, pre_response};
use crate::state::{RecordedRequest, Sim};

/// Request bodies larger than this are refused (no provider call needs more).
const BODY_LIMIT: usize = 4 * 1024 * 1024;

const REDACTED_HEADERS: &[&str] = &["authorization", "private-token", "cookie", "job-token"];

fn strip_ghes_prefix(uri: &Uri) -> Option<Uri> {
    let path = uri.path();
    let rest = if path == "/api/v3" {
        "/"
    } else {
        path.strip_prefix("/api/v3/")
            .map(|_| &path["/api/v3".len()..])?
    };
    let pq = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    pq.parse().ok()
}

pub(crate) async fn sim_layer(State(sim): State<Sim>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    if let Some(u) = strip_ghes_prefix(&parts.uri) {
        parts.uri = u;
    }
    let path = parts.uri.path().to_string();
    let Some(route) = Route::classify(&path) else {
        return next.run(Request::from_parts(parts, body)).await;
    };

    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
        }
    };
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_string),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                let name = k.as_str().to_string();
                let value = if REDACTED_HEADERS.contains(&k.as_str()) {
                    "<redacted>".to_string()
                } else {
                    String::from_utf8_lossy(v.as_bytes()).into_owned()
                };
                (name, value)
            })
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    };
    let (latency, fault, now) = {
        let mut st = sim.lock();
        st.record(route, recorded);
        (st.latency, st.take_fault(route), st.now())
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let req = Request::from_parts(parts, Body::from(bytes));

    let Some(fault) = fault else {
        return next.run(req).await;
    };
    if let Some(resp) = pre_response(route, &path, &fault, now) {
        return resp;
    }
    if fault == Fault::EchoSecrets || fault == Fault::EchoSecretsOk {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, BODY_LIMIT)
            .await
            .unwrap_or_default();
        let echo = echo_text(&path, &parts, &bytes);
        if fault == Fault::EchoSecretsOk {
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                echo,
            )
                .into_response();
        }
        return crate::faults::echo_response(route, &path, &echo, now);
    }
    match fault {
        Fault::SlowLoris(d) => {
            tokio::time::sleep(d).await;
            let stream = futures::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Some((Ok::<Bytes, std::io::Error>(Bytes::from_static(b" ")), ()))
            });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Fault::Hang(d) => {
            tokio::time::sleep(d).await;
            next.run(req).await
        }
        Fault::HangAfterProcessing(d) => {
            let resp = next.run(req).await;
            tokio::time::sleep(d).await;
            resp
        }
        f if f.is_post_processing() => {
            let resp = next.run(req).await;
            post_process(resp, &f).await
        }
        _ => next.run(req).await,
    }
}

/// [`Fault::EchoSecrets`]: everything the request carried, then terminal escapes.
fn echo_text(path: &str, parts: &axum::http::request::Parts, body: &[u8]) -> String {
    use base64::Engine as _;
    let mut echo = format!("you sent {} {path}", parts.method);
    if let Some(q) = parts.uri.query() {
        echo.push_str(&format!("?{q}"));
        // Decoded too, as a careless server would log it.
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            echo.push_str(&format!(" {k}={v}"));
        }
    }
    if !body.is_empty() {
        echo.push_str(&format!(" body={}", String::from_utf8_lossy(body)));
        for (k, v) in url::form_urlencoded::parse(body) {
            echo.push_str(&format!(" {k}={v}"));
        }
    }
    for (name, v) in parts.headers.iter() {
        let v = String::from_utf8_lossy(v.as_bytes());
        if name == header::AUTHORIZATION {
            echo.push_str(&format!(" authorization={v}"));
            if let Some(b) = v.strip_prefix("Basic ")
                && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim())
            {
                echo.push_str(&format!(" credentials={}", String::from_utf8_lossy(&raw)));
            }
        } else if REDACTED_HEADERS.contains(&name.as_str()) {
            echo.push_str(&format!(" {name}={v}"));
        }
    }
    echo.push_str(crate::faults::ESCAPES);
    echo
}

async fn post_process(resp: Response, fault: &Fault) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .unwrap_or_default();
    match fault {
        Fault::MalformedJson => {
            // Complete, but not JSON: a half-written object with garbage.
            let body = "{\"access_token\": sim-malformed, \"expires_in\": , <!-- upstream -->";
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body,
            )
                .into_response()
        }
        Fault::TruncatedBody => {
            let full = if bytes.is_empty() {
                Bytes::from_static(b"{\"access_token\":\"sim-truncated\",\"expires_in\":3600}")
            } else {
                bytes
            };
            let half = full.slice(0..full.len() / 2);
            parts.headers.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from_str(&full.len().to_string())
                    .unwrap_or(HeaderValue::from_static("64")),
            );
            // Send half, let it reach the client, then abort the connection.
            use futures::StreamExt as _;
            let stream = futures::stream::iter(vec![Ok::<Bytes, std::io::Error>(half)]).chain(
                futures::stream::once(async {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "simulated truncated body",
                    ))
                }),
            );
            Response::from_parts(parts, Body::from_stream(stream))
        }
        Fault::Patch(set) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(mut m)) => {
                for (k, v) in set {
                    m.insert(k.clone(), v.clone());
                }
                let out = serde_json::to_vec(&m).unwrap_or_default();
                parts.headers.remove(header::CONTENT_LENGTH);
                Response::from_parts(parts, Body::from(out))
            }
            _ => Response::from_parts(parts, Body::from(bytes)),
        },
        Fault::DropRotatedToken => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(mut m)) => {
                m.remove("refresh_token");
                let out = serde_json::to_vec(&m).unwrap_or_default();
                parts.headers.remove(header::CONTENT_LENGTH);
                Response::from_parts(parts, Body::from(out))
            }
            _ => Response::from_parts(parts, Body::from(bytes)),
        },
        _ => Response::from_parts(parts, Body::from(bytes)),
    }
}
