//! The proving-keys file: what is written is what is read, and damaged files are refused.

mod common;

use attestation::groth16::{verify_one, Statement};
use attestation::liabilities::batch_public_inputs;
use common::{honest_assignment, keys, rng};
use enclave::circuit::batch::BatchShape;
use enclave::error::KeyFileError;
use enclave::keys::ProvingKeys;
use enclave::prover::prove_batch;

const SHAPE: BatchShape = BatchShape { batch_size: 3, assets: 2 };

fn written() -> Vec<u8> {
    let mut bytes = Vec::new();
    keys(SHAPE).write_to(&mut bytes).unwrap();
    bytes
}

#[test]
fn loaded_keys_prove_under_the_original_verifying_key() {
    let original = keys(SHAPE);
    let loaded = ProvingKeys::read_from(written().as_slice()).unwrap();
    assert_eq!(loaded.shape, SHAPE);
    assert_eq!(loaded.size, original.size);
    assert_eq!(loaded.verifying_key(), original.verifying_key());
    assert_eq!(loaded.matrices, original.matrices);
    let a = honest_assignment(&SHAPE, &[vec![1, 2], vec![3, 4]]);
    let proof = prove_batch(&loaded, &a, 0, &mut rng(3)).unwrap();
    let inputs = batch_public_inputs(a.public.prev_commitment, a.public.next_commitment, a.public.root);
    assert!(verify_one(original.verifying_key(), &Statement { proof: &proof, inputs: &inputs }));
}

#[test]
fn damaged_files_are_refused() {
    let bytes = written();
    let mut wrong_magic = bytes.clone();
    wrong_magic[0] ^= 1;
    assert!(matches!(ProvingKeys::read_from(wrong_magic.as_slice()), Err(KeyFileError::NotAKeyFile)));

    assert!(matches!(ProvingKeys::read_from(&bytes[..bytes.len() - 1]), Err(KeyFileError::Malformed(_))));
    assert!(matches!(ProvingKeys::read_from(&bytes[..20]), Err(KeyFileError::Io(_))));

    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(ProvingKeys::read_from(trailing.as_slice()), Err(KeyFileError::Malformed(_))));

    // The header claims another batch size than the key was made for.
    let header = b"solvency-enclave/proving-keys/v1\n".len();
    let mut relabelled = bytes.clone();
    relabelled[header] = 4;
    assert!(matches!(ProvingKeys::read_from(relabelled.as_slice()), Err(KeyFileError::Malformed(_))));
    let mut absurd = bytes;
    absurd[header + 8..header + 16].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(ProvingKeys::read_from(absurd.as_slice()), Err(KeyFileError::Malformed(_))));
}

#[test]
fn unsupported_shapes_are_refused_by_setup_and_counted_without_panicking() {
    use enclave::error::ProveError;
    use enclave::keys::{circuit_size, setup};
    for shape in [BatchShape { batch_size: 0, assets: 1 }, BatchShape { batch_size: 1, assets: 0 }] {
        assert!(matches!(setup(shape, &mut rng(4)), Err(ProveError::Shape { .. })));
        let _ = circuit_size(&shape);
    }
}
