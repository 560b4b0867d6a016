//! Admin API handlers.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::{AdminState, ApiError};
use crate::metrics::metrics;
use crate::numbers::{parse_csv, parse_e164, NumberEntry, NumberSet};
use crate::pii::{search_needles, Pii};
use crate::settings::IntegrationSettings;
use crate::store::records::{iso8601, month_of, now_millis, parse_month, parse_time};
use crate::store::{CallFilter, CallOutcome, StoreError};

/// Shown instead of the SIP digest password; sending it back keeps the stored one.
pub const PASSWORD_PLACEHOLDER: &str = "********";

pub(super) async fn healthz(State(st): State<AdminState>) -> Response {
    let store_ok = st.store.run(|s| s.ping()).await.is_ok();
    st.live.set_store_ok(store_ok);
    let ready = st.live.is_ready();
    let body = serde_json::json!({
        "ready": ready,
        "draining": st.live.is_draining(),
        "store": store_ok,
        "active_calls": metrics().active_calls.get(),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

pub(super) async fn get_integration(State(st): State<AdminState>) -> Json<IntegrationSettings> {
    let mut s = (*st.live.settings()).clone();
    if let Some(auth) = s.sip_auth.as_mut() {
        auth.password = PASSWORD_PLACEHOLDER.to_owned();
    }
    Json(s)
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        // serde names the field in "unknown field `x`" / "invalid type ... for key `x`".
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.contains("field"))
            .map(str::to_owned);
        ApiError::BadRequest {
            field,
            message: msg,
        }
    })
}

pub(super) async fn put_integration(
    State(st): State<AdminState>,
    body: Bytes,
) -> Result<Json<IntegrationSettings>, ApiError> {
    let mut new: IntegrationSettings = json_body(&body)?;
    if let Some(auth) = new.sip_auth.as_mut() {
        if auth.password == PASSWORD_PLACEHOLDER {
            match st.live.settings().sip_auth.as_ref() {
                Some(old) => auth.password = old.password.clone(),
                None => {
                    return Err(ApiError::InvalidFields(vec![super::FieldError {
                        field: "sip_auth".into(),
                        reason: "no stored password to keep; send the password".into(),
                    }]))
                }
            }
        }
    }
    new.validate()?;
    let saved = new.clone();
    st.store.run(move |s| s.save_integration(&saved)).await?;
    st.live.publish_settings(new);
    tracing::info!(plan = ?st.live.settings().plan, "integration settings updated");
    Ok(get_integration(State(st)).await)
}

pub(super) async fn list_numbers(
    State(st): State<AdminState>,
) -> Result<Json<Vec<NumberEntry>>, ApiError> {
    Ok(Json(st.store.run(|s| s.list_numbers()).await?))
}

async fn republish_numbers(st: &AdminState) -> Result<usize, ApiError> {
    let list = st.store.run(|s| s.list_numbers()).await?;
    let n = list.len();
    st.live
        .publish_numbers(NumberSet::new(list.into_iter().map(|e| e.number)));
    Ok(n)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewNumber {
    number: String,
    #[serde(default)]
    description: String,
}

pub(super) async fn add_number(
    State(st): State<AdminState>,
    body: Bytes,
) -> Result<(StatusCode, Json<NumberEntry>), ApiError> {
    let req: NewNumber = json_body(&body)?;
    let e164 = parse_e164(&req.number).map_err(|e| {
        ApiError::InvalidFields(vec![super::FieldError {
            field: "number".into(),
            reason: e.to_string(),
        }])
    })?;
    if req.description.chars().count() > crate::numbers::MAX_DESCRIPTION {
        return Err(ApiError::InvalidFields(vec![super::FieldError {
            field: "description".into(),
            reason: format!("longer than {} characters", crate::numbers::MAX_DESCRIPTION),
        }]));
    }
    let entry = NumberEntry {
        number: e164.as_str().to_owned(),
        description: req.description,
    };
    let e = entry.clone();
    st.store.run(move |s| s.add_number(&e)).await?;
    republish_numbers(&st).await?;
    tracing::info!(number = %Pii(&entry.number), "phone number added");
    Ok((StatusCode::CREATED, Json(entry)))
}

pub(super) async fn delete_number(
    State(st): State<AdminState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    // Accept `+1958…`, `%2B1958…` (decoded by axum) and a bare `1958…`.
    let text = if raw.starts_with('+') {
        raw.clone()
    } else {
        format!("+{raw}")
    };
    let e164 = parse_e164(&text).map_err(|e| ApiError::BadRequest {
        field: Some("e164".into()),
        message: e.to_string(),
    })?;
    let n = e164.as_str().to_owned();
    st.store
        .run(move |s| s.delete_number(&n))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => ApiError::NotFound(format!("{e164} is not on the list")),
            other => other.into(),
        })?;
    republish_numbers(&st).await?;
    tracing::info!(number = %Pii(e164.as_str()), "phone number deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn replace_numbers(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.to_ascii_lowercase().starts_with("text/csv") {
        return Err(ApiError::UnsupportedMediaType(format!(
            "PUT /v1/numbers takes text/csv, got {ct:?}"
        )));
    }
    let entries = tokio::task::spawn_blocking(move || parse_csv(&body))
        .await
        .map_err(|e| ApiError::Store(StoreError::Task(e.to_string())))?
        .map_err(ApiError::InvalidRows)?;
    let count = entries.len();
    let set = NumberSet::new(entries.iter().map(|e| e.number.clone()));
    st.store.run(move |s| s.replace_numbers(&entries)).await?;
    st.live.publish_numbers(set);
    tracing::info!(count, "phone number list replaced from CSV");
    Ok(Json(serde_json::json!({ "count": count })))
}

pub(super) async fn mau(
    State(st): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let month = match q.get("month") {
        None => month_of(now_millis()),
        Some(m) => parse_month(m)
            .ok_or_else(|| ApiError::BadRequest {
                field: Some("month".into()),
                message: format!("{m:?} is not YYYY-MM"),
            })?
            .to_owned(),
    };
    let m = month.clone();
    let n = st.store.run(move |s| s.monthly_active_users(&m)).await?;
    Ok(Json(
        serde_json::json!({ "month": month, "monthly_active_users": n }),
    ))
}

pub(super) async fn calls(
    State(st): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let time = |k: &str| -> Result<Option<i64>, ApiError> {
        q.get(k)
            .map(|v| {
                parse_time(v).ok_or_else(|| ApiError::BadRequest {
                    field: Some(k.to_owned()),
                    message: format!("{v:?} is not a time (RFC 3339 UTC, YYYY-MM-DD or Unix ms)"),
                })
            })
            .transpose()
    };
    let number = match q.get("number") {
        None => None,
        Some(n) if n.starts_with('+') => Some(
            parse_e164(n)
                .map_err(|e| ApiError::BadRequest {
                    field: Some("number".into()),
                    message: e.to_string(),
                })?
                .as_str()
                .to_owned(),
        ),
        Some(n) => Some(n.clone()), // a caller hash or a non-E.164 caller
    };
    if let Some(o) = q.get("outcome") {
        if CallOutcome::from_parts(o, None).is_none() {
            return Err(ApiError::BadRequest {
                field: Some("outcome".into()),
                message: format!(
                    "{o:?}: one of completed, transferred, transfer_failed, call_failed, rejected"
                ),
            });
        }
    }
    let limit = match q.get("limit") {
        None => None,
        Some(l) => Some(l.parse::<u32>().map_err(|_| ApiError::BadRequest {
            field: Some("limit".into()),
            message: format!("{l:?} is not a count"),
        })?),
    };
    let filter = CallFilter {
        from: time("from")?,
        to: time("to")?,
        number,
        outcome: q.get("outcome").cloned(),
        limit,
    };
    let rows = st.store.run(move |s| s.list_calls(&filter)).await?;
    let out: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("start_timestamp".into(), iso8601(r.started_at).into());
                obj.insert(
                    "max_response_milliseconds".into(),
                    serde_json::to_value(r.max_response_ms()).unwrap_or_default(),
                );
                obj.insert(
                    "failure_occurred".into(),
                    matches!(
                        r.outcome,
                        Some(CallOutcome::CallFailed | CallOutcome::TransferFailed)
                    )
                    .into(),
                );
                obj.insert(
                    "transfer_occurred".into(),
                    matches!(
                        r.outcome,
                        Some(CallOutcome::Transferred | CallOutcome::TransferFailed)
                    )
                    .into(),
                );
                if let Some(a) = r.answered_at {
                    obj.insert("setup_milliseconds".into(), (a - r.started_at).into());
                }
                if let Some(e) = r.ended_at {
                    obj.insert("stop_timestamp".into(), iso8601(e).into());
                    obj.insert("milliseconds_elapsed".into(), (e - r.started_at).into());
                }
            }
            v
        })
        .collect();
    Ok(Json(serde_json::json!({ "calls": out })))
}

pub(super) async fn logs(
    State(st): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = q.get("q").cloned().unwrap_or_default();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(200)
        .min(10_000);
    let mut needles = search_needles(&query);
    // A number searched as typed (`+1 958 555 0123`) also matches its E.164 form.
    if let Ok(e) = parse_e164(&query) {
        needles.extend(search_needles(e.as_str()));
    }
    let lines: Vec<serde_json::Value> = st
        .logs
        .search(&needles, limit)
        .into_iter()
        .map(|l| serde_json::from_str(&l).unwrap_or(serde_json::Value::String(l)))
        .collect();
    Ok(Json(serde_json::json!({ "query": query, "lines": lines })))
}

pub(super) async fn metrics_text(State(st): State<AdminState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics().render(st.media_cores),
    )
        .into_response()
}

/// Longest a call is considered possibly up, for the live list (older open records are
/// left-overs of a crash, not live calls).
const LIVE_WINDOW_MS: i64 = 24 * 3600 * 1000;

pub(super) async fn calls_live(
    State(st): State<AdminState>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let now = now_millis();
    let filter = CallFilter {
        from: Some(now - LIVE_WINDOW_MS),
        to: None,
        number: None,
        outcome: None,
        limit: Some(10_000),
    };
    let rows = st.store.run(move |s| s.list_calls(&filter)).await?;
    let calls: Vec<serde_json::Value> = rows
        .into_iter()
        .filter(|r| r.ended_at.is_none())
        .map(|r| {
            // This node's calls: state and turns as the call reports them. Other nodes'
            // calls (and left-overs of a crash): what the store says.
            let node = st.live_calls.get(r.id);
            let (state, turns) = match node {
                Some(c) => (c.state.label(), c.turns),
                None if r.answered_at.is_some() => ("answered", r.turns),
                None => ("ringing", r.turns),
            };
            serde_json::json!({
                "sip_call_id": r.sip_call_id,
                "instance_id": r.instance_id,
                "caller": r.caller_number.clone().unwrap_or_else(|| r.caller_hash.clone()),
                "called": r.called_number,
                "state": state,
                "start_timestamp": iso8601(r.started_at),
                "duration_ms": now - r.started_at,
                "turns": turns,
                "live_on_this_node": node.is_some(),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "calls": calls,
        "active_calls": metrics().active_calls.get(),
    })))
}

pub(super) async fn overview(State(st): State<AdminState>) -> Json<serde_json::Value> {
    let settings = st.live.settings();
    let listeners = st.sip_listeners.get().map(|l| {
        serde_json::json!({
            "udp": l.udp.to_string(),
            "tcp": l.tcp.to_string(),
            "tls": l.tls.to_string(),
            "unspecified_ip": l.udp.ip().is_unspecified(),
        })
    });
    let certificate = st.tls_certificate.get().map(|c| {
        let mut v = serde_json::to_value(c).unwrap_or_default();
        let expires = c.not_after.as_deref().and_then(parse_time);
        if let (Some(obj), Some(at)) = (v.as_object_mut(), expires) {
            obj.insert("expired".into(), (at <= now_millis()).into());
            obj.insert(
                "days_left".into(),
                (at - now_millis()).div_euclid(86_400_000).into(),
            );
        }
        v
    });
    Json(serde_json::json!({
        "sip_listeners": listeners,
        "tls_certificate": certificate,
        "plan": settings.plan,
        "max_concurrent_calls": settings.plan.max_concurrent_calls(),
        "active_calls": metrics().active_calls.get(),
        "ready": st.live.is_ready(),
        "draining": st.live.is_draining(),
        "force_secure_trunking": settings.force_secure_trunking,
        "sip_auth": settings.sip_auth.is_some(),
    }))
}
