//! Chain state proven against a block header: the header must hash to the recorded block hash,
//! and every account and storage slot must follow from its state root by a Merkle-Patricia
//! proof. What is not proven does not exist for the EVM ([`ProvenState`] refuses it), so an
//! endpoint that lies can make a read fail but never change its result.

use std::collections::BTreeMap;

use alloy_consensus::Header;
use alloy_primitives::{keccak256, Address, Bytes, B256, U256};
use alloy_rlp::Decodable;
use alloy_trie::{proof::verify_proof, Nibbles, TrieAccount, EMPTY_ROOT_HASH, KECCAK_EMPTY};

use super::evidence::{AccountEvidence, ChainEvidence};
use super::{Missing, ReservesError};

/// One account as proven: its state, the code that may run, and the proven storage slots.
#[derive(Clone, Debug)]
pub struct ProvenAccount {
    /// The state (all zero for an account proven absent).
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// Keccak-256 of the code.
    pub code_hash: B256,
    /// The code, when the evidence carries it.
    pub code: Option<Bytes>,
    /// Proven slots.
    pub storage: BTreeMap<U256, U256>,
}

/// A chain's block and the state proven in it.
#[derive(Clone, Debug)]
pub struct ProvenState {
    /// The chain's configured name.
    pub chain: String,
    /// The header.
    pub header: Header,
    /// The header's hash.
    pub hash: B256,
    /// The proven accounts.
    pub accounts: BTreeMap<Address, ProvenAccount>,
}

fn fixed<const N: usize>(chain: &str, field: &'static str, bytes: &[u8]) -> Result<[u8; N], ReservesError> {
    bytes.try_into().map_err(|_| ReservesError::Evidence {
        chain: chain.to_owned(),
        detail: format!("{field} is {} bytes, expected {N}", bytes.len()),
    })
}

impl ProvenState {
    /// Checks the header against the expected hash and every proof against its state root.
    pub fn prove(evidence: &ChainEvidence, expected_hash: &[u8]) -> Result<Self, ReservesError> {
        let chain = evidence.name.as_str();
        let bad = |detail: String| ReservesError::Evidence { chain: chain.to_owned(), detail };
        let mut slice = evidence.header.as_slice();
        let header = Header::decode(&mut slice).map_err(|e| bad(format!("the header is not RLP of a header: {e}")))?;
        if !slice.is_empty() {
            return Err(bad("bytes follow the header".into()));
        }
        let hash = keccak256(&evidence.header);
        if hash.as_slice() != expected_hash {
            return Err(bad(format!("the header hashes to {hash}, not to the recorded block hash")));
        }
        let mut accounts = BTreeMap::new();
        for account in &evidence.accounts {
            let (address, proven) = prove_account(chain, header.state_root, account)?;
            if accounts.insert(address, proven).is_some() {
                return Err(bad(format!("account {address} is proven twice")));
            }
        }
        Ok(Self { chain: chain.to_owned(), header, hash, accounts })
    }

    /// A proven account, or an error naming it when the evidence has no proof for it.
    pub fn account(&self, address: Address) -> Result<&ProvenAccount, ReservesError> {
        self.accounts
            .get(&address)
            .ok_or_else(|| ReservesError::Unproven { chain: self.chain.clone(), missing: Missing::Account(address) })
    }
}

fn proof_nodes(proof: &[serde_bytes::ByteBuf]) -> Vec<Bytes> {
    proof.iter().map(|node| Bytes::copy_from_slice(node)).collect()
}

/// Checks one account's evidence (its proof, code and slots) against `state_root`.
pub fn prove_account(
    chain: &str,
    state_root: B256,
    evidence: &AccountEvidence,
) -> Result<(Address, ProvenAccount), ReservesError> {
    let address = Address::from(fixed::<20>(chain, "an address", &evidence.address)?);
    let bad = |detail: String| ReservesError::Evidence { chain: chain.to_owned(), detail };
    let (trie_account, expected) = match &evidence.state {
        Some(state) => {
            let account = TrieAccount {
                nonce: state.nonce,
                balance: U256::from_be_bytes(fixed::<32>(chain, "a balance", &state.balance)?),
                storage_root: B256::from(fixed::<32>(chain, "a storage root", &state.storage_root)?),
                code_hash: B256::from(fixed::<32>(chain, "a code hash", &state.code_hash)?),
            };
            (account, Some(alloy_rlp::encode(account)))
        }
        None => (
            TrieAccount { nonce: 0, balance: U256::ZERO, storage_root: EMPTY_ROOT_HASH, code_hash: KECCAK_EMPTY },
            None,
        ),
    };
    let nodes = proof_nodes(&evidence.proof);
    verify_proof(state_root, Nibbles::unpack(keccak256(address)), expected, nodes.iter())
        .map_err(|e| bad(format!("the proof of account {address} does not hold: {e}")))?;
    let code = match &evidence.code {
        Some(code) => {
            if keccak256(code) != trie_account.code_hash {
                return Err(bad(format!("the code given for {address} does not hash to its code hash")));
            }
            Some(Bytes::copy_from_slice(code))
        }
        None => None,
    };
    let mut storage = BTreeMap::new();
    for slot in &evidence.storage {
        let key = U256::from_be_bytes(fixed::<32>(chain, "a storage key", &slot.key)?);
        let value = U256::from_be_bytes(fixed::<32>(chain, "a storage value", &slot.value)?);
        let nodes = proof_nodes(&slot.proof);
        let path = Nibbles::unpack(keccak256(B256::from(key)));
        let root = trie_account.storage_root;
        let proven = if value.is_zero() {
            // Ethereum deletes zeroed slots from the trie; some nodes (anvil) keep them with the
            // RLP of zero (0x80). Either way the slot holds zero.
            verify_proof(root, path, None, nodes.iter())
                .or_else(|_| verify_proof(root, path, Some(alloy_rlp::encode(value)), nodes.iter()))
        } else {
            verify_proof(root, path, Some(alloy_rlp::encode(value)), nodes.iter())
        };
        proven.map_err(|e| bad(format!("the proof of slot {key:#x} of {address} does not hold: {e}")))?;
        if storage.insert(key, value).is_some() {
            return Err(bad(format!("slot {key:#x} of {address} is proven twice")));
        }
    }
    Ok((
        address,
        ProvenAccount {
            nonce: trie_account.nonce,
            balance: trie_account.balance,
            code_hash: trie_account.code_hash,
            code,
            storage,
        },
    ))
}
