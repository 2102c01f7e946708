//! The liabilities batch circuit: its statement, the Poseidon gadget it uses, and the backends
//! that turn it into R1CS constraints or a native witness.

pub mod backend;
pub mod batch;
pub mod poseidon;
