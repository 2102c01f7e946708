//! The liabilities commitment's encodings: account ids, salts and amounts to field elements,
//! the account commitment, leaves, tree nodes and the running-sum commitments (spec §4–§6).

use ark_bls12_381::Fr;
use ark_ff::{PrimeField, Zero};
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use sha2::{Digest, Sha256};

use crate::poseidon::{domain_tag, hash};
use crate::tree::ARITY;

/// Domain kinds placed in the capacity element (spec §3).
pub mod kind {
    /// Account commitment: `(id, salt_lo, salt_hi)`.
    pub const ACCOUNT: u64 = 1;
    /// Leaf: `(account commitment, balance_1, .., balance_K)`.
    pub const LEAF: u64 = 2;
    /// Tree node: eight children.
    pub const NODE: u64 = 3;
    /// Running-sum commitment: `(blinder, sum_1, .., sum_K)`.
    pub const SUM: u64 = 4;
}

/// Longest account id accepted, in bytes.
pub const MAX_ACCOUNT_ID_BYTES: usize = 256;

const ACCOUNT_ID_DOMAIN: &[u8] = b"solvency-enclave/account-id/v1\0";
const ROUND_DOMAIN: &[u8] = b"solvency-enclave/round/v1\0";

/// Bytes of one encoded field element (little-endian, canonical).
pub const FIELD_BYTES: usize = 32;

/// A field element from the first 31 bytes of a SHA-256 digest, read little-endian (< 2^248 < p).
fn element_from_digest(digest: &[u8]) -> Fr {
    Fr::from_le_bytes_mod_order(&digest[..31])
}

/// The field element of an account id: its UTF-8 bytes hashed with SHA-256 under a domain prefix.
pub fn account_id_element(account_id: &str) -> Fr {
    let digest = Sha256::new().chain_update(ACCOUNT_ID_DOMAIN).chain_update(account_id.as_bytes()).finalize();
    element_from_digest(&digest)
}

/// What a round's proofs are bound to besides the ledger: changing any of it breaks the chain.
#[derive(Clone, Copy, Debug)]
pub struct RoundContext<'a> {
    /// 32 random bytes naming the round.
    pub round_id: &'a [u8; 32],
    /// Asset symbols, in balance order.
    pub assets: &'a [String],
    /// Account slots per batch.
    pub batch_size: u64,
    /// Accounts in the round.
    pub leaf_count: u64,
}

impl RoundContext<'_> {
    /// The public field element that blinds the start of the round's sum chain (spec §6):
    /// SHA-256 over the domain, the round id, the length-prefixed asset symbols, the batch size
    /// and the leaf count, truncated to 31 bytes.
    pub fn element(&self) -> Fr {
        let mut digest = Sha256::new().chain_update(ROUND_DOMAIN).chain_update(self.round_id);
        digest.update((self.assets.len() as u32).to_le_bytes());
        for symbol in self.assets {
            digest.update((symbol.len() as u32).to_le_bytes());
            digest.update(symbol.as_bytes());
        }
        digest.update(self.batch_size.to_le_bytes());
        digest.update(self.leaf_count.to_le_bytes());
        element_from_digest(&digest.finalize())
    }
}

/// 32 random bytes, fresh per account and per round, that hide the account's leaf.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Salt(pub [u8; 32]);

impl Salt {
    /// The salt as two field elements: bytes 0..16 and 16..32, each read as a little-endian u128.
    pub fn elements(&self) -> [Fr; 2] {
        let (lo, hi) = self.0.split_at(16);
        let mut buf = [0u8; 16];
        buf.copy_from_slice(lo);
        let lo = u128::from_le_bytes(buf);
        buf.copy_from_slice(hi);
        let hi = u128::from_le_bytes(buf);
        [Fr::from(lo), Fr::from(hi)]
    }
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Salt(..)")
    }
}

/// `Poseidon(ACCOUNT, [id, salt_lo, salt_hi])`: binds the user's identity into the leaf.
pub fn account_commitment(account_id: &str, salt: &Salt) -> Fr {
    let [lo, hi] = salt.elements();
    hash(domain_tag(kind::ACCOUNT, 3), &[account_id_element(account_id), lo, hi])
}

/// `Poseidon(LEAF, [commitment, b_1, .., b_K])` over field-encoded balances.
pub fn leaf_from_elements(commitment: Fr, balances: &[Fr]) -> Fr {
    let mut inputs = Vec::with_capacity(balances.len() + 1);
    inputs.push(commitment);
    inputs.extend_from_slice(balances);
    hash(domain_tag(kind::LEAF, inputs.len()), &inputs)
}

/// The leaf of an account with balances in base units, one per configured asset.
pub fn leaf(commitment: Fr, balances: &[u64]) -> Fr {
    let balances: Vec<Fr> = balances.iter().map(|&b| Fr::from(b)).collect();
    leaf_from_elements(commitment, &balances)
}

/// The canonical zero leaf that pads a partial last batch: commitment 0, all balances 0.
pub fn padding_leaf(assets: usize) -> Fr {
    leaf_from_elements(Fr::zero(), &vec![Fr::zero(); assets])
}

/// `Poseidon(NODE, children)`.
pub fn node(children: &[Fr; ARITY]) -> Fr {
    hash(domain_tag(kind::NODE, ARITY), children)
}

/// `Poseidon(SUM, [blinder, s_1, .., s_K])`: hides a running per-asset sum between batches.
pub fn sum_commitment(blinder: Fr, sums: &[Fr]) -> Fr {
    let mut inputs = Vec::with_capacity(sums.len() + 1);
    inputs.push(blinder);
    inputs.extend_from_slice(sums);
    hash(domain_tag(kind::SUM, inputs.len()), &inputs)
}

/// The commitment the first batch opens: all sums zero, blinded by the round's public element.
pub fn chain_start(context: &RoundContext<'_>) -> Fr {
    sum_commitment(context.element(), &vec![Fr::zero(); context.assets.len()])
}

/// The commitment the last batch must produce: the published totals, blinder zero.
pub fn chain_end(totals: &[u128]) -> Fr {
    let totals: Vec<Fr> = totals.iter().map(|&t| Fr::from(t)).collect();
    sum_commitment(Fr::zero(), &totals)
}

/// Encodes a field element as 32 little-endian bytes.
pub fn element_to_bytes(x: &Fr) -> [u8; FIELD_BYTES] {
    let mut out = [0u8; FIELD_BYTES];
    // A field element always serialises to exactly FIELD_BYTES bytes; qed.
    let _ = x.serialize_compressed(&mut out[..]);
    out
}

/// Decodes 32 little-endian bytes; `None` unless the length is exact and the value is below p.
pub fn element_from_bytes(bytes: &[u8]) -> Option<Fr> {
    if bytes.len() != FIELD_BYTES {
        return None;
    }
    Fr::deserialize_compressed(bytes).ok()
}

/// Lower-case hex of an element's encoding.
pub fn element_to_hex(x: &Fr) -> String {
    hex::encode(element_to_bytes(x))
}

/// Parses [`element_to_hex`]'s output.
pub fn element_from_hex(s: &str) -> Option<Fr> {
    hex::decode(s).ok().and_then(|b| element_from_bytes(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_encoding_round_trips_and_rejects_non_canonical() {
        let x = Fr::from(0x1234_5678u64);
        assert_eq!(element_from_bytes(&element_to_bytes(&x)), Some(x));
        assert_eq!(element_from_bytes(&[0xff; 32]), None, "above the modulus");
        assert_eq!(element_from_bytes(&[0; 31]), None, "short");
        assert_eq!(element_from_bytes(&[0; 33]), None, "long");
        let mut bytes = [0u8; 32];
        Fr::from(0u64).serialize_compressed(&mut bytes[..]).unwrap();
        assert_eq!(element_from_bytes(&bytes), Some(Fr::from(0u64)));
    }

    #[test]
    fn salt_splits_little_endian() {
        let mut s = [0u8; 32];
        s[0] = 1;
        s[16] = 2;
        assert_eq!(Salt(s).elements(), [Fr::from(1u64), Fr::from(2u64)]);
    }

    #[test]
    fn distinct_ids_salts_and_balances_give_distinct_leaves() {
        let salt = Salt([7; 32]);
        let a = account_commitment("alice", &salt);
        assert_ne!(a, account_commitment("alicf", &salt));
        assert_ne!(a, account_commitment("alice", &Salt([8; 32])));
        assert_ne!(leaf(a, &[1, 2]), leaf(a, &[2, 1]));
        assert_ne!(leaf(a, &[0]), padding_leaf(1));
    }
}
