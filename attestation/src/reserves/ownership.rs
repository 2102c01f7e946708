//! Address ownership: an address's balance counts only with its owner's EIP-191 signature over a
//! message that names the exchange, the chain, the address and the auditor's challenge for this
//! round. Another exchange cannot reuse it (the name differs), nor can an old round (the challenge
//! differs). A contract wallet signs by EIP-1271: its `isValidSignature` is run at the agreed block
//! over proven state, in the enclave and again in the verifier.

use alloy_primitives::{eip191_hash_message, Address, Signature, B256};

use super::state::ProvenState;
use super::{call, ReservesError};

/// Whether `exchange` can be named in the message: not empty, and no control characters, which
/// could make one signed text read as another with different lines.
pub fn is_valid_exchange_name(exchange: &str) -> bool {
    !exchange.trim().is_empty() && !exchange.chars().any(char::is_control)
}

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

/// The longest contract-wallet signature accepted (a multi-owner wallet's concatenated signatures).
pub const MAX_SIGNATURE_BYTES: usize = 4096;

/// Checks `signature` as contract wallet `address`'s (EIP-1271): its `isValidSignature` over the
/// EIP-191 hash of [`message`], run at `state`'s block, must return the magic value. State the
/// call needs that is not proven comes back as [`ReservesError::Unproven`], as for any call.
pub fn verify_contract(
    state: &ProvenState,
    exchange: &str,
    chain_id: u64,
    address: Address,
    challenge: &[u8],
    signature: &[u8],
) -> Result<(), ReservesError> {
    let refused = |detail: String| ReservesError::Ownership { chain: state.chain.clone(), address, detail };
    if signature.len() > MAX_SIGNATURE_BYTES {
        return Err(refused(format!("a signature of {} bytes; at most {MAX_SIGNATURE_BYTES} are accepted", signature.len())));
    }
    let accepts = |hash, signature: &[u8]| -> Result<bool, ReservesError> {
        match call::call(state, chain_id, address, &call::is_valid_signature(hash, signature)) {
            Ok(output) => Ok(output.as_ref() == call::IS_VALID_SIGNATURE_WORD.as_slice()),
            Err(ReservesError::Call { detail, .. }) => Err(refused(format!("isValidSignature failed: {detail}"))),
            Err(other) => Err(other),
        }
    };
    let hash = eip191_hash_message(message(exchange, chain_id, address, challenge));
    if !accepts(hash, signature)? {
        return Err(refused("the contract wallet's isValidSignature does not accept the signature (EIP-1271)".into()));
    }
    // A contract that says yes to anything (or to an all-zero signature, which a wallet comparing
    // ecrecover's zero address with an unset owner does) proves no one's control.
    if accepts(hash, &vec![0; signature.len()])? || accepts(B256::ZERO, signature)? {
        return Err(refused(
            "the contract accepts signatures that are not its owner's (a zeroed signature, or another message): it proves no control".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// anvil's dev account 0 (its well-known key), `personal_sign` of the message below.
    const SIGNER: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
    const SIGNATURE: &str = "d21b061a8867579e6bbd3c86ade25655becb72faeed6a0682c33e80e5f19f0a10754efd9f267a167de2efe8300c7a8c16912257de59cce1d0ae3cfe33db82a771b";

    #[test]
    fn the_message_is_the_documented_text() {
        let address: Address = SIGNER.parse().unwrap();
        assert_eq!(
            message("Example Exchange", 1, address, &[0x00, 0x11, 0x22, 0x33]),
            "solvency-enclave proof of reserves\nexchange: Example Exchange\nchain-id: 1\n\
             address: 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\nchallenge: 00112233"
        );
    }

    #[test]
    fn a_wallets_signature_verifies_and_binds_exchange_chain_address_and_challenge() {
        let address: Address = SIGNER.parse().unwrap();
        let signature = hex::decode(SIGNATURE).unwrap();
        let challenge = [0x00, 0x11, 0x22, 0x33];
        verify("Example Exchange", "ethereum", 1, address, &challenge, &signature).unwrap();
        for (exchange, chain_id, challenge) in [
            ("Other Exchange", 1, &challenge[..]),
            ("Example Exchange", 10, &challenge[..]),
            ("Example Exchange", 1, &[0x00, 0x11, 0x22, 0x34][..]),
        ] {
            let err = verify(exchange, "ethereum", chain_id, address, challenge, &signature).unwrap_err();
            assert!(matches!(err, ReservesError::Ownership { .. }), "{err}");
        }
        let other: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8".parse().unwrap();
        assert!(verify("Example Exchange", "ethereum", 1, other, &challenge, &signature).is_err());
        for bad in [&signature[..64], &[0u8; 65][..], &[][..]] {
            assert!(verify("Example Exchange", "ethereum", 1, address, &challenge, bad).is_err());
        }
    }
}
