//! Address ownership: an address's balance counts only with its owner's EIP-191 signature over a
//! message that names the exchange, the chain, the address and the auditor's challenge for this
//! round. Another exchange cannot reuse it (the name differs), nor can an old round (the challenge
//! differs). Contract wallets (EIP-1271) are not yet accepted.

use alloy_primitives::{Address, Signature};

use super::ReservesError;

/// The message the owner of `address` signs with `personal_sign` (EIP-191, version 0x45): UTF-8
/// text, lines separated by `\n`, no trailing newline; the challenge in lower-case hex.
pub fn message(exchange: &str, chain_id: u64, address: Address, challenge: &[u8]) -> String {
    format!(
        "solvency-enclave proof of reserves\nexchange: {exchange}\nchain-id: {chain_id}\naddress: {}\nchallenge: {}",
        address.to_checksum(None),
        hex::encode(challenge)
    )
}

/// Checks that `signature` is `address`'s signature of [`message`].
pub fn verify(
    exchange: &str,
    chain: &str,
    chain_id: u64,
    address: Address,
    challenge: &[u8],
    signature: &[u8],
) -> Result<(), ReservesError> {
    let refused = |detail: String| ReservesError::Ownership { chain: chain.to_owned(), address, detail };
    let signature = Signature::from_raw(signature).map_err(|e| refused(format!("malformed signature: {e}")))?;
    let signer = signature
        .recover_address_from_msg(message(exchange, chain_id, address, challenge))
        .map_err(|e| refused(format!("no signer can be recovered: {e}")))?;
    if signer != address {
        return Err(refused(format!("signed by {signer}, not by the address")));
    }
    Ok(())
}
