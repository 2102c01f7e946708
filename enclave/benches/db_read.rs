//! Rows per second of the attested database read, against `psql \copy` of the same query on
//! the same private cluster in the same run (both over TLS, verify-full).
//!
//! `cargo bench -p solvency-enclave --bench db_read -- [ACCOUNTS] [RUNS] [ORDER]` (default
//! 1,000,000 accounts × 1 asset, 3 runs each, alternating). ORDER is `sorted` (the recommended
//! `ORDER BY account_id, asset`, the default), `physical` (no ORDER BY; the fixture is stored in
//! account order) or `shuffled` (`ORDER BY md5(account_id)`, so the reader must index accounts
//! by hash). Prints one JSON object.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use enclave::db::{read_database, RoundConfig};
use testkit::fixture::{self, FixtureAsset};
use testkit::PrivateCluster;

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: f64 = fields.get(11..13).map(|f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let accounts: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);

    let cluster = PrivateCluster::start().expect("start the private cluster");
    let started = Instant::now();
    cluster.load_fixture("balances", accounts, &[FixtureAsset::new("BTC", 8)]).expect("load the fixture");
    eprintln!("loaded {accounts} rows in {:.1} s", started.elapsed().as_secs_f64());
    let query = match args.get(2).map(String::as_str) {
        None | Some("sorted") => fixture::query("balances"),
        Some("physical") => "SELECT account_id, asset, amount FROM public.balances".to_owned(),
        Some("shuffled") => "SELECT account_id, asset, amount FROM public.balances ORDER BY md5(account_id)".to_owned(),
        Some(other) => panic!("unknown order {other:?}: sorted, physical or shuffled"),
    };
    let config = RoundConfig::parse(&cluster.round_config(&query, &[("BTC", 8)]).expect("config"), Path::new("."))
        .expect("parse the configuration");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");

    let psql_bin = std::env::var_os("PG_BIN")
        .map(|d| Path::new(&d).join("psql"))
        .unwrap_or_else(|| Path::new("psql").to_path_buf());
    let psql = || {
        let started = Instant::now();
        let status = Command::new(&psql_bin)
            .args(["-X", "-q", "-d", &cluster.reader_conninfo(), "-c", &format!("\\copy ({query}) to /dev/null")])
            .env("PGPASSWORD", cluster.reader_password())
            .env("PGSSLMODE", "verify-full")
            .status()
            .expect("run psql");
        assert!(status.success(), "psql failed");
        started.elapsed().as_secs_f64()
    };
    let mut client_cpu = Vec::new();
    let mut ours = || {
        let started = Instant::now();
        let cpu = cpu_seconds();
        let read = runtime.block_on(async {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", cluster.port())).await.expect("connect");
            read_database(stream, &config, 10, &mut |_| {}).await.expect("read")
        });
        assert_eq!(read.record.rows, accounts);
        client_cpu.push(cpu_seconds() - cpu);
        started.elapsed().as_secs_f64()
    };

    // Warm the server's cache once with each client.
    psql();
    ours();
    let (mut psql_s, mut ours_s) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        psql_s.push(psql());
        ours_s.push(ours());
    }
    let (p, o) = (median(psql_s.clone()), median(ours_s.clone()));
    let report = serde_json::json!({
        "rows": accounts,
        "query": query,
        "runs": runs,
        "psql_copy_seconds": psql_s,
        "solvency_read_seconds": ours_s,
        "psql_rows_per_second": (accounts as f64 / p).round(),
        "solvency_rows_per_second": (accounts as f64 / o).round(),
        "ratio_to_psql": ((p / o) * 1000.0).round() / 1000.0,
        "solvency_client_cpu_seconds": client_cpu,
        "peak_rss_mib_of_this_process": (peak_rss_mib() * 10.0).round() / 10.0,
        "cores": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
    });
    println!("{report:#}");
}
