//! RFC 6962 Merkle trees: leaf = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right).
//!
//! Everything here works on the hashes of complete, aligned subtrees, named by
//! `(height, index)`: the subtree of `2^height` leaves starting at leaf `index << height`.
//! Callers supply those hashes (from tiles in storage, or from memory), so the same code
//! computes roots and proofs at any tree size.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The complete subtrees, left to right, that make up `n` leaves from `start` (a range of
/// the shape RFC 6962's recursion produces: `start` is aligned to every subtree in it).
pub fn decompose(start: u64, n: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut pos = start;
    for height in (0..64u32).rev() {
        let size = 1u64 << height;
        if n & size != 0 {
            out.push((height, pos >> height));
            pos += size;
        }
    }
    out
}

/// MTH of the `n ≥ 1` leaves from `start`: the right fold of its complete subtrees.
pub fn range_root<F: FnMut(u32, u64) -> Hash + ?Sized>(start: u64, n: u64, subtree: &mut F) -> Hash {
    let parts = decompose(start, n);
    let mut iter = parts.iter().rev();
    let Some(&(h, i)) = iter.next() else { return empty_root() };
    let mut acc = subtree(h, i);
    for &(h, i) in iter {
        acc = node_hash(&subtree(h, i), &acc);
    }
    acc
}

/// The root of a tree of `n` leaves.
pub fn root<F: FnMut(u32, u64) -> Hash + ?Sized>(n: u64, subtree: &mut F) -> Hash {
    if n == 0 { empty_root() } else { range_root(0, n, subtree) }
}

/// RFC 6962 §2.1.1 PATH(index, D[n]): the audit path of leaf `index` in a tree of `n`.
pub fn inclusion_proof<F: FnMut(u32, u64) -> Hash + ?Sized>(index: u64, n: u64, subtree: &mut F) -> Option<Vec<Hash>> {
    if index >= n {
        return None;
    }
    let mut out = Vec::new();
    path(index, 0, n, subtree, &mut out);
    Some(out)
}

fn path<F: FnMut(u32, u64) -> Hash + ?Sized>(m: u64, start: u64, n: u64, f: &mut F, out: &mut Vec<Hash>) {
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, start, k, f, out);
        out.push(range_root(start + k, n - k, f));
    } else {
        path(m - k, start + k, n - k, f, out);
        out.push(range_root(start, k, f));
    }
}

/// RFC 6962 §2.1.2 PROOF(m, D[n]): proves that the tree of `m` leaves is a prefix of the
/// tree of `n`. Empty for `m == n`; None for `m == 0` or `m > n`.
pub fn consistency_proof<F: FnMut(u32, u64) -> Hash + ?Sized>(m: u64, n: u64, subtree: &mut F) -> Option<Vec<Hash>> {
    if m == 0 || m > n {
        return None;
    }
    let mut out = Vec::new();
    if m < n {
        subproof(m, 0, n, true, subtree, &mut out);
    }
    Some(out)
}

fn subproof<F: FnMut(u32, u64) -> Hash + ?Sized>(
    m: u64,
    start: u64,
    n: u64,
    whole: bool,
    f: &mut F,
    out: &mut Vec<Hash>,
) {
    if m == n {
        if !whole {
            out.push(range_root(start, n, f));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, start, k, whole, f, out);
        out.push(range_root(start + k, n - k, f));
    } else {
        subproof(m - k, start + k, n - k, false, f, out);
        out.push(range_root(start, k, f));
    }
}

/// The subtrees a computation will ask for, found by running it with a recording source.
pub fn subtrees_needed(run: impl FnOnce(&mut dyn FnMut(u32, u64) -> Hash)) -> Vec<(u32, u64)> {
    let mut needed = Vec::new();
    let mut record = |h: u32, i: u64| {
        needed.push((h, i));
        [0u8; 32]
    };
    run(&mut record);
    needed.sort_unstable();
    needed.dedup();
    needed
}

/// RFC 9162 §2.1.3.2: verifies that `leaf` is entry `index` of the tree of `n` with `root`.
pub fn verify_inclusion(index: u64, n: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= n {
        return false;
    }
    let (mut fnode, mut snode) = (index, n - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: verifies that the tree of `m` with `old_root` is a prefix of the tree
/// of `n` with `new_root`.
pub fn verify_consistency(m: u64, n: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if m == 0 || m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && old_root == new_root;
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if m.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else { return false };
    let (mut fnode, mut snode) = (m - 1, n - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    fr == *old_root && sr == *new_root && snode == 0
}

/// The right edge of a tree being built leaf by leaf (a compact range from 0): enough to
/// give the root at every size without holding the tree.
#[derive(Debug, Default)]
pub struct Frontier {
    nodes: Vec<(u32, Hash)>,
    size: u64,
}

impl Frontier {
    /// Adds a leaf hash; returns the subtrees it completed as (height, index, hash).
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let idx = self.size;
        let (mut height, mut hash) = (0u32, leaf);
        let mut completed = Vec::new();
        while let Some(&(top_height, top)) = self.nodes.last() {
            if top_height != height {
                break;
            }
            self.nodes.pop();
            hash = node_hash(&top, &hash);
            height += 1;
            completed.push((height, idx >> height, hash));
        }
        self.nodes.push((height, hash));
        self.size += 1;
        completed
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, mut acc)) = iter.next() else { return empty_root() };
        for (_, h) in iter {
            acc = node_hash(h, &acc);
        }
        acc
    }
}

/// Subtree hashes over leaves held in memory: height-0 hashes are the leaves, higher ones
/// are computed (tests, the cosigner, verification of small trees).
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    pub fn new() -> MemoryTree {
        MemoryTree { levels: vec![Vec::new()] }
    }

    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a leaf hash, completing every subtree it closes.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut height = 0;
        loop {
            if self.levels.len() <= height {
                self.levels.push(Vec::new());
            }
            let Some(level) = self.levels.get_mut(height) else { return };
            level.push(carry);
            if level.len() % 2 == 1 {
                return;
            }
            let (Some(l), Some(r)) = (level.get(level.len() - 2), level.last()) else { return };
            carry = node_hash(l, r);
            height += 1;
        }
    }

    pub fn subtree(&self, height: u32, index: u64) -> Hash {
        self.levels.get(height as usize).and_then(|l| l.get(index as usize)).copied().unwrap_or([0u8; 32])
    }

    pub fn root_at(&self, n: u64) -> Hash {
        root(n, &mut |h, i| self.subtree(h, i))
    }
}

impl Default for MemoryTree {
    fn default() -> Self {
        MemoryTree::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // --- an independent reference: RFC 6962 §2.1 on slices, recomputing from scratch ----

    fn mth(d: &[Vec<u8>]) -> Hash {
        match d.len() {
            0 => Sha256::digest([]).into(),
            1 => {
                let mut v = vec![0u8];
                v.extend_from_slice(&d[0]);
                Sha256::digest(&v).into()
            }
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                let mut v = vec![1u8];
                v.extend_from_slice(&mth(&d[..k]));
                v.extend_from_slice(&mth(&d[k..]));
                Sha256::digest(&v).into()
            }
        }
    }

    fn ref_path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
        let n = d.len();
        if n <= 1 {
            return vec![];
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        if m < k {
            let mut p = ref_path(m, &d[..k]);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = ref_path(m - k, &d[k..]);
            p.push(mth(&d[..k]));
            p
        }
    }

    fn ref_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![mth(d)] };
        }
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        if m <= k {
            let mut p = ref_subproof(m, &d[..k], b);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = ref_subproof(m - k, &d[k..], false);
            p.push(mth(&d[..k]));
            p
        }
    }

    fn tree_of(entries: &[Vec<u8>]) -> MemoryTree {
        let mut t = MemoryTree::new();
        for e in entries {
            t.push(leaf_hash(e));
        }
        t
    }

    fn hex32(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    /// The RFC 6962 test leaves used by Certificate Transparency implementations.
    fn rfc_leaves() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    #[test]
    fn known_answers() {
        assert_eq!(empty_root(), hex32("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let leaves = rfc_leaves();
        let t = tree_of(&leaves);
        for (i, r) in roots.iter().enumerate() {
            let n = i + 1;
            assert_eq!(t.root_at(n as u64), hex32(r), "size {n}");
            assert_eq!(mth(&leaves[..n]), hex32(r), "reference, size {n}");
        }
        assert_eq!(t.root_at(0), empty_root());
    }

    #[test]
    fn proofs_match_the_reference_for_every_small_tree() {
        let entries: Vec<Vec<u8>> = (0..70u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let t = tree_of(&entries);
        let mut f = |h: u32, i: u64| t.subtree(h, i);
        for n in 1..=entries.len() {
            let root = t.root_at(n as u64);
            assert_eq!(root, mth(&entries[..n]));
            for m in 0..n {
                let proof = inclusion_proof(m as u64, n as u64, &mut f).unwrap();
                assert_eq!(proof, ref_path(m, &entries[..n]), "path {m} of {n}");
                assert!(verify_inclusion(m as u64, n as u64, &leaf_hash(&entries[m]), &proof, &root));
            }
            for m in 1..=n {
                let proof = consistency_proof(m as u64, n as u64, &mut f).unwrap();
                assert_eq!(proof, ref_subproof(m, &entries[..n], true), "consistency {m}→{n}");
                assert!(verify_consistency(m as u64, n as u64, &t.root_at(m as u64), &root, &proof), "{m}→{n}");
            }
        }
        assert!(inclusion_proof(5, 5, &mut f).is_none());
        assert!(consistency_proof(0, 5, &mut f).is_none());
        assert!(consistency_proof(6, 5, &mut f).is_none());
    }

    #[test]
    fn subtrees_needed_lists_what_a_proof_reads() {
        let entries: Vec<Vec<u8>> = (0..1000u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let t = tree_of(&entries);
        let needed = subtrees_needed(|f| {
            inclusion_proof(700, 1000, f);
        });
        assert!(needed.len() <= 20, "{needed:?}");
        let mut only = |h: u32, i: u64| {
            assert!(needed.binary_search(&(h, i)).is_ok(), "unplanned read {h}/{i}");
            t.subtree(h, i)
        };
        let proof = inclusion_proof(700, 1000, &mut only).unwrap();
        assert!(verify_inclusion(700, 1000, &leaf_hash(&entries[700]), &proof, &t.root_at(1000)));
    }

    #[test]
    fn frontier_roots_and_completed_subtrees_match_the_tree() {
        let entries: Vec<Vec<u8>> = (0..600u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let t = tree_of(&entries);
        let mut f = Frontier::default();
        assert_eq!(f.root(), empty_root());
        for (n, e) in entries.iter().enumerate() {
            for (h, i, hash) in f.push(leaf_hash(e)) {
                assert_eq!(hash, t.subtree(h, i), "subtree {h}/{i}");
            }
            assert_eq!(f.root(), t.root_at(n as u64 + 1), "size {}", n + 1);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_proof_verifies_and_every_flipped_byte_fails(
            n in 1u64..600, m_seed in any::<u64>(), i_seed in any::<u64>(), byte in 0usize..32, bit in 0u8..8,
        ) {
            let entries: Vec<Vec<u8>> = (0..n).map(|i| format!("entry {i}").into_bytes()).collect();
            let t = tree_of(&entries);
            let mut f = |h: u32, i: u64| t.subtree(h, i);
            let root = t.root_at(n);
            let i = i_seed % n;
            let leaf = leaf_hash(&entries[i as usize]);
            let proof = inclusion_proof(i, n, &mut f).unwrap();
            prop_assert!(verify_inclusion(i, n, &leaf, &proof, &root));
            let mask = 1u8 << bit;
            // A changed entry, root or proof hash fails.
            let mut bad_leaf = leaf; bad_leaf[byte] ^= mask;
            prop_assert!(!verify_inclusion(i, n, &bad_leaf, &proof, &root));
            let mut bad_root = root; bad_root[byte] ^= mask;
            prop_assert!(!verify_inclusion(i, n, &leaf, &proof, &bad_root));
            if let Some(first) = proof.first() {
                let mut bad = proof.clone(); let mut h = *first; h[byte] ^= mask; bad[0] = h;
                prop_assert!(!verify_inclusion(i, n, &leaf, &bad, &root));
            }
            // Claiming another position for the same leaf fails.
            if n > 1 {
                let other = (i + 1) % n;
                prop_assert!(!verify_inclusion(other, n, &leaf, &proof, &root));
            }

            let m = 1 + m_seed % n;
            let old = t.root_at(m);
            let cproof = consistency_proof(m, n, &mut f).unwrap();
            prop_assert!(verify_consistency(m, n, &old, &root, &cproof));
            let mut bad_old = old; bad_old[byte] ^= mask;
            prop_assert!(!verify_consistency(m, n, &bad_old, &root, &cproof));
            if m < n {
                let mut bad_new = root; bad_new[byte] ^= mask;
                prop_assert!(!verify_consistency(m, n, &old, &bad_new, &cproof));
                let mut bad = cproof.clone(); bad[0][byte] ^= mask;
                prop_assert!(!verify_consistency(m, n, &old, &root, &bad));
            }
        }
    }
}
