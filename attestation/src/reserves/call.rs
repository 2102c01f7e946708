//! Contract reads (`latestRoundData`, `decimals`, `balanceOf`) executed in a local EVM (revm)
//! over [`ProvenState`]: any account, slot or code the call touches that the evidence does not
//! prove stops the call, so its result follows from the block's state root alone. The enclave
//! and the verifier run the same code.

use alloy_primitives::{Address, Bytes, B256, U256};
use revm::context::{BlockEnv, CfgEnv, Context, TxEnv};
use revm::context_interface::result::{ExecutionResult, Output};
use revm::database_interface::{DBErrorMarker, DatabaseRef};
use revm::primitives::hardfork::SpecId;
use revm::state::{AccountInfo, Bytecode};
use revm::{ExecuteEvm, MainBuilder, MainContext};

use super::state::ProvenState;
use super::{Missing, ReservesError};

/// The account calls are made from. It must be proven like any other, since the EVM loads it.
pub const CALLER: Address = Address::ZERO;
/// Gas for one read: far more than any view function needs, below Osaka's per-transaction cap.
pub const CALL_GAS: u64 = 10_000_000;

/// Something the call touched that the evidence does not prove.
#[derive(Debug, thiserror::Error)]
#[error("{0} is not proven")]
pub struct Unproven(Missing);

impl DBErrorMarker for Unproven {}

impl DatabaseRef for &ProvenState {
    type Error = Unproven;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Unproven> {
        let account = self.accounts.get(&address).ok_or(Unproven(Missing::Account(address)))?;
        let code = match &account.code {
            Some(code) => Some(Bytecode::new_raw_checked(code.clone()).map_err(|_| Unproven(Missing::Code(account.code_hash)))?),
            None if account.code_hash == revm::primitives::KECCAK_EMPTY => Some(Bytecode::default()),
            // The code is loaded through `code_by_hash_ref` if the call runs it.
            None => None,
        };
        Ok(Some(AccountInfo {
            balance: account.balance,
            nonce: account.nonce,
            code_hash: account.code_hash,
            account_id: None,
            code,
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Unproven> {
        let code = self
            .accounts
            .values()
            .find_map(|a| a.code.as_ref().filter(|_| a.code_hash == code_hash))
            .ok_or(Unproven(Missing::Code(code_hash)))?;
        Bytecode::new_raw_checked(code.clone()).map_err(|_| Unproven(Missing::Code(code_hash)))
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Unproven> {
        self.accounts
            .get(&address)
            .and_then(|a| a.storage.get(&index))
            .copied()
            .ok_or(Unproven(Missing::Slot(address, index)))
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Unproven> {
        Err(Unproven(Missing::BlockHash(number)))
    }
}

/// Runs a read-only call of `to` with `data` at the proven block, and returns its output.
pub fn call(state: &ProvenState, chain_id: u64, to: Address, data: &[u8]) -> Result<Bytes, ReservesError> {
    let header = &state.header;
    let block = BlockEnv {
        number: U256::from(header.number),
        beneficiary: CALLER,
        timestamp: U256::from(header.timestamp),
        gas_limit: header.gas_limit.max(CALL_GAS),
        // BASEFEE as the header says; the fee itself is not charged (a read-only call).
        basefee: header.base_fee_per_gas.unwrap_or(0),
        difficulty: header.difficulty,
        prevrandao: Some(header.mix_hash),
        ..BlockEnv::default()
    };
    let mut cfg = CfgEnv::new_with_spec(SpecId::OSAKA);
    cfg.chain_id = chain_id;
    cfg.disable_nonce_check = true;
    cfg.disable_base_fee = true;
    cfg.disable_balance_check = true;
    cfg.disable_fee_charge = true;
    let mut evm = Context::mainnet().with_block(block).with_cfg(cfg).with_ref_db(state).build_mainnet();
    let tx = TxEnv::builder()
        .caller(CALLER)
        .call(to)
        .data(Bytes::copy_from_slice(data))
        .gas_limit(CALL_GAS)
        .gas_price(0)
        .chain_id(Some(chain_id))
        .build()
        .map_err(|e| ReservesError::Call { chain: state.chain.clone(), to, detail: format!("{e:?}") })?;
    let outcome = evm.transact(tx).map_err(|e| match e {
        revm::context_interface::result::EVMError::Database(Unproven(missing)) => {
            ReservesError::Unproven { chain: state.chain.clone(), missing }
        }
        other => ReservesError::Call { chain: state.chain.clone(), to, detail: other.to_string() },
    })?;
    match outcome.result {
        ExecutionResult::Success { output: Output::Call(bytes), .. } => Ok(bytes),
        ExecutionResult::Success { .. } => {
            Err(ReservesError::Call { chain: state.chain.clone(), to, detail: "not a call".into() })
        }
        ExecutionResult::Revert { .. } => {
            Err(ReservesError::Call { chain: state.chain.clone(), to, detail: "the call reverted".into() })
        }
        ExecutionResult::Halt { reason, .. } => {
            Err(ReservesError::Call { chain: state.chain.clone(), to, detail: format!("the call halted: {reason:?}") })
        }
    }
}

/// `decimals()`.
pub const DECIMALS: [u8; 4] = [0x31, 0x3c, 0xe5, 0x67];
/// `latestRoundData()`.
pub const LATEST_ROUND_DATA: [u8; 4] = [0xfe, 0xaf, 0x96, 0x8c];
/// `balanceOf(address)`.
pub const BALANCE_OF: [u8; 4] = [0x70, 0xa0, 0x82, 0x31];

/// Call data for `balanceOf(owner)`.
pub fn balance_of(owner: Address) -> Vec<u8> {
    let mut data = BALANCE_OF.to_vec();
    data.extend_from_slice(&[0; 12]);
    data.extend_from_slice(owner.as_slice());
    data
}

/// `isValidSignature(bytes32,bytes)` (EIP-1271), and what it returns for a valid signature.
pub const IS_VALID_SIGNATURE: [u8; 4] = [0x16, 0x26, 0xba, 0x7e];

/// The whole word a valid answer is: the selector, then 28 zero bytes (ABI `bytes4`).
pub const IS_VALID_SIGNATURE_WORD: [u8; 32] = {
    let mut word = [0u8; 32];
    word[0] = IS_VALID_SIGNATURE[0];
    word[1] = IS_VALID_SIGNATURE[1];
    word[2] = IS_VALID_SIGNATURE[2];
    word[3] = IS_VALID_SIGNATURE[3];
    word
};

/// Call data for `isValidSignature(hash, signature)`.
pub fn is_valid_signature(hash: B256, signature: &[u8]) -> Vec<u8> {
    let mut data = IS_VALID_SIGNATURE.to_vec();
    data.extend_from_slice(hash.as_slice());
    data.extend_from_slice(&U256::from(64u8).to_be_bytes::<32>());
    data.extend_from_slice(&U256::from(signature.len()).to_be_bytes::<32>());
    data.extend_from_slice(signature);
    data.resize(data.len() + (32 - signature.len() % 32) % 32, 0);
    data
}

/// The `index`th 32-byte word of an ABI-encoded return value.
pub fn word(output: &[u8], index: usize) -> Option<[u8; 32]> {
    let start = index.checked_mul(32)?;
    output.get(start..start.checked_add(32)?)?.try_into().ok()
}

/// A word as an unsigned integer that must fit in `bits` bits (ABI `uintN`).
pub fn uint(word: [u8; 32], bits: usize) -> Option<U256> {
    let value = U256::from_be_bytes(word);
    (value.bit_len() <= bits).then_some(value)
}

/// A word as a signed 256-bit integer (ABI `int256`): its sign and magnitude.
pub fn int256(word: [u8; 32]) -> (bool, U256) {
    let value = U256::from_be_bytes(word);
    if value.bit(255) {
        (true, value.wrapping_neg())
    } else {
        (false, value)
    }
}
