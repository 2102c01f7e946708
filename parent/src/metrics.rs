//! The parent's Prometheus metrics: counters and gauges kept in atomics, updated by the round
//! driver, the proxy and the HTTP server, and rendered in the text exposition format 0.0.4 for
//! `GET /metrics`. Times are given by the caller, never read here.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Which kind of HTTP route a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteClass {
    /// Unauthenticated routes: bundles, health, metrics.
    Public,
    /// Routes that require the admin token.
    Internal,
}

/// The parent's metrics. Every method is lock-free; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct Metrics {
    rounds_started: AtomicU64,
    rounds_succeeded: AtomicU64,
    rounds_failed: AtomicU64,
    setup_rounds: AtomicU64,
    last_success_round: AtomicU64,
    last_success_unix_seconds: AtomicU64,
    /// `f64` bits of the last finished round's duration in seconds.
    last_round_duration_bits: AtomicU64,
    /// Whether any round has finished (so the duration gauge means something).
    rounds_finished: AtomicU64,
    proxy_allowed: AtomicU64,
    proxy_refused: AtomicU64,
    http_public: AtomicU64,
    http_internal: AtomicU64,
    auth_failures: AtomicU64,
}

impl Metrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// A proving round started.
    pub fn round_started(&self) {
        self.rounds_started.fetch_add(1, Ordering::Relaxed);
    }

    /// A setup round (key generation for a new circuit shape) started.
    pub fn setup_round(&self) {
        self.setup_rounds.fetch_add(1, Ordering::Relaxed);
    }

    /// Round `round` was committed to the store at `finished_unix_seconds`, after `duration`.
    pub fn round_succeeded(&self, round: u64, finished_unix_seconds: u64, duration: Duration) {
        self.last_success_round.store(round, Ordering::Relaxed);
        self.last_success_unix_seconds.store(finished_unix_seconds, Ordering::Relaxed);
        self.record_duration(duration);
        // Release: a reader that sees the new count sees the gauges set above.
        self.rounds_succeeded.fetch_add(1, Ordering::Release);
    }

    /// A round failed after `duration`.
    pub fn round_failed(&self, duration: Duration) {
        self.record_duration(duration);
        self.rounds_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The proxy accepted (`true`) or refused (`false`) a connection request from the enclave.
    pub fn proxy_connection(&self, allowed: bool) {
        let counter = if allowed { &self.proxy_allowed } else { &self.proxy_refused };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The HTTP server received a request for a route of class `class`.
    pub fn http_request(&self, class: RouteClass) {
        let counter = match class {
            RouteClass::Public => &self.http_public,
            RouteClass::Internal => &self.http_internal,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// An internal route was called with a missing or wrong admin token.
    pub fn auth_failure(&self) {
        self.auth_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn record_duration(&self, duration: Duration) {
        self.last_round_duration_bits.store(duration.as_secs_f64().to_bits(), Ordering::Relaxed);
        self.rounds_finished.fetch_add(1, Ordering::Release);
    }

    /// The metrics in the Prometheus text exposition format 0.0.4. Gauges about the last
    /// (successful) round have no sample until there is one.
    pub fn render(&self) -> String {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let succeeded = self.rounds_succeeded.load(Ordering::Acquire);
        let finished = self.rounds_finished.load(Ordering::Acquire);
        let mut out = String::with_capacity(2048);
        let counters: [(&str, &str, Samples<'_>); 6] = [
            ("rounds_started_total", "Proving rounds started.", &[("", load(&self.rounds_started))]),
            ("rounds_succeeded_total", "Proving rounds committed to the store.", &[("", succeeded)]),
            ("rounds_failed_total", "Proving rounds that failed.", &[("", load(&self.rounds_failed))]),
            ("setup_rounds_total", "Setup (key generation) rounds started.", &[("", load(&self.setup_rounds))]),
            (
                "proxy_connections_total",
                "Enclave connection requests to the proxy, by outcome.",
                &[("result=\"allowed\"", load(&self.proxy_allowed)), ("result=\"refused\"", load(&self.proxy_refused))],
            ),
            (
                "http_requests_total",
                "HTTP requests, by route class.",
                &[("class=\"public\"", load(&self.http_public)), ("class=\"internal\"", load(&self.http_internal))],
            ),
        ];
        for (name, help, samples) in counters {
            header(&mut out, name, help, "counter");
            for (labels, value) in samples {
                sample(&mut out, name, labels, &value.to_string());
            }
        }
        let name = "http_auth_failures_total";
        header(&mut out, name, "Internal HTTP requests with a missing or wrong admin token.", "counter");
        sample(&mut out, name, "", &load(&self.auth_failures).to_string());

        let name = "last_success_round";
        header(&mut out, name, "Number of the last round committed to the store.", "gauge");
        if succeeded > 0 {
            sample(&mut out, name, "", &load(&self.last_success_round).to_string());
        }
        let name = "last_success_timestamp_seconds";
        header(&mut out, name, "Unix time at which the last successful round was committed.", "gauge");
        if succeeded > 0 {
            sample(&mut out, name, "", &load(&self.last_success_unix_seconds).to_string());
        }
        let name = "last_round_duration_seconds";
        header(&mut out, name, "Duration of the last finished round, successful or not.", "gauge");
        if finished > 0 {
            let seconds = f64::from_bits(load(&self.last_round_duration_bits));
            sample(&mut out, name, "", &seconds.to_string());
        }
        out
    }
}

/// Label sets (rendered inside `{}`, empty for none) and their values.
type Samples<'a> = &'a [(&'a str, u64)];

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP solvency_parent_{name} {help}");
    let _ = writeln!(out, "# TYPE solvency_parent_{name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: &str) {
    if labels.is_empty() {
        let _ = writeln!(out, "solvency_parent_{name} {value}");
    } else {
        let _ = writeln!(out, "solvency_parent_{name}{{{labels}}} {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_metrics_render_zero_counters_and_no_last_round_samples() {
        let text = Metrics::new().render();
        assert!(text
            .contains("# TYPE solvency_parent_rounds_started_total counter\nsolvency_parent_rounds_started_total 0\n"));
        assert!(text.contains("solvency_parent_http_requests_total{class=\"public\"} 0\n"));
        assert!(text.contains("# TYPE solvency_parent_last_success_round gauge\n"));
        for gauge in ["last_success_round", "last_success_timestamp_seconds", "last_round_duration_seconds"] {
            assert!(!text.lines().any(|l| l.starts_with(&format!("solvency_parent_{gauge} "))), "{text}");
        }
    }

    #[test]
    fn recorded_events_are_rendered() {
        let m = Metrics::new();
        m.round_started();
        m.round_started();
        m.setup_round();
        m.round_failed(Duration::from_millis(250));
        m.round_succeeded(7, 1_700_000_000, Duration::from_millis(1500));
        m.proxy_connection(true);
        m.proxy_connection(true);
        m.proxy_connection(false);
        m.http_request(RouteClass::Public);
        m.http_request(RouteClass::Internal);
        m.http_request(RouteClass::Internal);
        m.auth_failure();
        let text = m.render();
        let expected = [
            "solvency_parent_rounds_started_total 2",
            "solvency_parent_rounds_succeeded_total 1",
            "solvency_parent_rounds_failed_total 1",
            "solvency_parent_setup_rounds_total 1",
            "solvency_parent_proxy_connections_total{result=\"allowed\"} 2",
            "solvency_parent_proxy_connections_total{result=\"refused\"} 1",
            "solvency_parent_http_requests_total{class=\"public\"} 1",
            "solvency_parent_http_requests_total{class=\"internal\"} 2",
            "solvency_parent_http_auth_failures_total 1",
            "solvency_parent_last_success_round 7",
            "solvency_parent_last_success_timestamp_seconds 1700000000",
            "solvency_parent_last_round_duration_seconds 1.5",
        ];
        for line in expected {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn every_line_is_a_comment_or_a_sample_of_a_declared_metric() {
        let m = Metrics::new();
        m.round_succeeded(1, 2, Duration::from_secs(3));
        let text = m.render();
        assert!(text.ends_with('\n'));
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(kind == "counter" || kind == "gauge");
                assert!(name.starts_with("solvency_parent_"));
                declared.push(name.to_string());
            } else if line.starts_with("# HELP ") {
                continue;
            } else {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert_eq!(declared.last().map(String::as_str), Some(name), "sample before its TYPE: {line}");
                assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
            }
        }
    }
}
