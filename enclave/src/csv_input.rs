//! Reading a ledger from a CSV file with the header `account_id,asset,amount`, for offline
//! development; production reads the database.

use std::io::Read;

use crate::ledger::{Ledger, LedgerBuilder, LedgerError, RowField, RowProblem};

/// The required header.
pub const HEADER: [&str; 3] = ["account_id", "asset", "amount"];

/// Why a CSV ledger could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The header is not exactly [`HEADER`].
    #[error("the header must be `account_id,asset,amount`, found `{0}`")]
    Header(String),
    /// The file could not be read.
    #[error("reading the CSV: {0}")]
    Io(String),
    /// Rows were bad, or there were none.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Reads and validates a CSV ledger for `assets`, reporting up to `limit` bad rows.
pub fn read_ledger<R: Read>(input: R, assets: Vec<String>, limit: usize) -> Result<Ledger, CsvError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(input);
    let header = reader.headers().map_err(|e| CsvError::Io(e.to_string()))?.clone();
    if header.iter().ne(HEADER) {
        return Err(CsvError::Header(header.iter().collect::<Vec<_>>().join(",")));
    }
    let mut builder = LedgerBuilder::new(assets, limit)?;
    let mut record = csv::StringRecord::new();
    let mut fallback_row = 1u64;
    loop {
        fallback_row += 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let row = record.position().map_or(fallback_row, |p| p.line());
                if record.len() > HEADER.len() {
                    let problem = RowProblem::Unreadable { reason: format!("{} fields, expected 3", record.len()) };
                    builder.reject(row, record.get(0), RowField::Record, problem);
                } else {
                    builder.push(row, record.get(0), record.get(1), record.get(2));
                }
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(_) => return Err(CsvError::Io(e.to_string())),
                _ => {
                    let row = e.position().map_or(fallback_row, |p| p.line());
                    builder.reject(row, None, RowField::Record, RowProblem::Unreadable { reason: e.to_string() });
                }
            },
        }
    }
    Ok(builder.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RowError;

    fn assets() -> Vec<String> {
        vec!["BTC".into(), "ETH".into()]
    }

    #[test]
    fn reads_a_good_file() {
        let csv = "account_id,asset,amount\nalice,BTC,5\nbob,ETH,7\n\"a,b\",BTC,1\n";
        let ledger = read_ledger(csv.as_bytes(), assets(), 10).unwrap();
        assert_eq!(ledger.accounts.len(), 3);
        assert_eq!(ledger.accounts[2].id, "a,b");
    }

    #[test]
    fn refuses_a_wrong_header() {
        let err = read_ledger("id,asset,amount\n".as_bytes(), assets(), 10).unwrap_err();
        assert!(matches!(err, CsvError::Header(h) if h == "id,asset,amount"));
    }

    #[test]
    fn reports_rows_by_line_number_including_short_and_long_and_non_utf8_records() {
        let mut csv = b"account_id,asset,amount\nalice,BTC,5\nbob,BTC\ncarol,BTC,1,extra\n".to_vec();
        csv.extend_from_slice(b"d\xffve,BTC,1\n");
        let err = read_ledger(csv.as_slice(), assets(), 10).unwrap_err();
        let CsvError::Ledger(LedgerError::BadRows { errors, .. }) = err else { panic!("{err}") };
        let rows: Vec<(u64, RowField)> = errors.iter().map(|e: &RowError| (e.row, e.field)).collect();
        assert_eq!(rows, [(3, RowField::Amount), (4, RowField::Record), (5, RowField::Record)]);
    }

    #[test]
    fn header_only_is_empty() {
        let err = read_ledger("account_id,asset,amount\n".as_bytes(), assets(), 10).unwrap_err();
        assert!(matches!(err, CsvError::Ledger(LedgerError::Empty)));
    }
}
