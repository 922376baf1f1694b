//! Optimal assignment as supervision 0.22 does it: `scipy.optimize.linear_sum_assignment`
//! (a shortest-augmenting-path Jonker-Volgenant, Crouse 2016) behind
//! `matching.linear_assignment`, which clips costs above the threshold and drops matches
//! over it.
//!
//! Tie-breaking decides which tracks get which ids when costs are equal (and clipped costs
//! are all equal), so this is a line-by-line port of scipy's `rectangular_lsap.cpp`, not
//! just any optimal solver. The unmatched indices come back in CPython's set iteration
//! order, which is not always ascending: see [`py_set_difference_order`].

/// Reusable buffers for [`linear_sum_assignment_into`].
#[derive(Debug, Default, Clone)]
pub struct LsaWorkspace {
    cost_t: Vec<f64>,
    u: Vec<f64>,
    v: Vec<f64>,
    shortest: Vec<f64>,
    path: Vec<usize>,
    col4row: Vec<usize>,
    row4col: Vec<usize>,
    sr: Vec<bool>,
    sc: Vec<bool>,
    remaining: Vec<usize>,
}

const NONE: usize = usize::MAX;

/// `scipy.optimize.linear_sum_assignment(cost)` for a row-major `rows x cols` matrix of
/// finite costs: `(row, col)` pairs with rows ascending, `min(rows, cols)` of them.
pub fn linear_sum_assignment(cost: &[f64], rows: usize, cols: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    linear_sum_assignment_into(cost, rows, cols, &mut LsaWorkspace::default(), &mut out);
    out
}

/// [`linear_sum_assignment`] with caller-owned buffers.
pub fn linear_sum_assignment_into(
    cost: &[f64],
    rows: usize,
    cols: usize,
    ws: &mut LsaWorkspace,
    out: &mut Vec<(usize, usize)>,
) {
    assert_eq!(cost.len(), rows * cols, "cost matrix size");
    out.clear();
    if rows == 0 || cols == 0 {
        return;
    }
    // scipy transposes tall matrices so that there are never more rows than columns.
    let transpose = cols < rows;
    let (nr, nc) = if transpose {
        (cols, rows)
    } else {
        (rows, cols)
    };
    // Taken out of the workspace while in use so the solver can borrow the rest.
    let mut cost_t = std::mem::take(&mut ws.cost_t);
    let c: &[f64] = if transpose {
        cost_t.clear();
        cost_t.resize(rows * cols, 0.0);
        for i in 0..rows {
            for j in 0..cols {
                cost_t[j * rows + i] = cost[i * cols + j];
            }
        }
        &cost_t
    } else {
        cost
    };
    debug_assert!(c.iter().all(|x| x.is_finite()), "costs must be finite");

    reset(&mut ws.u, nr, 0.0);
    reset(&mut ws.v, nc, 0.0);
    reset(&mut ws.shortest, nc, f64::INFINITY);
    reset(&mut ws.path, nc, NONE);
    reset(&mut ws.col4row, nr, NONE);
    reset(&mut ws.row4col, nc, NONE);
    reset(&mut ws.sr, nr, false);
    reset(&mut ws.sc, nc, false);
    reset(&mut ws.remaining, nc, 0);

    for cur_row in 0..nr {
        let (sink, min_val) = augmenting_path(nc, c, ws, cur_row);

        // Update the dual variables.
        ws.u[cur_row] += min_val;
        for i in 0..nr {
            if ws.sr[i] && i != cur_row {
                ws.u[i] += min_val - ws.shortest[ws.col4row[i]];
            }
        }
        for j in 0..nc {
            if ws.sc[j] {
                ws.v[j] -= min_val - ws.shortest[j];
            }
        }

        // Augment the previous solution along the path.
        let mut j = sink;
        loop {
            let i = ws.path[j];
            ws.row4col[j] = i;
            std::mem::swap(&mut ws.col4row[i], &mut j);
            if i == cur_row {
                break;
            }
        }
    }

    ws.cost_t = cost_t;
    if transpose {
        // Rows of the original are the columns here: report them sorted.
        out.extend((0..nr).map(|i| (ws.col4row[i], i)));
        out.sort_unstable_by_key(|&(r, _)| r);
    } else {
        out.extend((0..nr).map(|i| (i, ws.col4row[i])));
    }
}

fn reset<T: Clone>(v: &mut Vec<T>, n: usize, x: T) {
    v.clear();
    v.resize(n, x);
}

/// One shortest augmenting path from `i`; returns the sink column and the path cost.
fn augmenting_path(nc: usize, cost: &[f64], ws: &mut LsaWorkspace, mut i: usize) -> (usize, f64) {
    let mut min_val = 0.0f64;
    // Filled in reverse so that a constant matrix gives the identity (scipy #11602).
    let mut num_remaining = nc;
    for it in 0..nc {
        ws.remaining[it] = nc - it - 1;
    }
    ws.sr.fill(false);
    ws.sc.fill(false);
    ws.shortest.fill(f64::INFINITY);

    loop {
        let mut index = NONE;
        let mut lowest = f64::INFINITY;
        ws.sr[i] = true;
        for it in 0..num_remaining {
            let j = ws.remaining[it];
            // Same association as the C++: ((minVal + cost) - u[i]) - v[j].
            let r = min_val + cost[i * nc + j] - ws.u[i] - ws.v[j];
            if r < ws.shortest[j] {
                ws.path[j] = i;
                ws.shortest[j] = r;
            }
            // Among equal costs prefer a free column (a sink).
            if ws.shortest[j] < lowest || (ws.shortest[j] == lowest && ws.row4col[j] == NONE) {
                lowest = ws.shortest[j];
                index = it;
            }
        }
        min_val = lowest;
        // Finite costs keep every matrix feasible.
        assert!(
            min_val.is_finite() && index != NONE,
            "infeasible cost matrix"
        );

        let j = ws.remaining[index];
        ws.sc[j] = true;
        num_remaining -= 1;
        ws.remaining[index] = ws.remaining[num_remaining];
        if ws.row4col[j] == NONE {
            return (j, min_val);
        }
        i = ws.row4col[j];
    }
}

/// What `matching.linear_assignment` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// `(row, col)` pairs at or under the threshold, rows ascending.
    pub matches: Vec<(usize, usize)>,
    /// Unmatched rows, in Python set order.
    pub unmatched_rows: Vec<usize>,
    /// Unmatched columns, in Python set order.
    pub unmatched_cols: Vec<usize>,
}

/// supervision's `matching.linear_assignment(cost_matrix, thresh)` on a float64 matrix.
///
/// Costs above `thresh` are clipped to `thresh + 1e-4` (in place, as supervision does)
/// before solving, and pairs with a cost above `thresh` are dropped afterwards.
pub fn linear_assignment(cost: &mut [f64], rows: usize, cols: usize, thresh: f64) -> Assignment {
    let mut out = Assignment::default();
    linear_assignment_into(
        cost,
        rows,
        cols,
        thresh,
        &mut LsaWorkspace::default(),
        &mut out,
    );
    out
}

/// [`linear_assignment`] with caller-owned buffers.
pub fn linear_assignment_into(
    cost: &mut [f64],
    rows: usize,
    cols: usize,
    thresh: f64,
    ws: &mut LsaWorkspace,
    out: &mut Assignment,
) {
    out.matches.clear();
    out.unmatched_rows.clear();
    out.unmatched_cols.clear();
    if rows == 0 || cols == 0 {
        // supervision returns `tuple(range(n))` here: ascending.
        out.unmatched_rows.extend(0..rows);
        out.unmatched_cols.extend(0..cols);
        return;
    }
    let clipped = thresh + 1e-4;
    for c in cost.iter_mut() {
        if *c > thresh {
            *c = clipped;
        }
    }
    let mut pairs = std::mem::take(&mut out.matches);
    linear_sum_assignment_into(cost, rows, cols, ws, &mut pairs);
    pairs.retain(|&(r, c)| cost[r * cols + c] <= thresh);
    out.matches = pairs;

    let mut matched = std::mem::take(&mut ws.sr);
    py_set_difference_order(
        rows,
        out.matches.iter().map(|m| m.0),
        &mut matched,
        &mut out.unmatched_rows,
    );
    py_set_difference_order(
        cols,
        out.matches.iter().map(|m| m.1),
        &mut matched,
        &mut out.unmatched_cols,
    );
    ws.sr = matched;
}

/// The iteration order of `tuple(set(range(n)) - set(matched))` in CPython 3.
///
/// Small ints hash to themselves, so `set(range(n))` iterates ascending. The difference
/// either copies that set and discards (ascending order kept) when
/// `len(a) >> 2 > len(b)`, or inserts the survivors one by one into a fresh set, whose
/// 8-slot table and growth make e.g. `{3, 9}` iterate as `(9, 3)`. Checked against
/// CPython 3.11 on 200k random cases.
pub fn py_set_difference_order(
    n: usize,
    matched: impl Iterator<Item = usize>,
    scratch: &mut Vec<bool>,
    out: &mut Vec<usize>,
) {
    out.clear();
    scratch.clear();
    scratch.resize(n, false);
    let mut n_matched = 0;
    for m in matched {
        if !scratch[m] {
            scratch[m] = true;
            n_matched += 1;
        }
    }
    let survivors = (0..n).filter(|&i| !scratch[i]);
    if (n >> 2) > n_matched {
        out.extend(survivors);
        return;
    }
    let mut set = PySmallIntSet::new();
    for i in survivors {
        set.add(i);
    }
    out.extend(set.table.iter().filter_map(|&k| (k != EMPTY).then_some(k)));
}

const EMPTY: usize = usize::MAX;
const LINEAR_PROBES: usize = 9;
const PERTURB_SHIFT: u32 = 5;

/// Just enough of CPython's `setobject.c` (insertions of distinct non-negative ints, whose
/// hash is the int itself) to reproduce the table layout and hence iteration order.
struct PySmallIntSet {
    table: Vec<usize>,
    fill: usize,
}

impl PySmallIntSet {
    fn new() -> Self {
        PySmallIntSet {
            table: vec![EMPTY; 8],
            fill: 0,
        }
    }

    fn add(&mut self, key: usize) {
        let mask = self.table.len() - 1;
        let mut i = key & mask;
        let mut perturb = key;
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for e in i..=i + probes {
                if self.table[e] == EMPTY {
                    self.table[e] = key;
                    self.fill += 1;
                    if self.fill * 5 >= mask * 3 {
                        self.resize(self.fill * 4);
                    }
                    return;
                }
                debug_assert_ne!(self.table[e], key, "keys are distinct");
            }
            perturb >>= PERTURB_SHIFT;
            i = (i * 5 + 1 + perturb) & mask;
        }
    }

    fn resize(&mut self, minused: usize) {
        let mut size = 8;
        while size <= minused {
            size <<= 1;
        }
        let old = std::mem::replace(&mut self.table, vec![EMPTY; size]);
        let mask = size - 1;
        for key in old.into_iter().filter(|&k| k != EMPTY) {
            // set_insert_clean: first empty slot along the same probe sequence.
            let mut i = key & mask;
            let mut perturb = key;
            'probe: loop {
                let probes = if i + LINEAR_PROBES <= mask {
                    LINEAR_PROBES
                } else {
                    0
                };
                for e in i..=i + probes {
                    if self.table[e] == EMPTY {
                        self.table[e] = key;
                        break 'probe;
                    }
                }
                perturb >>= PERTURB_SHIFT;
                i = (i * 5 + 1 + perturb) & mask;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsa(rows: usize, cols: usize, c: &[f64]) -> Vec<(usize, usize)> {
        linear_sum_assignment(c, rows, cols)
    }

    #[test]
    fn scipy_docstring_example() {
        let c = [4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 3.0, 2.0, 2.0];
        assert_eq!(lsa(3, 3, &c), [(0, 1), (1, 0), (2, 2)]);
    }

    #[test]
    fn empty_matrices() {
        assert!(lsa(0, 3, &[]).is_empty());
        assert!(lsa(3, 0, &[]).is_empty());
        let a = linear_assignment(&mut [], 2, 0, 0.8);
        assert_eq!(a.unmatched_rows, [0, 1]);
        assert!(a.unmatched_cols.is_empty());
    }

    #[test]
    fn constant_matrix_gives_identity_like_scipy() {
        // scipy fills `remaining` in reverse so a constant matrix yields the diagonal.
        assert_eq!(lsa(3, 3, &[1.0; 9]), [(0, 0), (1, 1), (2, 2)]);
        // Wide and tall: scipy's answers for all-equal costs.
        assert_eq!(lsa(2, 4, &[0.5; 8]), [(0, 0), (1, 1)]);
        assert_eq!(lsa(4, 2, &[0.5; 8]), [(0, 0), (1, 1)]);
    }

    #[test]
    fn rectangular_and_ties_match_scipy() {
        // Values checked with scipy 1.17's linear_sum_assignment.
        let wide = [0.9, 0.1, 0.9, 0.9, 0.1, 0.9, 0.2, 0.9, 0.9, 0.9, 0.9, 0.3];
        assert_eq!(lsa(3, 4, &wide), [(0, 1), (1, 0), (2, 3)]);
        let tall = [0.9, 0.1, 0.1, 0.9, 0.2, 0.2, 0.9, 0.9];
        assert_eq!(lsa(4, 2, &tall), [(0, 1), (1, 0)]);
        let ties = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0];
        assert_eq!(lsa(3, 3, &ties), [(0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn threshold_clips_and_filters() {
        // Row 1's only option is over the threshold: optimal on the clipped matrix, then
        // dropped.
        let mut c = [0.1, 0.95, 0.99, 0.97];
        let a = linear_assignment(&mut c, 2, 2, 0.8);
        assert_eq!(a.matches, [(0, 0)]);
        assert_eq!(a.unmatched_rows, [1]);
        assert_eq!(a.unmatched_cols, [1]);
        assert_eq!(c, [0.1, 0.8001, 0.8001, 0.8001]);
        // A cost exactly at the threshold is a match.
        let a = linear_assignment(&mut [0.5], 1, 1, 0.5);
        assert_eq!(a.matches, [(0, 0)]);
    }

    #[test]
    fn set_order_is_cpythons() {
        let mut scratch = Vec::new();
        let mut out = Vec::new();
        let mut order = |n: usize, matched: &[usize]| {
            py_set_difference_order(n, matched.iter().copied(), &mut scratch, &mut out);
            out.clone()
        };
        // Copy-and-discard path: ascending.
        assert_eq!(order(10, &[1]), [0, 2, 3, 4, 5, 6, 7, 8, 9]);
        // Fresh-set path: values past the 8-slot table wrap around.
        assert_eq!(order(10, &[0, 1, 2, 4, 6, 7, 8, 3]), [9, 5]);
        assert_eq!(order(12, &[0, 1, 3, 4, 5, 6, 7, 8, 9, 10]), [2, 11]);
        // Collisions: 0, 8 and 16 all hash to slot 0 of an 8-slot table and probe on.
        assert_eq!(
            order(17, &[1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15]),
            [0, 8, 16]
        );
        assert_eq!(order(0, &[]), Vec::<usize>::new());
    }
}
