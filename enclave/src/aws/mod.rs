//! The AWS API as the enclave reads it: Query-protocol requests signed with SigV4 (`aws-sigv4`),
//! sent over TLS that ends in the enclave ([`crate::net`]) to the regional endpoint, whose
//! certificate must chain to the Mozilla roots compiled into the image. The parent supplies the
//! credentials and relays the bytes; it can refuse to, but it cannot answer in AWS's name.
//! [`rds`] reads an RDS instance's immutable identity.

pub mod rds;

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
pub use channel::protocol::AwsCredentials;

use crate::net::{self, HttpsTarget, NetError, Route};
use crate::tls::ServerPin;

/// Largest API answer read.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an AWS API call failed.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// The request could not be built or signed.
    #[error("signing the request: {0}")]
    Signing(String),
    /// The endpoint could not be reached, or its TLS or HTTP failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// AWS answered with an error.
    #[error("{action}: AWS answered {status}: {code}: {message}")]
    Api {
        /// The action.
        action: &'static str,
        /// HTTP status.
        status: u16,
        /// AWS's error code.
        code: String,
        /// AWS's message.
        message: String,
    },
    /// The answer is not the XML the action returns.
    #[error("{action}: malformed answer: {reason}")]
    Malformed {
        /// The action.
        action: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The instance is not the one the enclave connected to, or not one at all.
    #[error("{0}")]
    Identity(String),
}

/// AWS credentials from the standard environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), if set.
pub fn credentials_from_env() -> Option<AwsCredentials> {
    let access_key_id = std::env::var("AWS_ACCESS_KEY_ID").ok()?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok()?;
    Some(AwsCredentials {
        access_key_id,
        secret_access_key: channel::protocol::Secret::new(secret),
        session_token: std::env::var("AWS_SESSION_TOKEN").ok().map(channel::protocol::Secret::new),
    })
}

/// Where a service's API is and how its server is recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiEndpoint {
    /// The region (also the signing region).
    pub region: String,
    /// Where requests go (`rds.<region>.amazonaws.com:443` unless overridden in development).
    pub target: HttpsTarget,
}

impl ApiEndpoint {
    /// The regional endpoint of `service` in `region`, trusted through the built-in roots.
    pub fn regional(service: &str, region: &str) -> Self {
        Self {
            region: region.to_owned(),
            target: HttpsTarget {
                host: format!("{service}.{region}.amazonaws.com"),
                port: 443,
                pin: ServerPin::WebPki,
            },
        }
    }
}

/// Sends a signed Query-protocol `POST` of `form` (already URL-encoded, including `Action` and
/// `Version`) to `service` at `endpoint`, at time `now`, and returns the answer body on success.
pub async fn query(
    route: &Route,
    endpoint: &ApiEndpoint,
    service: &str,
    action: &'static str,
    form: String,
    credentials: &AwsCredentials,
    now: SystemTime,
) -> Result<Bytes, AwsError> {
    let body = Bytes::from(form);
    let mut request =
        net::post(&endpoint.target, "/", "application/x-www-form-urlencoded; charset=utf-8", body.clone())
            .map_err(|e| AwsError::Signing(e.to_string()))?;
    sign_request(&mut request, &endpoint.target, &endpoint.region, service, credentials, now)?;
    let answer = net::https(route, &endpoint.target, request, MAX_ANSWER_BYTES, CALL_TIMEOUT).await?;
    if !answer.status.is_success() {
        let text = String::from_utf8_lossy(&answer.body);
        let (code, message) = error_fields(&text);
        return Err(AwsError::Api { action, status: answer.status.as_u16(), code, message });
    }
    Ok(answer.body)
}

fn sign_request(
    request: &mut http::Request<Bytes>,
    target: &HttpsTarget,
    region: &str,
    service: &str,
    credentials: &AwsCredentials,
    now: SystemTime,
) -> Result<(), AwsError> {
    let signing = |e: &dyn std::fmt::Display| AwsError::Signing(e.to_string());
    let identity: Identity = Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.expose().to_owned(),
        credentials.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "solvency-parent",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| signing(&e))?
        .into();
    // The signature covers the URL with its authority; the request itself carries an
    // origin-form target and the same authority in `Host`.
    let url = format!("https://{}{}", target.authority(), request.uri());
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter(|(name, _)| *name != http::header::HOST)
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let signable = SignableRequest::new(
        request.method().as_str(),
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|e| signing(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| signing(&e))?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// `Code` and `Message` of an AWS Query-protocol error document, or the text itself.
fn error_fields(text: &str) -> (String, String) {
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return ("?".into(), text.chars().take(200).collect());
    };
    let find =
        |name: &str| doc.descendants().find(|n| n.has_tag_name(name)).and_then(|n| n.text()).unwrap_or("?").to_owned();
    (find("Code"), find("Message"))
}

/// Percent-encodes a form value (RFC 3986 unreserved characters kept).
pub fn form_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_read_from_their_xml() {
        let text = "<ErrorResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><Error><Type>Sender</Type>\
                    <Code>DBInstanceNotFound</Code><Message>DBInstance ledger not found.</Message></Error></ErrorResponse>";
        assert_eq!(error_fields(text), ("DBInstanceNotFound".into(), "DBInstance ledger not found.".into()));
        assert_eq!(error_fields("gateway timeout").0, "?");
        assert_eq!(form_value("arn:aws:rds:eu-west-1:1:db:x y"), "arn%3Aaws%3Ards%3Aeu-west-1%3A1%3Adb%3Ax%20y");
    }

    #[test]
    fn a_signed_request_carries_the_signature_and_the_token() {
        let target = HttpsTarget { host: "rds.us-east-1.amazonaws.com".into(), port: 443, pin: ServerPin::WebPki };
        let mut request =
            net::post(&target, "/", "application/x-www-form-urlencoded; charset=utf-8", Bytes::from("Action=X"))
                .unwrap();
        let credentials = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: channel::protocol::Secret::new("secret".into()),
            session_token: Some(channel::protocol::Secret::new("token".into())),
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_735_689_600);
        sign_request(&mut request, &target, "us-east-1", "rds", &credentials, at).unwrap();
        let auth = request.headers()[http::header::AUTHORIZATION].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/rds/aws4_request"),
            "{auth}"
        );
        assert_eq!(request.headers()["x-amz-security-token"], "token");
        assert_eq!(request.headers()["x-amz-date"], "20250101T000000Z");
        assert!(!format!("{credentials:?}").contains("secret"));
    }
}
