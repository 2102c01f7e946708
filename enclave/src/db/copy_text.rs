//! PostgreSQL's COPY text format, as `COPY (...) TO STDOUT` sends it: one row per line, fields
//! separated by tabs, `\N` for NULL, backslash escapes for special bytes. Rows may be split
//! across the protocol's data messages, so an unfinished line is carried to the next chunk.

use std::borrow::Cow;

/// The three fields of a balance row; `None` is SQL NULL.
pub type Fields<'a> = [Option<Cow<'a, str>>; 3];

/// What is malformed in the COPY stream (a server or protocol fault, not a bad balance).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CopyFormatError {
    /// A row with other than three fields.
    #[error("{0} fields, expected 3")]
    FieldCount(usize),
    /// A field that is not UTF-8 after unescaping.
    #[error("a field is not UTF-8")]
    Utf8,
    /// The stream ended inside a row.
    #[error("the data ended in the middle of a row")]
    Truncated,
}

/// Splits COPY text data into rows.
#[derive(Debug, Default)]
pub struct CopyTextDecoder {
    carry: Vec<u8>,
}

impl CopyTextDecoder {
    /// Feeds one chunk; calls `on_row` for every row it completes, stopping at the first error
    /// either returns.
    pub fn feed<E: From<CopyFormatError>>(
        &mut self,
        chunk: &[u8],
        on_row: &mut impl FnMut(Fields<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                self.carry.extend_from_slice(rest);
                return Ok(());
            };
            self.carry.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.carry);
            on_row(decode_line(&line)?)?;
        }
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            on_row(decode_line(&rest[..end])?)?;
            rest = &rest[end + 1..];
        }
        self.carry.extend_from_slice(rest);
        Ok(())
    }

    /// Checks that the data ended at a row boundary.
    pub fn finish(&self) -> Result<(), CopyFormatError> {
        if self.carry.is_empty() {
            Ok(())
        } else {
            Err(CopyFormatError::Truncated)
        }
    }
}

fn decode_line(line: &[u8]) -> Result<Fields<'_>, CopyFormatError> {
    let mut fields = line.split(|b| *b == b'\t');
    let (Some(a), Some(b), Some(c), None) = (fields.next(), fields.next(), fields.next(), fields.next()) else {
        return Err(CopyFormatError::FieldCount(line.split(|b| *b == b'\t').count()));
    };
    Ok([decode_field(a)?, decode_field(b)?, decode_field(c)?])
}

fn decode_field(raw: &[u8]) -> Result<Option<Cow<'_, str>>, CopyFormatError> {
    if raw == b"\\N" {
        return Ok(None);
    }
    if !raw.contains(&b'\\') {
        return std::str::from_utf8(raw).map(|s| Some(Cow::Borrowed(s))).map_err(|_| CopyFormatError::Utf8);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = raw.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        match e {
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            b'0'..=b'7' => {
                let mut value = u32::from(e - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            value = value * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((value & 0xff) as u8);
            }
            b'x' => {
                let mut value = 0u8;
                let mut digits = 0;
                while digits < 2 {
                    match raw.get(i).and_then(|d| (*d as char).to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d as u8;
                            i += 1;
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push(b'x');
                } else {
                    out.push(value);
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map(|s| Some(Cow::Owned(s))).map_err(|_| CopyFormatError::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(chunks: &[&[u8]]) -> Result<Vec<[Option<String>; 3]>, CopyFormatError> {
        let mut decoder = CopyTextDecoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.feed(chunk, &mut |[a, b, c]: Fields<'_>| {
                out.push([a.map(Cow::into_owned), b.map(Cow::into_owned), c.map(Cow::into_owned)]);
                Ok::<_, CopyFormatError>(())
            })?;
        }
        decoder.finish()?;
        Ok(out)
    }

    fn s(x: &str) -> Option<String> {
        Some(x.to_owned())
    }

    #[test]
    fn rows_split_anywhere_across_chunks_decode_the_same() {
        let data = b"alice\tBTC\t1.5\nbob\\tthe\\\\builder\tETH\t\\N\n\xc3\xa9\\303\\251\\x41\tBTC\t0\n";
        let whole = rows(&[data]).unwrap();
        assert_eq!(
            whole,
            [[s("alice"), s("BTC"), s("1.5")], [s("bob\tthe\\builder"), s("ETH"), None], [s("ééA"), s("BTC"), s("0")],]
        );
        for cut in 0..data.len() {
            for cut2 in cut..data.len() {
                assert_eq!(rows(&[&data[..cut], &data[cut..cut2], &data[cut2..]]).unwrap(), whole, "cuts {cut} {cut2}");
            }
        }
    }

    #[test]
    fn malformed_data_is_an_error() {
        assert_eq!(rows(&[b"a\tb\n"]), Err(CopyFormatError::FieldCount(2)));
        assert_eq!(rows(&[b"a\tb\tc\td\n"]), Err(CopyFormatError::FieldCount(4)));
        assert_eq!(rows(&[b"a\tb\tc"]), Err(CopyFormatError::Truncated));
        assert_eq!(rows(&[b"\xff\tb\tc\n"]), Err(CopyFormatError::Utf8));
        assert_eq!(rows(&[b"\\377\tb\tc\n"]), Err(CopyFormatError::Utf8));
        assert_eq!(rows(&[]), Ok(vec![]));
    }
}
