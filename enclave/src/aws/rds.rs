//! An Amazon RDS or Aurora instance's identity as AWS reports it (`DescribeDBInstances`), and the
//! check that it is the server the enclave's database connection reached: the instance's
//! endpoint must be the host name the connection's TLS verified against the RDS certificate
//! authorities. Its `DbiResourceId` never changes for the life of the instance, so a snapshot
//! restored into a new instance, or another instance renamed into this one's name, is recorded as
//! what it is.

use std::time::SystemTime;

use attestation::manifest::RdsIdentity;
use serde::Deserialize;

use super::{form_value, query, ApiEndpoint, AwsCredentials, AwsError};
use crate::net::{HttpsTarget, Route};
use crate::tls::ServerPin;

/// The RDS API version this speaks.
const VERSION: &str = "2014-10-31";
/// The RDS certificate authorities' root certificates, compiled in (see the file's header).
const RDS_CA_ROOTS: &str = include_str!("rds-ca-roots.pem");

/// The RDS roots, DER.
pub fn ca_roots() -> Vec<Vec<u8>> {
    // The file is part of the source; a malformed certificate in it fails the test below.
    crate::tls::pem_certificates(RDS_CA_ROOTS.as_bytes()).unwrap_or_default()
}

/// `[database.rds]` of the round configuration.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RdsConfig {
    /// The instance's region.
    pub region: String,
    /// `DBInstanceIdentifier` (or its ARN).
    pub instance_id: String,
    /// Development only: another API endpoint (`https://host:port`), for a local AWS API server.
    /// An enclave refuses it unless started with `--allow-development-aws-endpoint`.
    #[serde(default)]
    pub api_endpoint: Option<String>,
    /// Development only: a PEM file of the CA the `api_endpoint` server's certificate must chain to.
    #[serde(default)]
    pub api_ca: Option<std::path::PathBuf>,
}

impl RdsConfig {
    /// Whether this configuration points the API anywhere but AWS's regional endpoint.
    pub fn is_development(&self) -> bool {
        self.api_endpoint.is_some() || self.api_ca.is_some()
    }

    /// The API endpoint: the regional one, or the development override.
    pub fn endpoint(&self) -> Result<ApiEndpoint, String> {
        let Some(url) = &self.api_endpoint else {
            if self.api_ca.is_some() {
                return Err("`api_ca` without `api_endpoint`".into());
            }
            return Ok(ApiEndpoint::regional("rds", &self.region));
        };
        let rest = url.strip_prefix("https://").ok_or("`api_endpoint` must be an https:// URL")?;
        let authority = rest.trim_end_matches('/');
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse::<u16>().map_err(|_| "`api_endpoint` has a bad port")?),
            None => (authority, 443),
        };
        let pin = match &self.api_ca {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| format!("`api_ca` {}: {e}", path.display()))?;
                ServerPin::Ca(crate::tls::pem_certificates(&pem)?)
            }
            None => ServerPin::WebPki,
        };
        Ok(ApiEndpoint { region: self.region.clone(), target: HttpsTarget { host: host.to_owned(), port, pin } })
    }
}

/// Reads the instance's identity and checks that its endpoint is `connected_host`, the host name
/// whose certificate the database connection verified.
pub async fn read_identity(
    route: &Route,
    config: &RdsConfig,
    connected_host: &str,
    credentials: &AwsCredentials,
    now: SystemTime,
) -> Result<RdsIdentity, AwsError> {
    let endpoint = config.endpoint().map_err(AwsError::Identity)?;
    let form = format!(
        "Action=DescribeDBInstances&Version={VERSION}&DBInstanceIdentifier={}",
        form_value(&config.instance_id)
    );
    let body = query(route, &endpoint, "rds", "DescribeDBInstances", form, credentials, now).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| AwsError::Malformed { action: "DescribeDBInstances", reason: "not UTF-8".into() })?;
    let identity = parse_instance(text, &endpoint)?;
    if !identity.endpoint.eq_ignore_ascii_case(connected_host) {
        return Err(AwsError::Identity(format!(
            "RDS instance {} has the endpoint {}, but the database connection went to {connected_host}",
            identity.instance_id, identity.endpoint
        )));
    }
    Ok(identity)
}

/// Parses a `DescribeDBInstances` answer holding exactly one instance.
fn parse_instance(text: &str, endpoint: &ApiEndpoint) -> Result<RdsIdentity, AwsError> {
    let malformed = |reason: String| AwsError::Malformed { action: "DescribeDBInstances", reason };
    let doc = roxmltree::Document::parse(text).map_err(|e| malformed(e.to_string()))?;
    let instances: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("DBInstance")).collect();
    let [instance] = instances.as_slice() else {
        return Err(malformed(format!("{} instances in the answer, expected one", instances.len())));
    };
    let child = |name: &str| -> Result<String, AwsError> {
        instance
            .children()
            .find(|n| n.has_tag_name(name))
            .and_then(|n| n.text())
            .map(str::to_owned)
            .ok_or_else(|| malformed(format!("no {name}")))
    };
    let address = instance
        .children()
        .find(|n| n.has_tag_name("Endpoint"))
        .and_then(|e| e.children().find(|n| n.has_tag_name("Address")))
        .and_then(|n| n.text())
        .map(str::to_owned)
        .ok_or_else(|| malformed("no Endpoint/Address (is the instance still being created?)".into()))?;
    let arn = child("DBInstanceArn")?;
    // arn:aws:rds:<region>:<account>:db:<id>
    let parts: Vec<&str> = arn.split(':').collect();
    let (region, account) = match parts.as_slice() {
        [_, _, "rds", region, account, "db", _] => (*region, *account),
        _ => return Err(malformed(format!("unexpected ARN {arn:?}"))),
    };
    if region != endpoint.region {
        return Err(AwsError::Identity(format!(
            "the instance's ARN names region {region}, the API is {}'s",
            endpoint.region
        )));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!("the ARN's account {account:?} is not 12 digits")));
    }
    Ok(RdsIdentity {
        region: region.to_owned(),
        account: account.to_owned(),
        instance_id: child("DBInstanceIdentifier")?,
        dbi_resource_id: child("DbiResourceId")?,
        arn,
        endpoint: address,
        created: child("InstanceCreateTime")?,
        api_host: endpoint.target.host.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str = "<DescribeDBInstancesResponse xmlns=\"http://rds.amazonaws.com/doc/2014-10-31/\"><DescribeDBInstancesResult>\
        <DBInstances><DBInstance><DBInstanceIdentifier>ledger</DBInstanceIdentifier><Endpoint><Address>ledger.c9akciq32.eu-west-1.rds.amazonaws.com</Address>\
        <Port>5432</Port></Endpoint><InstanceCreateTime>2024-03-01T10:00:00Z</InstanceCreateTime>\
        <DbiResourceId>db-NH5SAUSODVRMGDFOCWW74POB4Y</DbiResourceId><DBInstanceArn>arn:aws:rds:eu-west-1:123456789012:db:ledger</DBInstanceArn>\
        </DBInstance></DBInstances></DescribeDBInstancesResult></DescribeDBInstancesResponse>";

    #[test]
    fn the_built_in_roots_are_the_rds_certificate_authorities() {
        let roots = ca_roots();
        assert_eq!(roots.len(), 96);
        for der in &roots {
            let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
            let subject = cert.subject().to_string();
            assert!(subject.contains("Amazon RDS") && subject.contains("Root CA"), "{subject}");
            assert_eq!(cert.subject(), cert.issuer(), "roots are self-signed");
        }
    }

    #[test]
    fn an_answer_gives_the_instance_identity() {
        let endpoint = ApiEndpoint::regional("rds", "eu-west-1");
        let id = parse_instance(ANSWER, &endpoint).unwrap();
        assert_eq!(id.account, "123456789012");
        assert_eq!(id.dbi_resource_id, "db-NH5SAUSODVRMGDFOCWW74POB4Y");
        assert_eq!(id.endpoint, "ledger.c9akciq32.eu-west-1.rds.amazonaws.com");
        assert_eq!(id.api_host, "rds.eu-west-1.amazonaws.com");
        let other_region = ApiEndpoint::regional("rds", "us-east-1");
        assert!(matches!(parse_instance(ANSWER, &other_region), Err(AwsError::Identity(_))));
        let two = ANSWER.replace("</DBInstances>", "<DBInstance/></DBInstances>");
        assert!(matches!(parse_instance(&two, &endpoint), Err(AwsError::Malformed { .. })));
        let no_endpoint = ANSWER.replace("<Address>ledger.c9akciq32.eu-west-1.rds.amazonaws.com</Address>", "");
        assert!(matches!(parse_instance(&no_endpoint, &endpoint), Err(AwsError::Malformed { .. })));
    }

    #[test]
    fn development_endpoints_are_recognised() {
        let config =
            RdsConfig { region: "us-east-1".into(), instance_id: "x".into(), api_endpoint: None, api_ca: None };
        assert!(!config.is_development());
        assert_eq!(config.endpoint().unwrap().target.host, "rds.us-east-1.amazonaws.com");
        let local = RdsConfig { api_endpoint: Some("https://localhost:4566".into()), ..config.clone() };
        assert!(local.is_development());
        assert_eq!(local.endpoint().unwrap().target.port, 4566);
        let plain = RdsConfig { api_endpoint: Some("http://localhost:4566".into()), ..config };
        assert!(plain.endpoint().is_err());
    }
}
