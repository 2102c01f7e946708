//! Prints the test vectors of `docs/commitment-spec.md` §10 as JSON, so an independent
//! implementation can be checked against them (and the spec regenerated from the code).
//!
//! `cargo run -p solvency-attestation --example commitment-vectors`

use ark_bls12_381::Fr;
use attestation::commitment::{
    account_commitment, account_id_element, chain_end, chain_start, element_to_hex, leaf, node, padding_leaf,
    sum_commitment, RoundContext, Salt,
};
use attestation::poseidon::{domain_tag, hash, params, MAX_WIDTH};
use attestation::tree::{empty_root, Levels, TreeShape};
use serde_json::json;
use sha2::{Digest, Sha256};

fn h(x: Fr) -> String {
    element_to_hex(&x)
}

fn main() {
    let constants: Vec<_> = (2..=MAX_WIDTH)
        .map(|w| {
            let p = params(w).expect("defined width");
            let mut digest = Sha256::new();
            for x in p.ark.iter().chain(&p.mds).flatten() {
                digest.update(attestation::commitment::element_to_bytes(x));
            }
            json!({
                "width": w,
                "partial_rounds": p.partial_rounds,
                "ark_0_0": h(p.ark[0][0]),
                "mds_0_0": h(p.mds[0][0]),
                "sha256_of_ark_then_mds": hex::encode(digest.finalize()),
            })
        })
        .collect();

    let salt = |b: u8| Salt(std::array::from_fn(|i| b.wrapping_add(i as u8)));
    let alice = account_commitment("alice", &salt(0));
    let bob = account_commitment("bob", &salt(0x20));
    let carol = account_commitment("carol", &salt(0x40));
    let round_id = [0x11u8; 32];

    // A complete round: alice 5, bob 7, carol 0 (one asset), batches of 2, in this leaf order.
    let shape = TreeShape::new(2, 3).expect("valid shape");
    let batch0 = Levels::build(vec![leaf(alice, &[5]), leaf(bob, &[7])], shape.batch_depth);
    let batch1 = Levels::build(vec![leaf(carol, &[0]), padding_leaf(1)], shape.batch_depth);
    let top = Levels::build(vec![batch0.root(), batch1.root()], shape.top_depth);
    let assets = vec!["BTC".to_owned()];
    let context = RoundContext { round_id: &round_id, assets: &assets, batch_size: 2, leaf_count: 3 };
    let c1 = sum_commitment(Fr::from(42u64), &[Fr::from(12u64)]);

    let vectors = json!({
        "poseidon_parameters": constants,
        "poseidon_hash": {
            "tag(kind=2,len=2)": h(domain_tag(2, 2)),
            "hash(tag(2,2), [1, 2])": h(hash(domain_tag(2, 2), &[Fr::from(1u64), Fr::from(2u64)])),
            "hash(tag(2,10), [1..=10])": h(hash(domain_tag(2, 10), &(1..=10u64).map(Fr::from).collect::<Vec<_>>())),
        },
        "account_id_element(\"alice\")": h(account_id_element("alice")),
        "salt(alice)": hex::encode(salt(0).0),
        "account_commitment(\"alice\")": h(alice),
        "leaf(alice, [5])": h(leaf(alice, &[5])),
        "leaf(alice, [5, 7, 18446744073709551615])": h(leaf(alice, &[5, 7, u64::MAX])),
        "padding_leaf(K=1)": h(padding_leaf(1)),
        "node([1..=8])": h(node(&std::array::from_fn(|i| Fr::from(i as u64 + 1)))),
        "empty_root(1)": h(empty_root(1)),
        "empty_root(2)": h(empty_root(2)),
        "round_context_element": h(context.element()),
        "chain_start": h(chain_start(&context)),
        "sum_commitment(42, [12])": h(c1),
        "chain_end([12])": h(chain_end(&[12])),
        "round": {
            "accounts": [["alice", hex::encode(salt(0).0), 5], ["bob", hex::encode(salt(0x20).0), 7], ["carol", hex::encode(salt(0x40).0), 0]],
            "batch_size": 2,
            "batch_roots": [h(batch0.root()), h(batch1.root())],
            "root": h(top.root()),
            "position_of_leaf_2": shape.position(2),
        },
    });
    println!("{}", serde_json::to_string_pretty(&vectors).unwrap_or_default());
}
