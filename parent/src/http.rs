//! The parent's HTTP API (axum): public routes serving published bundles, health and metrics,
//! and internal routes, behind a bearer admin token, that start a round and serve per-user
//! inclusion proofs. Every error is a JSON object `{"error": "..."}`.
//!
//! | route                                     | class    | answer                                       |
//! |-------------------------------------------|----------|----------------------------------------------|
//! | `GET /v1/rounds/latest`                   | public   | latest bundle (CBOR), `x-solvency-round`, `x-solvency-manifest-digest` |
//! | `GET /v1/rounds/{n}`                      | public   | round `n`'s bundle (CBOR)                    |
//! | `GET /v1/rounds/by-digest/{digest}`       | public   | the round with that manifest digest (CBOR)   |
//! | `GET /v1/log`                             | public   | the published round log (JSON lines), `x-solvency-log-head` |
//! | `GET /healthz`                            | public   | `{"status":"ok","latest_round":n\|null}`      |
//! | `GET /metrics`                            | public   | Prometheus text format 0.0.4                 |
//! | `POST /v1/rounds`                         | internal | start a round: 202 `{"round":n,...}` or 409  |
//! | `GET /v1/rounds/{n}/inclusion/{account}`  | internal | the account's inclusion proof (JSON)         |
//! | `GET /v1/rounds/by-digest/{digest}/inclusion/{account}` | internal | the same, by manifest digest |
//!
//! Rounds are identified by their manifest digest; the numbers are the parent's labels. The
//! log lets users, auditors and regulators check they were all shown the same rounds.
//!
//! Internal routes answer 403 when no admin token is configured, and 401 (counted as an auth
//! failure) for a missing or wrong token.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::{Metrics, RouteClass, CONTENT_TYPE as METRICS_CONTENT_TYPE};
pub use crate::server::Limits;
use crate::store::{Store, StoreError};

/// Largest accepted body of `POST /v1/rounds`.
pub const MAX_TRIGGER_BODY: usize = 4096;
/// Largest accepted challenge nonce, decoded.
pub const MAX_NONCE_BYTES: usize = 512;
/// How long `POST /v1/rounds` waits for the round driver's answer before giving up with 503.
pub const TRIGGER_REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// The response header naming the round of a served bundle (the parent's label).
pub const ROUND_HEADER: &str = "x-solvency-round";
/// The response header naming a served bundle's manifest digest, which identifies the round.
pub const DIGEST_HEADER: &str = "x-solvency-manifest-digest";
/// The response header naming the published log's head.
pub const LOG_HEAD_HEADER: &str = "x-solvency-log-head";

/// Everything the handlers need.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// The bundle store served from.
    pub store: Arc<Store>,
    /// Metrics, updated per request and served at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The token internal routes require; `None` disables them.
    pub admin_token: Option<AdminToken>,
    /// Where `POST /v1/rounds` sends round requests (to the round driver).
    pub rounds: mpsc::Sender<RoundTrigger>,
}

/// The admin bearer token. Only its SHA-256 is kept; comparison is constant-time (lengths
/// included) and `Debug` does not print it.
#[derive(Clone)]
pub struct AdminToken {
    digest: [u8; 32],
}

/// An admin token that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminTokenError {
    /// Empty, or only whitespace.
    #[error("the admin token is empty")]
    Empty,
    /// Contains a character that cannot appear in an `Authorization: Bearer` header.
    #[error("the admin token contains characters other than visible ASCII")]
    NotVisibleAscii,
}

impl AdminToken {
    /// Accepts a non-empty token of visible ASCII characters (what a bearer header can carry).
    pub fn new(token: String) -> Result<AdminToken, AdminTokenError> {
        if token.trim().is_empty() {
            return Err(AdminTokenError::Empty);
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AdminTokenError::NotVisibleAscii);
        }
        Ok(AdminToken { digest: Sha256::digest(token.as_bytes()).into() })
    }

    /// Whether `candidate` is this token, in time independent of where they differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let other: [u8; 32] = Sha256::digest(candidate).into();
        let diff = self.digest.iter().zip(other.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl TryFrom<String> for AdminToken {
    type Error = AdminTokenError;

    fn try_from(token: String) -> Result<AdminToken, AdminTokenError> {
        AdminToken::new(token)
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(..redacted..)")
    }
}

/// A request to start a round, sent to the round driver. The driver answers on `reply` once the
/// round has started (`Ok(round number)`) or was refused (`Err(reason)`, e.g. one is running),
/// within [`TRIGGER_REPLY_TIMEOUT`]; if `reply` is closed when it answers, the HTTP client has
/// gone (or given up waiting) and the driver may drop the request.
#[derive(Debug)]
pub struct RoundTrigger {
    /// The auditor's challenge nonce, to be bound into the attestation document.
    pub nonce: Option<Vec<u8>>,
    /// Unix time in milliseconds by which the round must finish.
    pub deadline_ms: Option<u64>,
    /// The driver's answer.
    pub reply: oneshot::Sender<Result<u64, String>>,
}

/// The router serving every route with `state`.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/v1/rounds/latest", get(latest_bundle))
        .route("/v1/rounds/{n}", get(round_bundle))
        .route("/v1/rounds", post(trigger_round))
        .route("/v1/rounds/{n}/inclusion/{account_id}", get(inclusion_proof))
        .route("/v1/rounds/by-digest/{digest}", get(bundle_by_digest))
        .route("/v1/rounds/by-digest/{digest}/inclusion/{account_id}", get(inclusion_proof_by_digest))
        .route("/v1/log", get(published_log))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// Serves the API on `listener`, within the default [`Limits`], until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, state: HttpState) -> std::io::Result<()> {
    crate::server::serve(listener, router(state), Limits::default(), crate::server::forever()).await
}

/// Serves the API on `listener` within `limits` until `shutdown` completes, then finishes
/// in-flight requests.
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    state: HttpState,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::server::serve(listener, router(state), limits, shutdown).await
}

/// An error answer: a status and a message, sent as `{"error": message}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        tracing::error!(error = %e, "bundle store error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "bundle store error")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Runs a blocking store call off the async workers.
async fn with_store<T: Send + 'static>(
    state: &HttpState,
    call: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = Arc::clone(&state.store);
    match tokio::task::spawn_blocking(move || call(&store)).await {
        Ok(result) => Ok(result?),
        Err(e) => {
            tracing::error!(error = %e, "store task failed");
            Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "bundle store error"))
        }
    }
}

/// A round number from a path segment: decimal digits only.
fn parse_round(segment: &str) -> Result<u64, ApiError> {
    let bad = || ApiError::bad_request(format!("{segment:?} is not a round number"));
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    segment.parse().map_err(|_| bad())
}

/// A manifest digest from a path segment: 96 hex digits.
fn parse_digest(segment: &str) -> Result<[u8; 48], ApiError> {
    attestation::inclusion::manifest_digest_from_hex(segment)
        .ok_or_else(|| ApiError::bad_request("a manifest digest is 96 hex digits"))
}

fn bundle_response(round: u64, bytes: Vec<u8>, cache_control: &'static str) -> Response {
    let digest = attestation::attested::RoundBundleWire::decode(&bytes)
        .ok()
        .and_then(|w| HeaderValue::from_str(&hex::encode(w.manifest_digest())).ok());
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/cbor")),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache_control)),
            (header::HeaderName::from_static(ROUND_HEADER), HeaderValue::from(round)),
        ],
        bytes,
    )
        .into_response();
    if let Some(digest) = digest {
        response.headers_mut().insert(header::HeaderName::from_static(DIGEST_HEADER), digest);
    }
    response
}

async fn bundle_by_digest(State(state): State<HttpState>, Path(digest): Path<String>) -> Result<Response, ApiError> {
    state.metrics.http_request(RouteClass::Public);
    let digest = parse_digest(&digest)?;
    let found = with_store(&state, move |store| {
        let Some(round) = store.round_by_digest(&digest)? else {
            return Ok(None);
        };
        Ok(store.bundle(round)?.map(|bytes| (round, bytes)))
    })
    .await?;
    match found {
        Some((round, bytes)) => Ok(bundle_response(round, bytes, "public, max-age=31536000, immutable")),
        None => Err(ApiError::not_found("no published round has that manifest digest")),
    }
}

async fn published_log(State(state): State<HttpState>) -> Result<Response, ApiError> {
    state.metrics.http_request(RouteClass::Public);
    let (bytes, head) = with_store(&state, |store| {
        let (path, head, _) = store.log_file();
        let bytes = std::fs::read(&path).map_err(|source| StoreError::Io { op: "read", path, source })?;
        Ok((bytes, head))
    })
    .await?;
    let head =
        HeaderValue::from_str(&head).map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "log head"))?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/jsonl")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::HeaderName::from_static(LOG_HEAD_HEADER), head),
        ],
        bytes,
    )
        .into_response())
}

async fn latest_bundle(State(state): State<HttpState>) -> Result<Response, ApiError> {
    state.metrics.http_request(RouteClass::Public);
    let found = with_store(&state, |store| {
        let Some(round) = store.latest()? else {
            return Ok(None);
        };
        Ok(store.bundle(round)?.map(|bytes| (round, bytes)))
    })
    .await?;
    match found {
        Some((round, bytes)) => Ok(bundle_response(round, bytes, "no-cache")),
        None => Err(ApiError::not_found("no round has been published yet")),
    }
}

async fn round_bundle(State(state): State<HttpState>, Path(n): Path<String>) -> Result<Response, ApiError> {
    state.metrics.http_request(RouteClass::Public);
    let round = parse_round(&n)?;
    match with_store(&state, move |store| store.bundle(round)).await? {
        // A published round never changes.
        Some(bytes) => Ok(bundle_response(round, bytes, "public, max-age=31536000, immutable")),
        None => Err(ApiError::not_found(format!("round {round} is not published"))),
    }
}

async fn healthz(State(state): State<HttpState>) -> Response {
    state.metrics.http_request(RouteClass::Public);
    match with_store(&state, |store| store.latest()).await {
        Ok(latest) => (StatusCode::OK, Json(json!({ "status": "ok", "latest_round": latest }))).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "error", "error": "the bundle store cannot be read" })),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<HttpState>) -> Response {
    state.metrics.http_request(RouteClass::Public);
    ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], state.metrics.render()).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// Checks the admin token of an internal request (and counts the request).
fn authorize(state: &HttpState, headers: &HeaderMap) -> Result<(), ApiError> {
    state.metrics.http_request(RouteClass::Internal);
    let Some(token) = &state.admin_token else {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "internal endpoints disabled"));
    };
    let presented = headers.get(header::AUTHORIZATION).and_then(|value| {
        let (scheme, credentials) = value.to_str().ok()?.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim_start_matches(' '))
    });
    match presented {
        Some(candidate) if token.matches(candidate.as_bytes()) => Ok(()),
        _ => {
            state.metrics.auth_failure();
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong admin token"))
        }
    }
}

/// The body of `POST /v1/rounds`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    /// Hex challenge nonce.
    #[serde(default)]
    nonce: Option<String>,
    /// Seconds from now by which the round must finish.
    #[serde(default)]
    deadline_secs: Option<u64>,
}

fn now_ms() -> Result<u64, ApiError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the system clock is before 1970"))?;
    u64::try_from(now.as_millis())
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the system clock is out of range"))
}

/// Parses and checks a trigger body into (nonce, deadline in Unix milliseconds).
fn parse_trigger(body: &[u8], now_ms: u64) -> Result<(Option<Vec<u8>>, Option<u64>), ApiError> {
    let malformed = |e: serde_json::Error| ApiError::bad_request(format!("malformed request body: {e}"));
    let body: TriggerBody = if body.iter().all(u8::is_ascii_whitespace) {
        TriggerBody::default()
    } else {
        // Only an object: serde would also read a struct from an array.
        match serde_json::from_slice(body).map_err(malformed)? {
            object @ serde_json::Value::Object(_) => serde_json::from_value(object).map_err(malformed)?,
            _ => return Err(ApiError::bad_request("malformed request body: expected a JSON object")),
        }
    };
    let nonce = match body.nonce {
        None => None,
        Some(text) => {
            if text.len() > 2 * MAX_NONCE_BYTES {
                return Err(ApiError::bad_request(format!("nonce longer than {MAX_NONCE_BYTES} bytes")));
            }
            let bytes = hex::decode(&text).map_err(|e| ApiError::bad_request(format!("nonce is not hex: {e}")))?;
            if bytes.is_empty() {
                return Err(ApiError::bad_request("nonce is empty; omit it instead"));
            }
            Some(bytes)
        }
    };
    let deadline_ms = match body.deadline_secs {
        None => None,
        Some(0) => return Err(ApiError::bad_request("deadline_secs must be positive")),
        Some(secs) => Some(
            secs.checked_mul(1000)
                .and_then(|ms| ms.checked_add(now_ms))
                .ok_or_else(|| ApiError::bad_request("deadline_secs is out of range"))?,
        ),
    };
    Ok((nonce, deadline_ms))
}

async fn trigger_round(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let body = axum::body::to_bytes(body, MAX_TRIGGER_BODY).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {MAX_TRIGGER_BODY} bytes or unreadable"),
        )
    })?;
    let (nonce, deadline_ms) = parse_trigger(&body, now_ms()?)?;
    let (reply, answer) = oneshot::channel();
    state.rounds.try_send(RoundTrigger { nonce, deadline_ms, reply }).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "a round request is already waiting; try again later")
        }
        mpsc::error::TrySendError::Closed(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the round driver is not running")
        }
    })?;
    let answer = tokio::time::timeout(TRIGGER_REPLY_TIMEOUT, answer)
        .await
        .map_err(|_| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the round driver did not answer in time"))?;
    match answer {
        Ok(Ok(round)) => {
            Ok((StatusCode::ACCEPTED, Json(json!({ "round": round, "status": "started" }))).into_response())
        }
        Ok(Err(reason)) => Err(ApiError::new(StatusCode::CONFLICT, reason)),
        Err(_) => Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the round driver dropped the request")),
    }
}

async fn inclusion_proof_by_digest(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path((digest, account_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let digest = parse_digest(&digest)?;
    let found = with_store(&state, move |store| match store.round_by_digest(&digest)? {
        Some(round) => store.inclusion_proof(round, &account_id),
        None => Ok(None),
    })
    .await?;
    match found {
        Some(json) => Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response()),
        None => Err(ApiError::not_found("no inclusion proof for that account in that round")),
    }
}

async fn inclusion_proof(
    State(state): State<HttpState>,
    headers: HeaderMap,
    Path((n, account_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let round = parse_round(&n)?;
    match with_store(&state, move |store| store.inclusion_proof(round, &account_id)).await? {
        Some(json) => Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response()),
        None => Err(ApiError::not_found(format!("no inclusion proof for that account in round {round}"))),
    }
}

#[cfg(test)]
mod tests {
    /// A made-up log identity for a made-up bundle.
    fn fake_identity(bundle: &[u8]) -> crate::store::log::RoundIdentity {
        use sha2::Digest as _;
        let digest: [u8; 48] = sha2::Sha384::digest(bundle).into();
        crate::store::log::RoundIdentity { manifest_digest: digest, attested_ms: 1_700_000_000_000 }
    }

    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    const TOKEN: &str = "s3cret-admin-token";

    struct Harness {
        _dir: tempfile::TempDir,
        state: HttpState,
        triggers: mpsc::Receiver<RoundTrigger>,
    }

    fn harness(token: Option<&str>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let (rounds, triggers) = mpsc::channel(1);
        let admin_token = token.map(|t| AdminToken::new(t.to_string()).unwrap());
        Harness {
            _dir: dir,
            state: HttpState { store, metrics: Arc::new(Metrics::new()), admin_token, rounds },
            triggers,
        }
    }

    fn commit(store: &Store, round: u64, bundle: &[u8], accounts: &[(&str, &[u8])]) {
        let mut pending = store.begin(round).unwrap();
        pending.write_bundle(bundle).unwrap();
        pending.set_identity(fake_identity(bundle)).unwrap();
        for (id, json) in accounts {
            pending.add_inclusion_proof(id, json).unwrap();
        }
        pending.commit().unwrap();
    }

    async fn send(state: &HttpState, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = router(state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, body.to_vec())
    }

    async fn get(state: &HttpState, uri: &str, token: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::get(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        send(state, request.body(Body::empty()).unwrap()).await
    }

    async fn post_round(state: &HttpState, body: &str, token: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let mut request = Request::post("/v1/rounds").header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        send(state, request.body(Body::from(body.to_string())).unwrap()).await
    }

    fn json_of(body: &[u8]) -> serde_json::Value {
        serde_json::from_slice(body).unwrap()
    }

    fn error_of(body: &[u8]) -> String {
        json_of(body)["error"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn latest_is_404_until_a_round_is_committed() {
        let h = harness(None);
        let (status, headers, body) = get(&h.state, "/v1/rounds/latest", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(error_of(&body), "no round has been published yet");

        commit(&h.state.store, 4, b"\xa1bundle four", &[]);
        commit(&h.state.store, 9, b"\xa1bundle nine", &[]);
        let (status, headers, body) = get(&h.state, "/v1/rounds/latest", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/cbor");
        assert_eq!(headers[ROUND_HEADER], "9");
        assert_eq!(body, b"\xa1bundle nine");
    }

    #[tokio::test]
    async fn rounds_are_served_by_number() {
        let h = harness(None);
        commit(&h.state.store, 4, b"four", &[]);
        commit(&h.state.store, 9, b"nine", &[]);
        let (status, headers, body) = get(&h.state, "/v1/rounds/4", None).await;
        assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"four"[..]));
        assert_eq!(headers[ROUND_HEADER], "4");
        assert!(headers[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        assert_eq!(get(&h.state, "/v1/rounds/0009", None).await.2, b"nine");
        assert_eq!(get(&h.state, "/v1/rounds/5", None).await.0, StatusCode::NOT_FOUND);
        for bad in ["abc", "-1", "+4", "4.0", "18446744073709551616", "%20"] {
            let (status, _, body) = get(&h.state, &format!("/v1/rounds/{bad}"), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(error_of(&body).contains("not a round number"));
        }
        assert_eq!(get(&h.state, "/nowhere", None).await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn healthz_reports_the_latest_round_or_503() {
        let h = harness(None);
        let (status, _, body) = get(&h.state, "/healthz", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json_of(&body), json!({ "status": "ok", "latest_round": null }));
        commit(&h.state.store, 2, b"two", &[]);
        assert_eq!(json_of(&get(&h.state, "/healthz", None).await.2), json!({ "status": "ok", "latest_round": 2 }));

        std::fs::write(h.state.store.dir().join("latest"), b"3\n").unwrap();
        let (status, _, body) = get(&h.state, "/healthz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json_of(&body)["status"], "error");
        let (status, _, body) = get(&h.state, "/v1/rounds/latest", None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error_of(&body), "bundle store error");
    }

    #[tokio::test]
    async fn metrics_are_served_as_prometheus_text_and_count_requests() {
        let h = harness(Some(TOKEN));
        get(&h.state, "/healthz", None).await;
        post_round(&h.state, "{}", Some("wrong")).await;
        let (status, headers, body) = get(&h.state, "/metrics", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
        let text = String::from_utf8(body).unwrap();
        assert!(text.contains("\nsolvency_parent_http_requests_total{class=\"public\"} 2\n"), "{text}");
        assert!(text.contains("\nsolvency_parent_http_requests_total{class=\"internal\"} 1\n"), "{text}");
        assert!(text.contains("\nsolvency_parent_http_auth_failures_total 1\n"), "{text}");
    }

    #[tokio::test]
    async fn internal_routes_need_the_admin_token() {
        let h = harness(Some(TOKEN));
        let (status, headers, body) = post_round(&h.state, "{}", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(error_of(&body), "missing or wrong admin token");
        assert_eq!(post_round(&h.state, "{}", Some("s3cret-admin-tokem")).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(post_round(&h.state, "{}", Some("s3cret-admin-token2")).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(post_round(&h.state, "{}", Some("")).await.0, StatusCode::UNAUTHORIZED);
        let basic = Request::post("/v1/rounds").header(header::AUTHORIZATION, format!("Basic {TOKEN}"));
        assert_eq!(send(&h.state, basic.body(Body::empty()).unwrap()).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(get(&h.state, "/v1/rounds/1/inclusion/alice", None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(get(&h.state, "/v1/rounds/1/inclusion/alice", Some("nope")).await.0, StatusCode::UNAUTHORIZED);
        assert!(h.state.metrics.render().contains("\nsolvency_parent_http_auth_failures_total 7\n"));
    }

    #[tokio::test]
    async fn internal_routes_are_disabled_without_a_configured_token() {
        let h = harness(None);
        for (status, _, body) in [
            post_round(&h.state, "{}", Some(TOKEN)).await,
            get(&h.state, "/v1/rounds/1/inclusion/alice", Some(TOKEN)).await,
        ] {
            assert_eq!(status, StatusCode::FORBIDDEN);
            assert_eq!(error_of(&body), "internal endpoints disabled");
        }
        assert!(h.state.metrics.render().contains("\nsolvency_parent_http_auth_failures_total 0\n"));
    }

    #[tokio::test]
    async fn a_round_request_reaches_the_driver_and_its_answer_is_forwarded() {
        let mut h = harness(Some(TOKEN));
        let driver = tokio::spawn(async move {
            let first = h.triggers.recv().await.unwrap();
            let seen = (first.nonce.clone(), first.deadline_ms);
            first.reply.send(Ok(42)).unwrap();
            let second = h.triggers.recv().await.unwrap();
            assert_eq!((second.nonce.clone(), second.deadline_ms), (None, None));
            second.reply.send(Err("a round is already running".to_string())).unwrap();
            seen
        });
        let before = now_ms().unwrap();
        let (status, _, body) = post_round(&h.state, r#"{"nonce": "00ffAB", "deadline_secs": 60}"#, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::ACCEPTED);
        assert_eq!(json_of(&body), json!({ "round": 42, "status": "started" }));
        let (status, _, body) = post_round(&h.state, "", Some(TOKEN)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(error_of(&body), "a round is already running");

        let (nonce, deadline_ms) = driver.await.unwrap();
        assert_eq!(nonce, Some(vec![0x00, 0xff, 0xab]));
        let deadline_ms = deadline_ms.unwrap();
        assert!(deadline_ms >= before + 60_000 && deadline_ms <= now_ms().unwrap() + 60_000);
    }

    #[tokio::test]
    async fn bad_round_requests_are_400() {
        let h = harness(Some(TOKEN));
        let too_long = format!(r#"{{"nonce": "{}"}}"#, "ab".repeat(MAX_NONCE_BYTES + 1));
        let cases = [
            (r#"{"nonce": "xyz"}"#, "nonce is not hex"),
            (r#"{"nonce": "abc"}"#, "nonce is not hex"),
            (r#"{"nonce": ""}"#, "nonce is empty"),
            (too_long.as_str(), "nonce longer than 512 bytes"),
            (r#"{"nonce": 5}"#, "malformed request body"),
            (r#"{"deadline_secs": -1}"#, "malformed request body"),
            (r#"{"deadline_secs": 0}"#, "deadline_secs must be positive"),
            (r#"{"deadline_secs": 18446744073709551615}"#, "deadline_secs is out of range"),
            (r#"{"nonse": "00"}"#, "malformed request body"),
            ("{", "malformed request body"),
            ("[]", "malformed request body: expected a JSON object"),
            ("null", "malformed request body: expected a JSON object"),
        ];
        for (body, expected) in cases {
            let (status, _, answer) = post_round(&h.state, body, Some(TOKEN)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(error_of(&answer).starts_with(expected), "{body}: {}", error_of(&answer));
        }
        // A nonce of exactly the limit passes the checks (and then finds the driver busy: the
        // test never reads the channel, whose one slot this request fills).
        let at_limit = format!(r#"{{"nonce": "{}"}}"#, "ab".repeat(MAX_NONCE_BYTES));
        let fill = post_round(&h.state, &at_limit, Some(TOKEN));
        assert!(tokio::time::timeout(std::time::Duration::from_millis(200), fill).await.is_err());
        let (status, _, answer) = post_round(&h.state, "{}", Some(TOKEN)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(error_of(&answer).contains("already waiting"));

        let oversized = format!(r#"{{"nonce": "00", "pad": "{}"}}"#, " ".repeat(MAX_TRIGGER_BODY));
        assert_eq!(post_round(&h.state, &oversized, Some(TOKEN)).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_stopped_driver_is_503() {
        let h = harness(Some(TOKEN));
        drop(h.triggers);
        let (status, _, body) = post_round(&h.state, "{}", Some(TOKEN)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error_of(&body), "the round driver is not running");
    }

    #[tokio::test]
    async fn a_driver_dropping_the_request_is_503() {
        let mut h = harness(Some(TOKEN));
        let driver = tokio::spawn(async move { drop(h.triggers.recv().await.unwrap()) });
        let (status, _, body) = post_round(&h.state, "{}", Some(TOKEN)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error_of(&body), "the round driver dropped the request");
        driver.await.unwrap();
    }

    #[tokio::test]
    async fn inclusion_proofs_are_served_with_the_token() {
        let h = harness(Some(TOKEN));
        commit(&h.state.store, 3, b"three", &[("alice", b"{\"alice\":true}"), ("a b/../c", b"{\"odd\":true}")]);
        let (status, headers, body) = get(&h.state, "/v1/rounds/3/inclusion/alice", Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(body, b"{\"alice\":true}");
        let (status, _, body) = get(&h.state, "/v1/rounds/3/inclusion/a%20b%2F..%2Fc", Some(TOKEN)).await;
        assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"{\"odd\":true}"[..]));
        assert_eq!(get(&h.state, "/v1/rounds/3/inclusion/bob", Some(TOKEN)).await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&h.state, "/v1/rounds/4/inclusion/alice", Some(TOKEN)).await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&h.state, "/v1/rounds/x/inclusion/alice", Some(TOKEN)).await.0, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn serve_answers_over_a_real_socket() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let h = harness(None);
        commit(&h.state.store, 1, b"one", &[]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_with_shutdown(listener, h.state.clone(), Limits::default(), async {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET /v1/rounds/latest HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8(response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.contains("\r\nx-solvency-round: 1\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\none"), "{response}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    /// Sends `GET /healthz` on a fresh connection and returns the status line, within 5 s.
    async fn healthz(addr: std::net::SocketAddr) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.expect("the answer, not a reset");
            String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned()
        };
        tokio::time::timeout(Duration::from_secs(5), exchange).await.expect("an answer within 5 s")
    }

    #[tokio::test]
    async fn idle_half_requests_are_closed_and_connections_beyond_the_cap_get_503() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let h = harness(None);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits =
            Limits { max_connections: 8, header_read_timeout: Duration::from_millis(500), request_timeout: Duration::from_secs(5) };
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_with_shutdown(listener, h.state.clone(), limits, async {
            let _ = stopped.await;
        }));
        // Every slot held by an unfinished request, as the attack did with 1,040 of them.
        let mut idle = Vec::new();
        for _ in 0..8 {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
            idle.push(stream);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Beyond the cap: a clear answer at once, not a hang.
        assert_eq!(healthz(addr).await, "HTTP/1.1 503 Service Unavailable");
        // The half-requests run out of time and are closed; the API answers again.
        for stream in &mut idle {
            let mut rest = Vec::new();
            let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
            assert!(closed.is_ok(), "an idle half-request was not closed");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(healthz(addr).await, "HTTP/1.1 200 OK");
        // A connection that sends nothing at all is closed too (the keep-alive idle limit).
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "a silent connection was not closed");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn admin_token_is_redacted_and_compared_exactly() {
        let token = AdminToken::new(TOKEN.to_string()).unwrap();
        assert_eq!(format!("{token:?}"), "AdminToken(..redacted..)");
        assert!(token.matches(TOKEN.as_bytes()));
        assert!(!token.matches(b"s3cret-admin-toke"));
        assert!(!token.matches(b""));
        assert_eq!(AdminToken::new(String::new()).unwrap_err(), AdminTokenError::Empty);
        assert_eq!(AdminToken::new("  ".to_string()).unwrap_err(), AdminTokenError::Empty);
        assert_eq!(AdminToken::new("a b".to_string()).unwrap_err(), AdminTokenError::NotVisibleAscii);
    }
}
