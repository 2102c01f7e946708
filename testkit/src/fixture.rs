//! Synthetic balances: `accounts` × assets rows in a `(account_id text, asset text, amount
//! numeric)` table, generated inside the server so a million rows load in seconds, with a
//! closed formula so tests know every balance and total without reading them back.

use crate::cluster::{ClusterError, PrivateCluster, READER_ROLE};

/// One asset of a fixture: its symbol and how many decimals its base unit has (at most 18).
#[derive(Clone, Debug)]
pub struct FixtureAsset {
    /// The symbol stored in the `asset` column.
    pub symbol: String,
    /// Decimal places of the base unit.
    pub decimals: u32,
}

impl FixtureAsset {
    /// An asset.
    pub fn new(symbol: &str, decimals: u32) -> Self {
        Self { symbol: symbol.to_owned(), decimals }
    }
}

/// The balance of account `i` (1-based) in asset `j` (0-based), in base units.
pub fn base_units(i: u64, j: usize) -> u64 {
    (i.wrapping_mul(7919).wrapping_add(j as u64 * 104_729)) % 1_000_003
}

/// The account id of account `i`.
pub fn account_id(i: u64) -> String {
    format!("acct-{i:09}")
}

/// Per-asset totals of a fixture of `accounts` accounts and `assets` assets, in base units.
pub fn expected_totals(accounts: u64, assets: usize) -> Vec<u128> {
    (0..assets).map(|j| (1..=accounts).map(|i| u128::from(base_units(i, j))).sum()).collect()
}

/// The query the enclave is configured with for a fixture table (in the `public` schema; the
/// enclave requires schema-qualified names).
pub fn query(table: &str) -> String {
    format!("SELECT account_id, asset, amount FROM public.{table} ORDER BY account_id, asset")
}

impl PrivateCluster {
    /// Creates `table` holding `accounts` accounts with one row per asset, readable by the
    /// enclave's role. Amounts are stored as `numeric(38,18)` in whole units of the asset.
    pub fn load_fixture(&self, table: &str, accounts: u64, assets: &[FixtureAsset]) -> Result<(), ClusterError> {
        let values: Vec<String> = assets
            .iter()
            .enumerate()
            .map(|(j, a)| format!("('{}', {j}, {})", a.symbol.replace('\'', "''"), a.decimals))
            .collect();
        self.psql(&format!(
            "CREATE TABLE {table} (account_id text, asset text, amount numeric(38,18));\n\
             INSERT INTO {table}\n\
               SELECT 'acct-' || lpad(i::text, 9, '0'), a.symbol,\n\
                      (((i::numeric * 7919 + a.ord * 104729) % 1000003) * ('1e-' || a.decimals)::numeric)::numeric(38,18)\n\
               FROM generate_series(1, {accounts}) AS i CROSS JOIN (VALUES {}) AS a(symbol, ord, decimals);\n\
             ANALYZE {table};\n\
             GRANT SELECT ON {table} TO {READER_ROLE};",
            values.join(", ")
        ))?;
        Ok(())
    }
}
