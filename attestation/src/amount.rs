//! Amounts for people: base units shown as whole units with the asset's decimals
//! (`495449096` satoshi with 8 decimals is `4.95449096`), exactly, with no floating point.
//! Machine outputs keep the base units; every report that people read uses this.

/// `units` base units of an asset with `decimals` decimal places, as a decimal string with
/// trailing zeros after the point removed (`1.5`, `0.00000001`, `12`). Thousands are not grouped.
pub fn format_units(units: u128, decimals: u32) -> String {
    let digits = units.to_string();
    let decimals = decimals as usize;
    if decimals == 0 {
        return digits;
    }
    let padded =
        if digits.len() <= decimals { format!("{}{digits}", "0".repeat(decimals + 1 - digits.len())) } else { digits };
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// [`format_units`] followed by the symbol: `4.95449096 BTC`.
pub fn with_symbol(units: u128, decimals: u32, symbol: &str) -> String {
    format!("{} {symbol}", format_units(units, decimals))
}

/// A decimal string of base units (as manifests and proofs carry them) for people; the string
/// itself when it is not a canonical decimal.
pub fn format_decimal(units: &str, decimals: u32, symbol: &str) -> String {
    match crate::bundle::parse_decimal_u128(units) {
        Some(n) => with_symbol(n, decimals, symbol),
        None => format!("{units} base units of {symbol}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_units_become_exact_decimal_amounts() {
        assert_eq!(format_units(495_449_096, 8), "4.95449096");
        assert_eq!(format_units(150_000_000, 8), "1.5");
        assert_eq!(format_units(1, 8), "0.00000001");
        assert_eq!(format_units(0, 8), "0");
        assert_eq!(format_units(1_200, 0), "1200");
        assert_eq!(format_units(100_000_000, 8), "1");
        assert_eq!(format_units(u128::MAX, 18), "340282366920938463463.374607431768211455");
        assert_eq!(with_symbol(5, 1, "ETH"), "0.5 ETH");
        assert_eq!(format_decimal("12", 1, "X"), "1.2 X");
        assert_eq!(format_decimal("x", 1, "X"), "x base units of X");
    }
}
