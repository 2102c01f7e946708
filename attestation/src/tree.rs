//! The shape of the 8-ary liabilities tree and its native construction and path checking
//! (spec §5). Batches occupy aligned subtrees; the verifier itself computes every node above the
//! batch roots, so every reachable leaf lies under a proven batch.

use std::sync::OnceLock;

use ark_bls12_381::Fr;
use ark_ff::Zero;

use crate::commitment::node;

/// Children per node.
pub const ARITY: usize = 8;
/// Largest batch size a round may declare.
pub const MAX_BATCH_SIZE: usize = 1 << 22;
/// Deepest tree accepted (8^20 leaves is far beyond any ledger).
pub const MAX_DEPTH: u32 = 20;

/// The value of an empty subtree of height `h`: 0 for an empty slot, then `node([E_{h-1}; 8])`.
pub fn empty_root(height: u32) -> Fr {
    static CACHED: OnceLock<Vec<Fr>> = OnceLock::new();
    let cached = CACHED.get_or_init(|| {
        let mut roots = vec![Fr::zero()];
        for h in 0..MAX_DEPTH as usize {
            roots.push(node(&[roots[h]; ARITY]));
        }
        roots
    });
    match cached.get(height as usize) {
        Some(root) => *root,
        // The cache holds heights 0..=MAX_DEPTH, so index MAX_DEPTH exists; qed.
        None => (MAX_DEPTH..height).fold(cached[MAX_DEPTH as usize], |value, _| node(&[value; ARITY])),
    }
}

/// Smallest `d` with `8^d >= n` (0 for `n <= 1`).
pub fn depth_for(n: u64) -> u32 {
    let mut depth = 0;
    let mut capacity: u64 = 1;
    while capacity < n {
        capacity = capacity.saturating_mul(ARITY as u64);
        depth += 1;
    }
    depth
}

/// Where a round's leaves sit: batch `i`'s `batch_size` slots start at position `i * 8^d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TreeShape {
    /// Account slots per batch (B).
    pub batch_size: u64,
    /// Number of batches (N).
    pub batch_count: u64,
    /// Height of each batch's subtree (d, with 8^d >= B).
    pub batch_depth: u32,
    /// Height of the tree above the batch roots (e, with 8^e >= N).
    pub top_depth: u32,
}

impl TreeShape {
    /// The shape for `leaf_count` accounts in batches of `batch_size`; `None` if either is zero
    /// or the tree would be unreasonably deep.
    pub fn new(batch_size: u64, leaf_count: u64) -> Option<Self> {
        if batch_size == 0 || batch_size > MAX_BATCH_SIZE as u64 || leaf_count == 0 {
            return None;
        }
        let batch_count = leaf_count.div_ceil(batch_size);
        let shape =
            Self { batch_size, batch_count, batch_depth: depth_for(batch_size), top_depth: depth_for(batch_count) };
        (shape.depth() <= MAX_DEPTH).then_some(shape)
    }

    /// Levels from a leaf to the root.
    pub fn depth(&self) -> u32 {
        self.batch_depth + self.top_depth
    }

    /// The subtree of one batch over its `batch_size` leaves (slots beyond them are empty).
    pub fn build_batch(&self, leaves: Vec<Fr>) -> Levels {
        Levels::build(leaves, 0, self.batch_depth)
    }

    /// The tree above the batch roots; its missing batches are empty subtrees of the batch height.
    pub fn build_top(&self, batch_roots: Vec<Fr>) -> Levels {
        Levels::build(batch_roots, self.batch_depth, self.top_depth)
    }

    /// Tree position of the account at `leaf_index` (its index in the round's leaf order).
    pub fn position(&self, leaf_index: u64) -> u64 {
        let capacity = (ARITY as u64).pow(self.batch_depth);
        (leaf_index / self.batch_size) * capacity + leaf_index % self.batch_size
    }
}

/// Every level of a subtree built over `nodes`, padded on the right with empty subtrees.
#[derive(Clone, Debug)]
pub struct Levels {
    levels: Vec<Vec<Fr>>,
    /// Height in the whole tree of the bottom level (0 for leaves), which fixes the padding.
    base_height: u32,
}

impl Levels {
    /// Builds `height` levels above `nodes`, which sit at `base_height` in the whole tree and
    /// must number at most `8^height`. Missing nodes at height `h` are `empty_root(h)`.
    pub fn build(nodes: Vec<Fr>, base_height: u32, height: u32) -> Self {
        debug_assert!((nodes.len() as u64) <= (ARITY as u64).saturating_pow(height));
        let mut levels = vec![nodes];
        for h in base_height..base_height + height {
            let Some(below) = levels.last() else { unreachable!("levels starts non-empty; qed.") };
            let empty = empty_root(h);
            let above = below
                .chunks(ARITY)
                .map(|chunk| {
                    let mut children = [empty; ARITY];
                    children[..chunk.len()].copy_from_slice(chunk);
                    node(&children)
                })
                .collect::<Vec<_>>();
            let above = if above.is_empty() { vec![empty_root(h + 1)] } else { above };
            levels.push(above);
        }
        Self { levels, base_height }
    }

    /// The subtree's root.
    pub fn root(&self) -> Fr {
        let top = self.base_height + self.levels.len() as u32 - 1;
        self.levels.last().and_then(|l| l.first()).copied().unwrap_or_else(|| empty_root(top))
    }

    /// The leaves it was built over.
    pub fn leaves(&self) -> &[Fr] {
        self.levels.first().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The seven siblings at each level on the way up from `index`, bottom first.
    pub fn path(&self, mut index: usize) -> Vec<[Fr; ARITY - 1]> {
        let mut path = Vec::with_capacity(self.levels.len().saturating_sub(1));
        for (h, level) in self.levels.iter().take(self.levels.len().saturating_sub(1)).enumerate() {
            let empty = empty_root(self.base_height + h as u32);
            let first = index - index % ARITY;
            let mut siblings = [empty; ARITY - 1];
            let mut k = 0;
            for slot in first..first + ARITY {
                if slot != index {
                    siblings[k] = level.get(slot).copied().unwrap_or(empty);
                    k += 1;
                }
            }
            path.push(siblings);
            index /= ARITY;
        }
        path
    }
}

/// Recomputes the root from a leaf at `position` and its siblings, bottom first.
pub fn root_from_path(leaf: Fr, mut position: u64, path: &[[Fr; ARITY - 1]]) -> Fr {
    let mut current = leaf;
    for siblings in path {
        let slot = (position % ARITY as u64) as usize;
        let mut children = [Fr::zero(); ARITY];
        let (before, after) = siblings.split_at(slot);
        children[..slot].copy_from_slice(before);
        children[slot] = current;
        children[slot + 1..].copy_from_slice(after);
        current = node(&children);
        position /= ARITY as u64;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_roots_beyond_the_cache_continue_the_recursion() {
        assert_eq!(empty_root(0), Fr::zero());
        assert_eq!(empty_root(1), node(&[Fr::zero(); ARITY]));
        assert_eq!(empty_root(MAX_DEPTH + 1), node(&[empty_root(MAX_DEPTH); ARITY]));
    }

    #[test]
    fn depths() {
        assert_eq!(depth_for(0), 0);
        assert_eq!(depth_for(1), 0);
        assert_eq!(depth_for(2), 1);
        assert_eq!(depth_for(8), 1);
        assert_eq!(depth_for(9), 2);
        assert_eq!(depth_for(4096), 4);
        assert_eq!(depth_for(4097), 5);
    }

    #[test]
    fn positions_skip_unused_batch_slots() {
        let shape = TreeShape::new(10, 25).unwrap();
        assert_eq!((shape.batch_count, shape.batch_depth, shape.top_depth), (3, 2, 1));
        assert_eq!(shape.position(9), 9);
        assert_eq!(shape.position(10), 64);
        assert_eq!(shape.position(24), 128 + 4);
        assert!(TreeShape::new(0, 1).is_none());
        assert!(TreeShape::new(1, 0).is_none());
    }

    #[test]
    fn every_path_leads_to_the_root() {
        for n in [1usize, 2, 7, 8, 9, 63, 64, 65, 100] {
            let leaves: Vec<Fr> = (0..n as u64).map(|i| Fr::from(i + 1)).collect();
            let height = depth_for(n as u64);
            let levels = Levels::build(leaves.clone(), 0, height);
            for (i, leaf) in leaves.iter().enumerate() {
                let path = levels.path(i);
                assert_eq!(path.len(), height as usize);
                assert_eq!(root_from_path(*leaf, i as u64, &path), levels.root(), "n={n} i={i}");
            }
        }
    }

    #[test]
    fn empty_subtrees_agree_with_padding() {
        let levels = Levels::build(vec![], 0, 2);
        assert_eq!(levels.root(), empty_root(2));
        let one = Levels::build(vec![Fr::zero()], 0, 2);
        assert_eq!(one.root(), empty_root(2));
    }

    #[test]
    fn the_top_tree_pads_with_empty_batch_subtrees() {
        // Two batches of height 1 under a top of height 1: six missing batches are E_1.
        let shape = TreeShape::new(8, 9).unwrap();
        let roots = vec![Fr::from(1u64), Fr::from(2u64)];
        let mut children = [empty_root(1); ARITY];
        children[..2].copy_from_slice(&roots);
        assert_eq!(shape.build_top(roots.clone()).root(), node(&children));
        // And a whole tree built from the leaves agrees with batch subtrees plus the top.
        let leaves: Vec<Fr> = (1..=9u64).map(Fr::from).collect();
        let batch0 = shape.build_batch(leaves[..8].to_vec());
        let batch1 = shape.build_batch(leaves[8..].to_vec());
        let whole = Levels::build(leaves.clone(), 0, 2);
        assert_eq!(shape.build_top(vec![batch0.root(), batch1.root()]).root(), whole.root());
        let mut path = batch1.path(0);
        path.extend(shape.build_top(vec![batch0.root(), batch1.root()]).path(1));
        assert_eq!(path, whole.path(8));
    }
}
