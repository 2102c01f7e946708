//! The two ways the batch circuit is run: recording its R1CS constraints (setup, constraint
//! counts, satisfiability checks) or computing its witness natively (proving). Both run the same
//! circuit code, so variable order and constraint count agree by construction.

use ark_ff::PrimeField;

/// A variable of the constraint system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Var {
    /// The `i`-th public input (the constant one is implicit).
    Input(u32),
    /// The `i`-th private witness.
    Witness(u32),
}

/// A linear combination `constant + sum(coeff * var)` together with its value. In witness mode
/// the terms are not tracked (only the value is needed), but whether any variable contributed
/// is, so constant folding happens identically in both modes.
#[derive(Clone, Debug)]
pub struct Lc<F> {
    value: F,
    constant: F,
    terms: Vec<(Var, F)>,
    has_vars: bool,
}

impl<F: PrimeField> Lc<F> {
    /// A constant.
    pub fn constant(value: F) -> Self {
        Self { value, constant: value, terms: Vec::new(), has_vars: false }
    }

    /// A single variable.
    fn variable(var: Var, value: F) -> Self {
        Self { value, constant: F::zero(), terms: vec![(var, F::one())], has_vars: true }
    }

    /// Its value under the current assignment.
    pub fn value(&self) -> F {
        self.value
    }

    /// `Some(value)` if no variable contributes.
    pub fn as_constant(&self) -> Option<F> {
        (!self.has_vars).then_some(self.value)
    }

    /// The constant part and variable terms (empty in witness mode).
    pub fn parts(&self) -> (F, &[(Var, F)]) {
        (self.constant, &self.terms)
    }

    /// `sum(k_i * lc_i)`.
    pub fn combine(parts: &[(F, &Lc<F>)]) -> Self {
        let mut value = F::zero();
        let mut constant = F::zero();
        let mut has_vars = false;
        let mut term_count = 0;
        for (k, lc) in parts {
            value += *k * lc.value;
            constant += *k * lc.constant;
            has_vars |= lc.has_vars;
            term_count += lc.terms.len();
        }
        let terms = if term_count == 0 { Vec::new() } else { merge_terms(parts, term_count) };
        Self { value, constant, terms, has_vars }
    }

    /// `self + other`.
    pub fn add(&self, other: &Lc<F>) -> Self {
        Self::combine(&[(F::one(), self), (F::one(), other)])
    }

    /// `self - other`.
    pub fn sub(&self, other: &Lc<F>) -> Self {
        Self::combine(&[(F::one(), self), (-F::one(), other)])
    }

    /// `self + c`.
    pub fn add_constant(&self, c: F) -> Self {
        let mut out = self.clone();
        out.value += c;
        out.constant += c;
        out
    }

    /// `k * self`.
    pub fn scale(&self, k: F) -> Self {
        Self::combine(&[(k, self)])
    }
}

fn merge_terms<F: PrimeField>(parts: &[(F, &Lc<F>)], term_count: usize) -> Vec<(Var, F)> {
    let mut all: Vec<(Var, F)> = Vec::with_capacity(term_count);
    for (k, lc) in parts {
        all.extend(lc.terms.iter().map(|(v, c)| (*v, *c * k)));
    }
    all.sort_unstable_by_key(|(v, _)| *v);
    let mut merged: Vec<(Var, F)> = Vec::with_capacity(all.len());
    for (v, c) in all {
        match merged.last_mut() {
            Some((last, acc)) if *last == v => *acc += c,
            _ => merged.push((v, c)),
        }
    }
    merged.retain(|(_, c)| !c.is_zero());
    merged
}

/// Where the circuit allocates variables and enforces `a * b = c`.
pub trait Backend<F: PrimeField> {
    /// A new public input with `value`.
    fn input(&mut self, value: F) -> Lc<F>;
    /// A new private witness with `value`.
    fn witness(&mut self, value: F) -> Lc<F>;
    /// Enforces `a * b = c`; `label` names the constraint in diagnostics.
    fn enforce(&mut self, a: &Lc<F>, b: &Lc<F>, c: &Lc<F>, label: &'static str);
}

/// Enforces `a = b` with one constraint.
pub fn enforce_equal<F: PrimeField, B: Backend<F>>(cs: &mut B, a: &Lc<F>, b: &Lc<F>, label: &'static str) {
    cs.enforce(&a.sub(b), &Lc::constant(F::one()), &Lc::constant(F::zero()), label);
}

/// The first constraint that did not hold in witness mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsatisfied {
    /// Its index among all constraints.
    pub index: usize,
    /// Its label.
    pub label: &'static str,
}

/// Computes the assignment natively and checks every constraint on values only.
#[derive(Debug, Default)]
pub struct WitnessBackend<F> {
    /// Public input values, in allocation order.
    pub inputs: Vec<F>,
    /// Witness values, in allocation order.
    pub witnesses: Vec<F>,
    /// Constraints enforced so far.
    pub num_constraints: usize,
    /// The first constraint that failed, if any.
    pub unsatisfied: Option<Unsatisfied>,
}

impl<F: PrimeField> WitnessBackend<F> {
    /// An empty backend; `capacity` pre-sizes the witness vector.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { inputs: Vec::new(), witnesses: Vec::with_capacity(capacity), num_constraints: 0, unsatisfied: None }
    }

    /// `[1, inputs.., witnesses..]`, the order Groth16's prover expects.
    pub fn full_assignment(&self) -> Vec<F> {
        let mut all = Vec::with_capacity(1 + self.inputs.len() + self.witnesses.len());
        all.push(F::one());
        all.extend_from_slice(&self.inputs);
        all.extend_from_slice(&self.witnesses);
        all
    }
}

fn opaque<F: PrimeField>(value: F) -> Lc<F> {
    Lc { value, constant: F::zero(), terms: Vec::new(), has_vars: true }
}

impl<F: PrimeField> Backend<F> for WitnessBackend<F> {
    fn input(&mut self, value: F) -> Lc<F> {
        self.inputs.push(value);
        opaque(value)
    }

    fn witness(&mut self, value: F) -> Lc<F> {
        self.witnesses.push(value);
        opaque(value)
    }

    fn enforce(&mut self, a: &Lc<F>, b: &Lc<F>, c: &Lc<F>, label: &'static str) {
        if self.unsatisfied.is_none() && a.value * b.value != c.value {
            self.unsatisfied = Some(Unsatisfied { index: self.num_constraints, label });
        }
        self.num_constraints += 1;
    }
}

/// One recorded constraint `a * b = c`.
#[derive(Clone, Debug)]
pub struct Constraint<F> {
    /// Left factor.
    pub a: Lc<F>,
    /// Right factor.
    pub b: Lc<F>,
    /// Product.
    pub c: Lc<F>,
    /// Its label.
    pub label: &'static str,
}

/// Records every variable and constraint (with values, so satisfiability can be checked).
#[derive(Debug, Default)]
pub struct R1csBackend<F> {
    /// Public input values.
    pub inputs: Vec<F>,
    /// Witness values.
    pub witnesses: Vec<F>,
    /// The constraints, in order.
    pub constraints: Vec<Constraint<F>>,
}

impl<F: PrimeField> Backend<F> for R1csBackend<F> {
    fn input(&mut self, value: F) -> Lc<F> {
        let var = Var::Input(self.inputs.len() as u32);
        self.inputs.push(value);
        Lc::variable(var, value)
    }

    fn witness(&mut self, value: F) -> Lc<F> {
        let var = Var::Witness(self.witnesses.len() as u32);
        self.witnesses.push(value);
        Lc::variable(var, value)
    }

    fn enforce(&mut self, a: &Lc<F>, b: &Lc<F>, c: &Lc<F>, label: &'static str) {
        self.constraints.push(Constraint { a: a.clone(), b: b.clone(), c: c.clone(), label });
    }
}

impl<F: PrimeField> R1csBackend<F> {
    /// The value of a linear combination recomputed from the recorded assignment (not the
    /// value carried along), so a tampered assignment is seen.
    pub fn evaluate(&self, lc: &Lc<F>) -> F {
        let (constant, terms) = lc.parts();
        terms.iter().fold(constant, |acc, (v, k)| {
            acc + *k
                * match v {
                    Var::Input(i) => self.inputs[*i as usize],
                    Var::Witness(i) => self.witnesses[*i as usize],
                }
        })
    }

    /// The first constraint the recorded assignment violates.
    pub fn first_unsatisfied(&self) -> Option<Unsatisfied> {
        self.constraints.iter().enumerate().find_map(|(index, k)| {
            (self.evaluate(&k.a) * self.evaluate(&k.b) != self.evaluate(&k.c))
                .then_some(Unsatisfied { index, label: k.label })
        })
    }
}

/// A constraint matrix in arkworks' layout: one row per constraint, `(coefficient, column)` with
/// column 0 the constant one, then the public inputs, then the witnesses.
pub type Matrix<F> = Vec<Vec<(F, usize)>>;

/// Writes each constraint straight into matrix rows and keeps no linear combinations: the lean
/// way to get the matrices a prover needs. Inputs must all be allocated before the first witness
/// (the batch circuit does), so witness columns are final when a row is written.
#[derive(Debug, Default)]
pub struct MatrixBackend<F> {
    inputs: usize,
    witnesses: usize,
    input_after_witness: bool,
    rows: [Matrix<F>; 3],
}

impl<F: PrimeField> MatrixBackend<F> {
    fn row(&self, lc: &Lc<F>) -> Vec<(F, usize)> {
        let (constant, terms) = lc.parts();
        let mut row = Vec::with_capacity(terms.len() + 1);
        if !constant.is_zero() {
            row.push((constant, 0));
        }
        row.extend(terms.iter().map(|(v, k)| {
            let column = match v {
                Var::Input(i) => 1 + *i as usize,
                Var::Witness(i) => 1 + self.inputs + *i as usize,
            };
            (*k, column)
        }));
        row
    }

    /// `[A, B, C]`, or `None` if an input was allocated after a witness.
    pub fn into_matrices(self) -> Option<[Matrix<F>; 3]> {
        (!self.input_after_witness).then_some(self.rows)
    }
}

impl<F: PrimeField> Backend<F> for MatrixBackend<F> {
    fn input(&mut self, value: F) -> Lc<F> {
        self.input_after_witness |= self.witnesses > 0;
        self.inputs += 1;
        Lc::variable(Var::Input(self.inputs as u32 - 1), value)
    }

    fn witness(&mut self, value: F) -> Lc<F> {
        self.witnesses += 1;
        Lc::variable(Var::Witness(self.witnesses as u32 - 1), value)
    }

    fn enforce(&mut self, a: &Lc<F>, b: &Lc<F>, c: &Lc<F>, _label: &'static str) {
        let rows = [self.row(a), self.row(b), self.row(c)];
        for (matrix, row) in self.rows.iter_mut().zip(rows) {
            matrix.push(row);
        }
    }
}
