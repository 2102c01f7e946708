//! The test vectors of `docs/commitment-spec.md` §10, published in `docs/commitment-vectors.json`
//! for independent implementations. This test recomputes them and compares; run it with
//! `SOLVENCY_REGENERATE_VECTORS=1` to rewrite the file after a deliberate change.

use ark_bls12_381::Fr;
use attestation::commitment::{
    account_commitment, account_id_element, chain_end, chain_start, element_to_hex, leaf, node, padding_leaf,
    sum_commitment, RoundContext, Salt,
};
use attestation::inclusion::encode_path;
use attestation::poseidon::{domain_tag, hash, params, MAX_WIDTH};
use attestation::tree::{empty_root, Levels, TreeShape};
use serde_json::json;
use sha2::{Digest, Sha256};

fn h(x: Fr) -> String {
    element_to_hex(&x)
}

fn vectors() -> serde_json::Value {
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
    let batch0 = shape.build_batch(vec![leaf(alice, &[5]), leaf(bob, &[7])]);
    let batch1 = shape.build_batch(vec![leaf(carol, &[0]), padding_leaf(1)]);
    let top = shape.build_top(vec![batch0.root(), batch1.root()]);
    let assets = vec!["BTC".to_owned()];
    let context = RoundContext { round_id: &round_id, assets: &assets, batch_size: 2, leaf_count: 3 };
    let c1 = sum_commitment(Fr::from(42u64), &[Fr::from(12u64)]);

    // A larger round: 82 accounts "user-<i>" with salt bytes all equal to i and balances
    // [i, 1000 - i] (assets BTC, ETH), batches of 9 (d = 2), so 10 batches (e = 2), the last
    // holding one account and eight padding leaves; round id 22 x 32.
    let assets2 = vec!["BTC".to_owned(), "ETH".to_owned()];
    let n = 82u64;
    let shape2 = TreeShape::new(9, n).expect("valid shape");
    let leaves2: Vec<Fr> =
        (0..n).map(|i| leaf(account_commitment(&format!("user-{i}"), &Salt([i as u8; 32])), &[i, 1000 - i])).collect();
    let batches2: Vec<Levels> = leaves2
        .chunks(9)
        .map(|c| {
            let mut c = c.to_vec();
            c.resize(9, padding_leaf(2));
            shape2.build_batch(c)
        })
        .collect();
    let top2 = shape2.build_top(batches2.iter().map(Levels::root).collect());
    let mut path81 = batches2[9].path(0);
    path81.extend(top2.path(9));
    let totals2 = [(0..n).sum::<u64>() as u128, (0..n).map(|i| 1000 - i).sum::<u64>() as u128];
    let round_id2 = [0x22u8; 32];
    let context2 = RoundContext { round_id: &round_id2, assets: &assets2, batch_size: 9, leaf_count: n };

    let vectors = json!({
        "poseidon_parameters": constants,
        "poseidon_hash": {
            "tag(kind=2,len=2)": h(domain_tag(2, 2)),
            "hash(tag(2,2), [1, 2])": h(hash(domain_tag(2, 2), &[Fr::from(1u64), Fr::from(2u64)])),
            "hash(tag(2,10), [1..=10])": h(hash(domain_tag(2, 10), &(1..=10u64).map(Fr::from).collect::<Vec<_>>())),
            "hash(tag(2,17), [1..=17])": h(hash(domain_tag(2, 17), &(1..=17u64).map(Fr::from).collect::<Vec<_>>())),
            "hash(tag(2,20), [1..=20])": h(hash(domain_tag(2, 20), &(1..=20u64).map(Fr::from).collect::<Vec<_>>())),
        },
        "account_id_element(\"alice\")": h(account_id_element("alice")),
        "salt(alice)": hex::encode(salt(0).0),
        "account_commitment(\"alice\")": h(alice),
        "leaf(alice, [5])": h(leaf(alice, &[5])),
        "leaf(alice, [5, 7, 18446744073709551615])": h(leaf(alice, &[5, 7, u64::MAX])),
        "leaf(alice, [1..=10])": h(leaf(alice, &(1..=10u64).collect::<Vec<_>>())),
        "padding_leaf(K=1)": h(padding_leaf(1)),
        "node([1..=8])": h(node(&std::array::from_fn(|i| Fr::from(i as u64 + 1)))),
        "empty_root(1)": h(empty_root(1)),
        "empty_root(2)": h(empty_root(2)),
        "round_context_element": h(context.element()),
        "chain_start": h(chain_start(&context)),
        "sum_commitment(42, [12])": h(c1),
        "chain_end([12])": h(chain_end(&[12])),
        "round": {
            "round_id": hex::encode(round_id),
            "assets": assets,
            "accounts": [["alice", hex::encode(salt(0).0), 5], ["bob", hex::encode(salt(0x20).0), 7], ["carol", hex::encode(salt(0x40).0), 0]],
            "batch_size": 2,
            "batch_roots": [h(batch0.root()), h(batch1.root())],
            "root": h(top.root()),
            "position_of_leaf_2": shape.position(2),
        },
        "round_82": {
            "round_id": hex::encode(round_id2),
            "accounts": "for i = 0..81 in this leaf order: id \"user-<i>\" (i in decimal, no padding), salt = 32 bytes each equal to i, balances [i, 1000 - i]",
            "batch_size": 9,
            "leaf_count": n,
            "assets": assets2,
            "batch_depth": shape2.batch_depth,
            "top_depth": shape2.top_depth,
            "batch_roots": batches2.iter().map(|b| h(b.root())).collect::<Vec<_>>(),
            "root": h(top2.root()),
            "totals": totals2.iter().map(u128::to_string).collect::<Vec<_>>(),
            "chain_start": h(chain_start(&context2)),
            "chain_end": h(chain_end(&totals2)),
            "position_of_leaf_81": shape2.position(81),
            "leaf_81": h(leaves2[81]),
            "path_of_leaf_81": encode_path(&path81),
        },
    });
    vectors
}

#[test]
fn vectors_match_the_published_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/commitment-vectors.json");
    let computed = vectors();
    if std::env::var_os("SOLVENCY_REGENERATE_VECTORS").is_some() {
        std::fs::write(path, serde_json::to_string_pretty(&computed).unwrap() + "\n").unwrap();
    }
    let published: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(computed, published, "the commitment changed; if deliberately, regenerate and update the spec");
}
