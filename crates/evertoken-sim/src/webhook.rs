//! Incoming chat webhooks (alert delivery).
//!
//! Docs checked:
//! - Slack <https://api.slack.com/messaging/webhooks> (POST JSON; `200` with body `ok`;
//!   errors are plain text: `invalid_payload` 400, `no_text` 400, `invalid_token` 403,
//!   `no_service` 404, `channel_is_archived` 410; 429 with `Retry-After` when rate limited).
//! - Discord <https://discord.com/developers/docs/resources/webhook#execute-webhook>
//!   (`204 No Content`, or `200` with the message object when `?wait=true`; errors
//!   `{"message","code"}`, e.g. 50006 "Cannot send an empty message") and
//!   <https://discord.com/developers/docs/topics/rate-limits> (429
//!   `{"message":"You are being rate limited.","retry_after":0.5,"global":false}` and a
//!   `Retry-After` header).
//! - Microsoft Teams Workflows ("Post to a channel when a webhook request is received"):
//!   the flow trigger answers `202 Accepted` with an empty body.
//!
//! Paths: `/webhook/slack/…`, `/webhook/discord/…`, `/webhook/teams/…` (anything after
//! the service name is accepted and recorded with the JSON body).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use crate::state::Sim;
use crate::util::{alnum, json_response};

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route("/webhook/slack/{*rest}", post(slack))
        .route("/webhook/discord/{*rest}", post(discord))
        .route("/webhook/teams/{*rest}", post(teams))
}

fn text(code: StatusCode, body: &'static str) -> Response {
    (code, [(header::CONTENT_TYPE, "text/html")], body).into_response()
}

fn record(sim: &Sim, path: String, v: Value) {
    let mut st = sim.lock();
    if st.webhook.len() >= 10_000 {
        st.webhook.remove(0);
    }
    st.webhook.push((path, v));
}

async fn slack(State(sim): State<Sim>, Path(rest): Path<String>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return text(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let has_content = v
        .get("text")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
        || v.get("blocks").is_some_and(|b| b.is_array())
        || v.get("attachments").is_some_and(|b| b.is_array());
    if !has_content {
        return text(StatusCode::BAD_REQUEST, "no_text");
    }
    record(&sim, format!("/webhook/slack/{rest}"), v);
    text(StatusCode::OK, "ok")
}

async fn discord(
    State(sim): State<Sim>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            400,
            json!({"message": "Cannot send an empty message", "code": 50006}),
        );
    };
    let has_content = v
        .get("content")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty())
        || v.get("embeds")
            .is_some_and(|e| e.as_array().is_some_and(|a| !a.is_empty()));
    if !has_content {
        return json_response(
            400,
            json!({"message": "Cannot send an empty message", "code": 50006}),
        );
    }
    record(&sim, format!("/webhook/discord/{rest}"), v.clone());
    let wait = crate::util::parse_query(q.as_deref())
        .get("wait")
        .is_some_and(|w| w == "true");
    if wait {
        let mut msg = json!({
            "id": format!("{}", rand::random::<u64>() >> 1),
            "type": 0,
            "content": v.get("content").cloned().unwrap_or(json!("")),
            "embeds": v.get("embeds").cloned().unwrap_or(json!([])),
            "webhook_id": rest.split('/').next().unwrap_or(""),
        });
        msg["nonce"] = json!(alnum(8));
        return json_response(200, msg);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn teams(State(sim): State<Sim>, Path(rest): Path<String>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return json_response(
            400,
            json!({"error": {"code": "InvalidRequestContent", "message": "The input body for trigger 'manual' of type 'Request' must be of type JSON, but was of type 'application/octet-stream'."}}),
        );
    };
    record(&sim, format!("/webhook/teams/{rest}"), v);
    StatusCode::ACCEPTED.into_response()
}

// ------------------------------------------------------------ registry

#[allow(non_upper_case_globals)]
impl crate::Route {
    /// Every `/webhook/…` path (Slack, Discord, Teams).
    pub const Webhook: crate::Route = crate::Route("webhook");
}

/// Every JSON body received, with its path.
pub(crate) type ProviderState = Vec<(String, Value)>;

pub(crate) const PROVIDER: crate::registry::Provider = crate::registry::Provider {
    routes: &[(crate::Route::Webhook, &["webhooks"])],
    owns: |path| path.starts_with("/webhook/").then_some(crate::Route::Webhook),
    router: routes,
    wrap: None,
    errors: crate::registry::Errors {
        status: |ctx, code| {
            let server_side = code >= 500;
            match hook_kind(ctx.path) {
                Hook::Slack => match code {
                    400 => crate::util::text(400, "invalid_payload"),
                    403 => crate::util::text(403, "invalid_token"),
                    404 => crate::util::text(404, "no_service"),
                    410 => crate::util::text(410, "channel_is_archived"),
                    429 => crate::util::text(429, "rate_limited"),
                    c if server_side => (crate::util::status(c), "internal_error").into_response(),
                    c => (crate::util::status(c), "invalid_payload").into_response(),
                },
                Hook::Discord => match code {
                    429 => discord_429(0.5),
                    401 => json_response(401, json!({"message": "401: Unauthorized", "code": 0})),
                    404 => json_response(404, json!({"message": "Unknown Webhook", "code": 10015})),
                    c => json_response(c, json!({"message": crate::util::reason(c), "code": 0})),
                },
                Hook::Teams => json_response(
                    code,
                    json!({"error": {"code": if server_side {"InternalServerError"} else {"BadRequest"}, "message": crate::util::reason(code)}}),
                ),
            }
        },
        too_many_requests: Some(|ctx, retry_after_secs| match hook_kind(ctx.path) {
            Hook::Discord => discord_429(retry_after_secs.map(|s| s as f64).unwrap_or(0.5)),
            _ => (PROVIDER.errors.status)(ctx, 429),
        }),
        throttled: None,
        invalid_grant: None,
        invalid_client: None,
        unauthorized: |ctx| match hook_kind(ctx.path) {
            Hook::Slack => crate::util::text(403, "invalid_token"),
            Hook::Discord => json_response(
                401,
                json!({"message": "Invalid Webhook Token", "code": 50027}),
            ),
            Hook::Teams => json_response(
                401,
                json!({"error": {"code": "DirectApiAuthorizationRequired", "message": "The request is not authorized."}}),
            ),
        },
        echo: |ctx, message| match hook_kind(ctx.path) {
            Hook::Slack => (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                message.to_owned(),
            )
                .into_response(),
            Hook::Discord => json_response(500, json!({"message": message, "code": 0})),
            Hook::Teams => json_response(
                500,
                json!({"error": {"code": "InternalServerError", "message": message}}),
            ),
        },
        not_found: None,
    },
};

enum Hook {
    Slack,
    Discord,
    Teams,
}

fn hook_kind(path: &str) -> Hook {
    if path.starts_with("/webhook/discord") {
        Hook::Discord
    } else if path.starts_with("/webhook/teams") {
        Hook::Teams
    } else {
        Hook::Slack
    }
}

fn discord_429(retry_after: f64) -> Response {
    json_response(
        429,
        json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": false}),
    )
}
