//! Turning input rows `(account id, asset, amount)` into accounts with one balance per
//! configured asset, validating every row and collecting every problem (up to a limit) so an
//! operator sees them all in one run. Any bad row means no ledger at all.

use std::fmt;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};

use attestation::bundle::MAX_ASSETS;
use attestation::commitment::MAX_ACCOUNT_ID_BYTES;

/// Problems reported individually before the rest are only counted.
pub const DEFAULT_ERROR_LIMIT: usize = 100;
/// Longest piece of an offending value quoted back in an error.
const QUOTE_LIMIT: usize = 40;

/// An account and its balances in base units, one per configured asset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The exchange's account id.
    pub id: String,
    /// Balances, in the ledger's asset order.
    pub balances: Vec<u64>,
}

/// A validated ledger: at least one account, every balance in range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    /// Asset symbols, in balance order.
    pub assets: Vec<String>,
    /// The accounts, in first-seen order.
    pub accounts: Vec<Account>,
}

impl Ledger {
    /// Per-asset totals.
    pub fn totals(&self) -> Vec<u128> {
        let mut totals = vec![0u128; self.assets.len()];
        for account in &self.accounts {
            for (t, b) in totals.iter_mut().zip(&account.balances) {
                // Fewer than 2^64 accounts of values below 2^64 cannot overflow u128; qed.
                *t += u128::from(*b);
            }
        }
        totals
    }
}

/// The field of a row that is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowField {
    /// The account id.
    AccountId,
    /// The asset symbol.
    Asset,
    /// The amount.
    Amount,
    /// The record as a whole (unreadable, wrong number of fields).
    Record,
}

impl fmt::Display for RowField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AccountId => "account_id",
            Self::Asset => "asset",
            Self::Amount => "amount",
            Self::Record => "record",
        })
    }
}

/// What is wrong with a field.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowProblem {
    /// Empty or absent.
    Missing,
    /// SQL NULL.
    Null,
    /// An account id longer than the limit.
    TooLong { bytes: usize },
    /// An asset that is not configured.
    UnknownAsset { asset: String },
    /// A negative amount.
    Negative { value: String },
    /// An amount of 2^64 or more base units.
    TooLarge { value: String },
    /// An amount with a fractional part or exponent (amounts are integers in base units).
    NonInteger { value: String },
    /// A decimal amount with more (non-zero) fractional digits than the asset's decimals:
    /// rounding it would change a balance, so it is refused.
    WrongScale { value: String, decimals: u32 },
    /// Anything else that is not a plain decimal integer.
    NotANumber { value: String },
    /// The (account, asset) pair appeared on an earlier row.
    Duplicate { first_row: u64 },
    /// The record could not be read.
    Unreadable { reason: String },
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "missing or empty"),
            Self::Null => write!(f, "NULL"),
            Self::TooLong { bytes } => write!(f, "{bytes} bytes, longer than {MAX_ACCOUNT_ID_BYTES}"),
            Self::UnknownAsset { asset } => write!(f, "unknown asset {asset:?}"),
            Self::Negative { value } => write!(f, "negative amount {value:?}"),
            Self::TooLarge { value } => write!(f, "amount {value:?} is 2^64 or more base units"),
            Self::NonInteger { value } => write!(f, "amount {value:?} is not an integer number of base units"),
            Self::WrongScale { value, decimals } => {
                write!(f, "amount {value:?} has more fractional digits than the asset's {decimals} decimals")
            }
            Self::NotANumber { value } => write!(f, "amount {value:?} is not a decimal integer"),
            Self::Duplicate { first_row } => write!(f, "duplicate (account, asset); first seen on row {first_row}"),
            Self::Unreadable { reason } => write!(f, "unreadable: {reason}"),
        }
    }
}

/// One bad row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// 1-based row number in the input (for CSV files, the line number).
    pub row: u64,
    /// The row's account id, when it has one.
    pub account_id: Option<String>,
    /// The field at fault.
    pub field: RowField,
    /// What is wrong.
    pub problem: RowProblem,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}", self.row)?;
        if let Some(id) = &self.account_id {
            write!(f, " (account {:?})", quote(id))?;
        }
        write!(f, ": {}: {}", self.field, self.problem)
    }
}

/// Why no ledger was produced.
#[allow(missing_docs)] // fields are named for what they hold
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LedgerError {
    /// Rows were bad; the first `errors.len()` problems are listed, `omitted` more were counted.
    #[error("{} problem(s) in the input rows{}; nothing was proven:\n{}", .errors.len() + .omitted, if *.omitted > 0 { format!(" ({} not listed)", .omitted) } else { String::new() }, .errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    BadRows { errors: Vec<RowError>, omitted: usize },
    /// The input held no rows.
    #[error("the input has no rows")]
    Empty,
    /// The asset configuration is unusable.
    #[error("asset configuration: {0}")]
    Assets(String),
}

fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_LIMIT) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Parses an amount in base units: ASCII digits only, below 2^64.
pub fn parse_amount(text: &str) -> Result<u64, RowProblem> {
    if text.is_empty() {
        return Err(RowProblem::Missing);
    }
    let value = || quote(text);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = text.strip_prefix('-') {
        let magnitude_is_zero = rest.bytes().all(|b| b == b'0' || b == b'.');
        if (digits(rest) || rest.split_once('.').is_some_and(|(i, f)| digits(i) && digits(f))) && !magnitude_is_zero {
            return Err(RowProblem::Negative { value: value() });
        }
        return Err(RowProblem::NotANumber { value: value() });
    }
    if digits(text) {
        return text.parse::<u64>().map_err(|_| RowProblem::TooLarge { value: value() });
    }
    let looks_decimal = text.split_once('.').is_some_and(|(i, f)| (digits(i) || i.is_empty()) && digits(f));
    let looks_exponent = text.split_once(['e', 'E']).is_some_and(|(m, _)| digits(m) || m.contains('.'));
    if looks_decimal || looks_exponent {
        return Err(RowProblem::NonInteger { value: value() });
    }
    Err(RowProblem::NotANumber { value: value() })
}

/// Most decimals an asset may have (PostgreSQL's NUMERIC precision limit for a scale is far
/// larger, but no base unit of a real asset is smaller than 10^-38 of the unit).
pub const MAX_DECIMALS: u32 = 38;

/// Parses a decimal amount in whole units of an asset with `decimals` decimal places (as
/// PostgreSQL prints NUMERIC and integer columns) into base units, exactly: trailing
/// fractional zeros are fine, any other digit beyond the scale is [`RowProblem::WrongScale`].
pub fn parse_decimal(text: &str, decimals: u32) -> Result<u64, RowProblem> {
    if text.is_empty() {
        return Err(RowProblem::Missing);
    }
    let value = || quote(text);
    let (negative, magnitude) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int, frac) = magnitude.split_once('.').unwrap_or((magnitude, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(RowProblem::NotANumber { value: value() });
    }
    let frac = frac.trim_end_matches('0');
    let int = int.trim_start_matches('0');
    if negative && !(int.is_empty() && frac.is_empty()) {
        return Err(RowProblem::Negative { value: value() });
    }
    let scale = decimals as usize;
    if frac.len() > scale {
        return Err(RowProblem::WrongScale { value: value(), decimals });
    }
    // Base units are `int` followed by `frac` padded to the scale; more than 20 digits is
    // always 2^64 or more.
    if int.len() + scale > 20 && !int.is_empty() {
        return Err(RowProblem::TooLarge { value: value() });
    }
    let mut units: u64 = 0;
    let padding = std::iter::repeat_n(b'0', scale - frac.len());
    for d in int.bytes().chain(frac.bytes()).chain(padding) {
        units = units
            .checked_mul(10)
            .and_then(|u| u.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| RowProblem::TooLarge { value: value() })?;
    }
    Ok(units)
}

/// How amounts are written in the input.
#[derive(Clone, Debug)]
enum AmountFormat {
    /// Integers in base units (CSV files).
    BaseUnits,
    /// Decimals in whole units, with each asset's number of decimals (database columns).
    Decimal(Vec<u32>),
}

/// How an account id is found among the accounts seen so far.
enum AccountIndex {
    /// Every id so far came in non-decreasing byte order (the query sorts by account), so a
    /// known id can only be the last one: no index is needed.
    Sorted,
    /// (hash of the id, index into `accounts`): the ids themselves are stored once, in
    /// `accounts`, and growing the table never has to go back to them.
    Hashed(HashTable<(u64, usize)>),
}

/// Accumulates rows into a [`Ledger`], collecting problems.
pub struct LedgerBuilder {
    assets: Vec<String>,
    asset_index: HashMap<String, usize>,
    account_index: AccountIndex,
    hasher: DefaultHashBuilder,
    accounts: Vec<Account>,
    /// Row on which each (account, asset) pair was first seen; 0 when not yet.
    first_rows: Vec<u64>,
    errors: Vec<RowError>,
    omitted: usize,
    limit: usize,
    rows: u64,
    amounts: AmountFormat,
}

impl LedgerBuilder {
    /// A builder for the configured asset symbols; `limit` bounds the errors listed.
    pub fn new(assets: Vec<String>, limit: usize) -> Result<Self, LedgerError> {
        if assets.is_empty() || assets.len() > MAX_ASSETS {
            return Err(LedgerError::Assets(format!(
                "between 1 and {MAX_ASSETS} assets are needed, got {}",
                assets.len()
            )));
        }
        let mut asset_index = HashMap::new();
        for (i, a) in assets.iter().enumerate() {
            if a.is_empty()
                || a.len() > attestation::bundle::MAX_SYMBOL_BYTES
                || asset_index.insert(a.clone(), i).is_some()
            {
                return Err(LedgerError::Assets(format!("asset symbol {a:?} is empty, too long or repeated")));
            }
        }
        Ok(Self {
            assets,
            asset_index,
            account_index: AccountIndex::Sorted,
            hasher: DefaultHashBuilder::default(),
            accounts: Vec::new(),
            first_rows: Vec::new(),
            errors: Vec::new(),
            omitted: 0,
            limit,
            rows: 0,
            amounts: AmountFormat::BaseUnits,
        })
    }

    /// A builder whose amounts are decimals in whole units: asset `i` has `decimals[i]`
    /// decimal places (see [`parse_decimal`]).
    pub fn with_decimals(assets: Vec<String>, decimals: Vec<u32>, limit: usize) -> Result<Self, LedgerError> {
        if decimals.len() != assets.len() || decimals.iter().any(|d| *d > MAX_DECIMALS) {
            return Err(LedgerError::Assets(format!(
                "each asset needs a number of decimals between 0 and {MAX_DECIMALS}"
            )));
        }
        let mut builder = Self::new(assets, limit)?;
        builder.amounts = AmountFormat::Decimal(decimals);
        Ok(builder)
    }

    /// Rows read so far, good and bad.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Records a problem with row `row`.
    pub fn reject(&mut self, row: u64, account_id: Option<&str>, field: RowField, problem: RowProblem) {
        self.rows += 1;
        self.push_error(RowError { row, account_id: account_id.map(str::to_owned), field, problem });
    }

    fn push_error(&mut self, error: RowError) {
        if self.errors.len() < self.limit {
            self.errors.push(error);
        } else {
            self.omitted += 1;
        }
    }

    /// Adds row `row` of a file. Absent fields are `None`.
    pub fn push(&mut self, row: u64, account_id: Option<&str>, asset: Option<&str>, amount: Option<&str>) {
        let _ = self.push_row(row, account_id, asset, amount, RowProblem::Missing);
    }

    /// Adds row `row` of a query result. SQL NULLs are `None`. Returns the amount in base
    /// units if the row was accepted.
    pub fn push_nullable(
        &mut self,
        row: u64,
        account_id: Option<&str>,
        asset: Option<&str>,
        amount: Option<&str>,
    ) -> Option<u64> {
        self.push_row(row, account_id, asset, amount, RowProblem::Null)
    }

    fn push_row(
        &mut self,
        row: u64,
        account_id: Option<&str>,
        asset: Option<&str>,
        amount: Option<&str>,
        absent: RowProblem,
    ) -> Option<u64> {
        self.rows += 1;
        let problem_if_absent = |s: Option<&str>| match s {
            None => absent.clone(),
            Some(_) => RowProblem::Missing,
        };
        let id = account_id.filter(|s| !s.is_empty());
        let bad = |field, problem| RowError { row, account_id: id.map(str::to_owned), field, problem };
        let mut problems = Vec::new();
        match id {
            None => problems.push(bad(RowField::AccountId, problem_if_absent(account_id))),
            Some(id) if id.len() > MAX_ACCOUNT_ID_BYTES => {
                problems.push(bad(RowField::AccountId, RowProblem::TooLong { bytes: id.len() }))
            }
            Some(_) => {}
        }
        let asset_index = match asset.filter(|s| !s.is_empty()) {
            None => {
                problems.push(bad(RowField::Asset, problem_if_absent(asset)));
                None
            }
            Some(a) => match self.asset_index.get(a) {
                Some(i) => Some(*i),
                None => {
                    problems.push(bad(RowField::Asset, RowProblem::UnknownAsset { asset: quote(a) }));
                    None
                }
            },
        };
        let parsed = match (amount, &self.amounts) {
            (None, _) => Err(absent.clone()),
            (Some(text), AmountFormat::BaseUnits) => parse_amount(text),
            (Some(text), AmountFormat::Decimal(decimals)) => match asset_index.and_then(|i| decimals.get(i)) {
                Some(scale) => parse_decimal(text, *scale),
                // With the asset unknown so is its scale: report only what is wrong at any scale.
                None => match parse_decimal(text, 0) {
                    Err(RowProblem::WrongScale { .. } | RowProblem::TooLarge { .. }) => Ok(0),
                    other => other,
                },
            },
        };
        let amount = match parsed {
            Ok(a) => Some(a),
            Err(problem) => {
                problems.push(bad(RowField::Amount, problem));
                None
            }
        };
        if !problems.is_empty() {
            problems.into_iter().for_each(|e| self.push_error(e));
            return None;
        }
        let (Some(id), Some(asset), Some(amount)) = (id, asset_index, amount) else {
            unreachable!("every None above pushed a problem; qed.")
        };
        let k = self.assets.len();
        let account = match self.find_account(id) {
            Some(i) => i,
            None => {
                if let AccountIndex::Hashed(table) = &mut self.account_index {
                    let hash = self.hasher.hash_one(id);
                    table.insert_unique(hash, (hash, self.accounts.len()), |&(h, _)| h);
                }
                self.accounts.push(Account { id: id.to_owned(), balances: vec![0; k] });
                self.first_rows.extend(std::iter::repeat_n(0, k));
                self.accounts.len() - 1
            }
        };
        let slot = account * k + asset;
        match self.first_rows.get(slot).copied() {
            Some(0) => {
                self.first_rows[slot] = row;
                self.accounts[account].balances[asset] = amount;
                Some(amount)
            }
            Some(first_row) => {
                let e = RowError {
                    row,
                    account_id: Some(id.to_owned()),
                    field: RowField::Asset,
                    problem: RowProblem::Duplicate { first_row },
                };
                self.push_error(e);
                None
            }
            None => unreachable!("first_rows holds k slots per account; qed."),
        }
    }

    /// The index of the account with `id`, if seen before.
    fn find_account(&mut self, id: &str) -> Option<usize> {
        if let AccountIndex::Sorted = self.account_index {
            match self.accounts.last() {
                None => return None,
                Some(last) if last.id.as_str() == id => return Some(self.accounts.len() - 1),
                Some(last) if last.id.as_str() < id => return None,
                // Out of order: from here on, look ids up in a hash table.
                Some(_) => {
                    let mut table = HashTable::with_capacity(self.accounts.len());
                    for (i, account) in self.accounts.iter().enumerate() {
                        let hash = self.hasher.hash_one(&account.id);
                        table.insert_unique(hash, (hash, i), |&(h, _)| h);
                    }
                    self.account_index = AccountIndex::Hashed(table);
                }
            }
        }
        let AccountIndex::Hashed(table) = &self.account_index else { return None };
        let hash = self.hasher.hash_one(id);
        // Every index in the table was pushed to `accounts` with it; qed.
        table.find(hash, |&(h, i)| h == hash && self.accounts[i].id == id).map(|&(_, i)| i)
    }

    /// The ledger, or every problem found.
    pub fn finish(self) -> Result<Ledger, LedgerError> {
        if !self.errors.is_empty() {
            return Err(LedgerError::BadRows { errors: self.errors, omitted: self.omitted });
        }
        if self.rows == 0 || self.accounts.is_empty() {
            return Err(LedgerError::Empty);
        }
        Ok(Ledger { assets: self.assets, accounts: self.accounts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount("0"), Ok(0));
        assert_eq!(parse_amount("18446744073709551615"), Ok(u64::MAX));
        assert!(matches!(parse_amount("18446744073709551616"), Err(RowProblem::TooLarge { .. })));
        assert!(matches!(parse_amount("-5"), Err(RowProblem::Negative { .. })));
        assert!(matches!(parse_amount("-0.5"), Err(RowProblem::Negative { .. })));
        assert!(matches!(parse_amount("1.5"), Err(RowProblem::NonInteger { .. })));
        assert!(matches!(parse_amount("1.0"), Err(RowProblem::NonInteger { .. })));
        assert!(matches!(parse_amount("1e3"), Err(RowProblem::NonInteger { .. })));
        assert!(matches!(parse_amount("abc"), Err(RowProblem::NotANumber { .. })));
        assert!(matches!(parse_amount(" 1"), Err(RowProblem::NotANumber { .. })));
        assert!(matches!(parse_amount("+1"), Err(RowProblem::NotANumber { .. })));
        assert!(matches!(parse_amount("-"), Err(RowProblem::NotANumber { .. })));
        assert_eq!(parse_amount(""), Err(RowProblem::Missing));
    }

    fn builder() -> LedgerBuilder {
        LedgerBuilder::new(vec!["BTC".into(), "ETH".into()], 3).unwrap()
    }

    #[test]
    fn accounts_gather_their_assets_and_missing_assets_are_zero() {
        let mut b = builder();
        b.push(2, Some("alice"), Some("BTC"), Some("5"));
        b.push(3, Some("bob"), Some("ETH"), Some("7"));
        b.push(4, Some("alice"), Some("ETH"), Some("1"));
        let ledger = b.finish().unwrap();
        assert_eq!(ledger.accounts[0], Account { id: "alice".into(), balances: vec![5, 1] });
        assert_eq!(ledger.accounts[1], Account { id: "bob".into(), balances: vec![0, 7] });
        assert_eq!(ledger.totals(), vec![5, 8]);
    }

    #[test]
    fn every_bad_row_is_reported_up_to_the_limit() {
        let mut b = builder();
        b.push(2, Some("alice"), Some("BTC"), Some("-1"));
        b.push(3, Some("bob"), Some("DOGE"), Some("1"));
        b.push(4, Some("carol"), Some("BTC"), Some("1"));
        b.push(5, Some("carol"), Some("BTC"), Some("2"));
        b.push(6, None, Some("BTC"), Some("2"));
        b.push(7, Some("dave"), Some("BTC"), Some("99999999999999999999"));
        let Err(LedgerError::BadRows { errors, omitted }) = b.finish() else { panic!("expected bad rows") };
        assert_eq!(errors.len(), 3);
        assert_eq!(omitted, 2);
        assert_eq!(errors[0].row, 2);
        assert_eq!(errors[0].account_id.as_deref(), Some("alice"));
        assert_eq!(errors[0].field, RowField::Amount);
        assert!(matches!(errors[0].problem, RowProblem::Negative { .. }));
        assert!(matches!(&errors[1].problem, RowProblem::UnknownAsset { asset } if asset == "DOGE"));
        assert_eq!(errors[2].problem, RowProblem::Duplicate { first_row: 4 });
    }

    #[test]
    fn a_row_with_several_bad_fields_reports_each() {
        let mut b = builder();
        b.push(2, Some(""), None, Some("x"));
        let Err(LedgerError::BadRows { errors, .. }) = b.finish() else { panic!("expected bad rows") };
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(fields, [RowField::AccountId, RowField::Asset, RowField::Amount]);
    }

    #[test]
    fn empty_input_and_bad_configuration_are_refused() {
        assert_eq!(builder().finish(), Err(LedgerError::Empty));
        assert!(LedgerBuilder::new(vec![], 10).is_err());
        assert!(LedgerBuilder::new(vec!["A".into(), "A".into()], 10).is_err());
    }

    #[test]
    fn decimals_convert_exactly_to_base_units() {
        assert_eq!(parse_decimal("1.5", 8), Ok(150_000_000));
        assert_eq!(parse_decimal("1.500000000000000000", 8), Ok(150_000_000));
        assert_eq!(parse_decimal("0.00000001", 8), Ok(1));
        assert_eq!(parse_decimal("42", 0), Ok(42));
        assert_eq!(parse_decimal("42.000", 0), Ok(42));
        assert_eq!(parse_decimal("-0.000", 8), Ok(0));
        assert_eq!(parse_decimal("000123.4", 1), Ok(1234));
        assert_eq!(parse_decimal(".5", 1), Ok(5));
        assert_eq!(parse_decimal("5.", 1), Ok(50));
        assert_eq!(parse_decimal("18446744073709551615", 0), Ok(u64::MAX));
        assert_eq!(parse_decimal("184467440737.09551615", 8), Ok(u64::MAX));
        assert!(matches!(parse_decimal("184467440737.09551616", 8), Err(RowProblem::TooLarge { .. })));
        assert!(matches!(parse_decimal("1", 20), Err(RowProblem::TooLarge { .. })));
        assert_eq!(parse_decimal("0.00000000000000000001", 20), Ok(1));
        assert!(matches!(parse_decimal(&"9".repeat(100_000), 0), Err(RowProblem::TooLarge { .. })));
        assert_eq!(
            parse_decimal("1.123456789", 8),
            Err(RowProblem::WrongScale { value: "1.123456789".into(), decimals: 8 })
        );
        assert!(matches!(parse_decimal("-1.5", 8), Err(RowProblem::Negative { .. })));
        for bad in ["NaN", "Infinity", "-Infinity", ".", "-", "1e5", "1.2.3", " 1", "+1", "1,5"] {
            assert!(matches!(parse_decimal(bad, 8), Err(RowProblem::NotANumber { .. })), "{bad}");
        }
        assert_eq!(parse_decimal("", 8), Err(RowProblem::Missing));
    }

    #[test]
    fn database_rows_report_nulls_and_scale_per_asset() {
        let mut b = LedgerBuilder::with_decimals(vec!["BTC".into(), "ETH".into()], vec![8, 18], 10).unwrap();
        b.push_nullable(1, Some("alice"), Some("BTC"), Some("1.00000001"));
        b.push_nullable(2, Some("alice"), Some("ETH"), Some("1.000000000000000001"));
        let ledger = b.finish().unwrap();
        assert_eq!(ledger.accounts[0].balances, vec![100_000_001, 1_000_000_000_000_000_001]);

        let mut b = LedgerBuilder::with_decimals(vec!["BTC".into()], vec![8], 10).unwrap();
        b.push_nullable(1, None, Some("BTC"), Some("1"));
        b.push_nullable(2, Some("bob"), None, Some("1"));
        b.push_nullable(3, Some("carol"), Some("BTC"), None);
        b.push_nullable(4, Some("dave"), Some("BTC"), Some("0.000000001"));
        b.push_nullable(5, Some(""), Some("BTC"), Some("1"));
        let Err(LedgerError::BadRows { errors, .. }) = b.finish() else { panic!("expected bad rows") };
        let got: Vec<_> = errors.iter().map(|e| (e.row, e.field, e.problem.clone())).collect();
        assert_eq!(
            got,
            [
                (1, RowField::AccountId, RowProblem::Null),
                (2, RowField::Asset, RowProblem::Null),
                (3, RowField::Amount, RowProblem::Null),
                (4, RowField::Amount, RowProblem::WrongScale { value: "0.000000001".into(), decimals: 8 }),
                (5, RowField::AccountId, RowProblem::Missing),
            ]
        );
        assert!(LedgerBuilder::with_decimals(vec!["BTC".into()], vec![], 10).is_err());
        assert!(LedgerBuilder::with_decimals(vec!["BTC".into()], vec![MAX_DECIMALS + 1], 10).is_err());
    }

    proptest::proptest! {
        /// Sorted, partly sorted and unsorted inputs give what a plain map gives: the same
        /// accounts in first-seen order, and every repeated (account, asset) as a duplicate.
        #[test]
        fn accounts_and_duplicates_match_a_reference_model(
            rows in proptest::collection::vec((0u8..12, 0usize..2, 0u64..100), 0..60),
            sorted_prefix in 0usize..60,
        ) {
            let mut rows = rows;
            let cut = sorted_prefix.min(rows.len());
            rows[..cut].sort();
            let mut b = LedgerBuilder::new(vec!["BTC".into(), "ETH".into()], usize::MAX).unwrap();
            let mut order: Vec<String> = Vec::new();
            let mut seen = std::collections::HashMap::new();
            let mut balances = std::collections::HashMap::new();
            let mut duplicates = Vec::new();
            for (n, (id, asset, amount)) in rows.iter().enumerate() {
                let row = n as u64 + 1;
                let id = format!("user{id:02}");
                let symbol = ["BTC", "ETH"][*asset];
                b.push(row, Some(&id), Some(symbol), Some(&amount.to_string()));
                if !order.contains(&id) {
                    order.push(id.clone());
                }
                match seen.get(&(id.clone(), *asset)) {
                    Some(first) => duplicates.push((row, *first)),
                    None => {
                        seen.insert((id.clone(), *asset), row);
                        balances.insert((id, *asset), *amount);
                    }
                }
            }
            match b.finish() {
                Ok(ledger) => {
                    proptest::prop_assert!(duplicates.is_empty());
                    let ids: Vec<_> = ledger.accounts.iter().map(|a| a.id.clone()).collect();
                    proptest::prop_assert_eq!(ids, order);
                    for a in &ledger.accounts {
                        for (j, got) in a.balances.iter().enumerate() {
                            proptest::prop_assert_eq!(*got, balances.get(&(a.id.clone(), j)).copied().unwrap_or(0));
                        }
                    }
                }
                Err(LedgerError::Empty) => proptest::prop_assert!(rows.is_empty()),
                Err(LedgerError::BadRows { errors, .. }) => {
                    let got: Vec<_> = errors
                        .iter()
                        .map(|e| match e.problem { RowProblem::Duplicate { first_row } => (e.row, first_row), _ => (0, 0) })
                        .collect();
                    proptest::prop_assert_eq!(got, duplicates);
                }
                Err(e) => proptest::prop_assert!(false, "{}", e),
            }
        }
    }

    #[test]
    fn overlong_ids_are_refused() {
        let mut b = builder();
        let id = "x".repeat(MAX_ACCOUNT_ID_BYTES + 1);
        b.push(2, Some(&id), Some("BTC"), Some("1"));
        let Err(LedgerError::BadRows { errors, .. }) = b.finish() else { panic!("expected bad rows") };
        assert_eq!(errors[0].problem, RowProblem::TooLong { bytes: MAX_ACCOUNT_ID_BYTES + 1 });
    }
}
