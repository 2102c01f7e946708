//! The liabilities circuits: the batch statement, the private-mode solvency opening, the Poseidon
//! gadget they use, and the backends that turn them into R1CS constraints or a native witness.

pub mod backend;
pub mod batch;
pub mod opening;
pub mod poseidon;
