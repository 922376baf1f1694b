//! supervision's constant-velocity Kalman filter over `(cx, cy, aspect, h)` and their
//! velocities, reproduced to the bit.
//!
//! Every matrix supervision uses keeps the four coordinates independent: the motion and
//! observation models are per-coordinate and the initial covariance is diagonal, so the
//! 8x8 covariance is always four 2x2 blocks `(position_d, velocity_d)` with exact zeros
//! elsewhere. We store only those blocks and write out numpy's arithmetic per element, in
//! numpy's order of operations, so the results equal numpy's float64 results exactly
//! (the dot products reduce to one or two non-zero terms, so summation order is moot).
//!
//! numpy dtypes matter too: a freshly initiated track has a float32 mean (the measurement
//! comes from float32 boxes), and numpy then computes some noise terms in float32
//! (NEP 50: `python_float * float32` stays float32). `mean_is_f32` tracks that.

/// `1 / 20`, supervision's `_std_weight_position`.
const STD_WEIGHT_POSITION: f64 = 1.0 / 20.0;
/// `1 / 160`, supervision's `_std_weight_velocity`.
const STD_WEIGHT_VELOCITY: f64 = 1.0 / 160.0;

/// Index of the blocks: `[pp, pv, vp, vv]` = cov[d][d], cov[d][d+4], cov[d+4][d], cov[d+4][d+4].
const PP: usize = 0;
const PV: usize = 1;
const VP: usize = 2;
const VV: usize = 3;

/// A track's state distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KalmanState {
    /// `[cx, cy, aspect, h, vcx, vcy, vaspect, vh]`.
    pub mean: [f64; 8],
    /// Per coordinate d: `[P[d][d], P[d][d+4], P[d+4][d], P[d+4][d+4]]`.
    pub cov: [[f64; 4]; 4],
    /// The mean is a float32 array in numpy (initiated, never predicted or updated).
    pub mean_is_f32: bool,
}

impl KalmanState {
    /// `KalmanFilter.initiate` for a float32 `(cx, cy, a, h)` measurement.
    pub fn initiate(z: [f32; 4]) -> Self {
        let h = z[3];
        // `2 * w * measurement[3]` multiplies a Python float by a float32: float32 result.
        let sp = (((2.0 * STD_WEIGHT_POSITION) as f32) * h) as f64;
        let sv = (((10.0 * STD_WEIGHT_VELOCITY) as f32) * h) as f64;
        // np.square of a list mixing float32 and Python floats squares in float64.
        let block = |p: f64, v: f64| [p * p, 0.0, 0.0, v * v];
        let pos = block(sp, sv);
        KalmanState {
            mean: [
                z[0] as f64,
                z[1] as f64,
                z[2] as f64,
                z[3] as f64,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
            cov: [pos, pos, block(1e-2, 1e-5), pos],
            mean_is_f32: true,
        }
    }

    /// The 8x8 covariance as numpy holds it (for tests and debugging).
    pub fn covariance(&self) -> [[f64; 8]; 8] {
        let mut m = [[0.0; 8]; 8];
        for d in 0..4 {
            m[d][d] = self.cov[d][PP];
            m[d][d + 4] = self.cov[d][PV];
            m[d + 4][d] = self.cov[d][VP];
            m[d + 4][d + 4] = self.cov[d][VV];
        }
        m
    }

    /// `tlwh -> tlbr` of the mean, in the mean's dtype: `[x1, y1, x2, y2]`.
    pub fn tlbr(&self) -> [f64; 4] {
        let m = &self.mean;
        if self.mean_is_f32 {
            let (x, y, a, h) = (m[0] as f32, m[1] as f32, m[2] as f32, m[3] as f32);
            let w = a * h;
            let (x1, y1) = (x - w / 2.0, y - h / 2.0);
            [x1 as f64, y1 as f64, (x1 + w) as f64, (y1 + h) as f64]
        } else {
            let (x, y, a, h) = (m[0], m[1], m[2], m[3]);
            let w = a * h;
            let (x1, y1) = (x - w / 2.0, y - h / 2.0);
            [x1, y1, x1 + w, y1 + h]
        }
    }

    /// `KalmanFilter.update` with a float32 `(cx, cy, a, h)` measurement.
    pub fn update(&mut self, z: [f32; 4]) {
        let h = self.mean[3];
        let r_pos = if self.mean_is_f32 {
            let s = ((STD_WEIGHT_POSITION as f32) * (h as f32)) as f64;
            s * s
        } else {
            let s = STD_WEIGHT_POSITION * h;
            s * s
        };
        let r = [r_pos, r_pos, 1e-1 * 1e-1, r_pos];
        for d in 0..4 {
            let c = self.cov[d];
            // Projected covariance (diagonal) and its Cholesky factor.
            let s = c[PP] + r[d];
            // scipy's cho_solve goes through OpenBLAS trsm, which multiplies by the
            // reciprocal of the diagonal rather than dividing (checked bit-for-bit).
            let inv = 1.0 / s.sqrt();
            let kp = c[PP] * inv * inv;
            let kv = c[VP] * inv * inv;
            let innovation = z[d] as f64 - self.mean[d];
            self.mean[d] += innovation * kp;
            self.mean[d + 4] += innovation * kv;
            // multi_dot((K, S, K.T)) evaluates K @ (S @ K.T) for these shapes.
            self.cov[d] = [
                c[PP] - kp * (s * kp),
                c[PV] - kp * (s * kv),
                c[VP] - kv * (s * kp),
                c[VV] - kv * (s * kv),
            ];
        }
        self.mean_is_f32 = false;
    }

    /// One row of `STrack.multi_predict` / `KalmanFilter.multi_predict`.
    ///
    /// `not_tracked` zeroes the height velocity first, as supervision does for lost
    /// tracks. `batch_f32` says the whole batch's means were float32 (numpy stacks them
    /// into one array, float32 only if all are), which changes how the noise is rounded.
    pub fn predict(&mut self, not_tracked: bool, batch_f32: bool) {
        if not_tracked {
            self.mean[7] = 0.0;
        }
        let h = self.mean[3];
        let (q_pos, q_aspect, q_vel, q_vaspect) = if batch_f32 {
            let h = h as f32;
            let sq = |x: f32| (x * x) as f64;
            (
                sq((STD_WEIGHT_POSITION as f32) * h),
                sq((1e-2f64 as f32) * 1.0),
                sq((STD_WEIGHT_VELOCITY as f32) * h),
                sq((1e-5f64 as f32) * 1.0),
            )
        } else {
            let sq = |x: f64| x * x;
            (
                sq(STD_WEIGHT_POSITION * h),
                sq(1e-2 * 1.0),
                sq(STD_WEIGHT_VELOCITY * h),
                sq(1e-5 * 1.0),
            )
        };
        let q = [
            (q_pos, q_vel),
            (q_pos, q_vel),
            (q_aspect, q_vaspect),
            (q_pos, q_vel),
        ];
        for (d, &(qp, qv)) in q.iter().enumerate() {
            self.mean[d] += self.mean[d + 4];
            let c = self.cov[d];
            // F P F^T for one block, then + motion noise on the diagonal.
            self.cov[d] = [
                ((c[PP] + c[VP]) + (c[PV] + c[VV])) + qp,
                c[PV] + c[VV],
                c[VP] + c[VV],
                c[VV] + qv,
            ];
        }
        self.mean_is_f32 = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multi_predict(st: &mut KalmanState, not_tracked: bool) {
        let batch_f32 = st.mean_is_f32;
        st.predict(not_tracked, batch_f32);
    }

    // Reference values printed by numpy 2.4 / scipy 1.17 running supervision 0.22's
    // KalmanFilter (repr of float64, i.e. exact).

    #[test]
    fn initiate_matches_numpy() {
        let st = KalmanState::initiate([120.5, 300.25, 0.4, 80.0]);
        assert!(st.mean_is_f32);
        assert_eq!(
            st.mean,
            [120.5, 300.25, 0.4000000059604645, 80.0, 0.0, 0.0, 0.0, 0.0]
        );
        let p = st.covariance();
        let diag: Vec<f64> = (0..8).map(|i| p[i][i]).collect();
        assert_eq!(
            diag,
            [
                64.0,
                64.0,
                0.0001,
                64.0,
                25.0,
                25.0,
                1.0000000000000002e-10,
                25.0
            ]
        );
        assert_eq!(p[0][4], 0.0);
    }

    #[test]
    fn predict_update_predict_matches_numpy() {
        let mut st = KalmanState::initiate([120.5, 300.25, 0.4, 80.0]);
        // A batch of float32 means: the noise is squared in float32.
        multi_predict(&mut st, false);
        assert!(!st.mean_is_f32);
        let p = st.covariance();
        assert_eq!(
            [p[0][0], p[0][4], p[4][0], p[4][4]],
            [105.0, 25.0, 25.0, 25.25]
        );
        assert_eq!(p[2][2], 0.00020000009747378751);
        assert_eq!(p[6][6], 1.999999943962493e-10);

        st.update([123.0, 301.0, 0.41, 82.0]);
        assert_eq!(
            st.mean,
            [
                122.6694214876033,
                300.900826446281,
                0.4001960842985307,
                81.73553719008264,
                0.5165289256198348,
                0.15495867768595045,
                9.803912125190579e-11,
                0.41322314049586784
            ]
        );
        let p = st.covariance();
        assert_eq!(p[0][0], 13.884297520661164);
        assert_eq!(p[0][4], 3.3057851239669382);
        assert_eq!(p[4][0], 3.3057851239669382);
        assert_eq!(p[4][4], 20.08471074380165);
        assert_eq!(p[2][2], 0.00019607852506130967);
        assert_eq!(p[3][7], 3.3057851239669382);

        // As a lost track: vh zeroed first, float64 noise.
        multi_predict(&mut st, true);
        assert_eq!(
            st.mean,
            [
                123.18595041322314,
                301.0557851239669,
                0.40019608439656984,
                81.73553719008264,
                0.5165289256198348,
                0.15495867768595045,
                9.803912125190579e-11,
                0.0
            ]
        );
        let p = st.covariance();
        assert_eq!(p[0][0], 57.28232361177515);
        assert_eq!(p[0][4], 23.39049586776859);
        assert_eq!(p[4][4], 20.34567551097944);
        assert_eq!(p[3][3], 57.28232361177515);
    }

    #[test]
    fn update_of_a_float32_mean_matches_numpy() {
        // Unconfirmed tracks are updated without a predict: float32 projection noise.
        let mut st = KalmanState::initiate([120.5, 300.25, 0.4, 80.0]);
        st.update([121.0, 301.0, 0.41, 79.0]);
        assert_eq!(
            st.mean,
            [120.9, 300.85, 0.4000990157670314, 79.2, 0.0, 0.0, 0.0, 0.0]
        );
        let p = st.covariance();
        assert_eq!([p[0][0], p[0][4], p[4][4]], [12.800000000000011, 0.0, 25.0]);
        assert_eq!(p[2][2], 9.900990099009902e-05);
    }

    #[test]
    fn tlbr_in_the_mean_dtype() {
        let st = KalmanState::initiate([100.0, 200.0, 0.5, 60.0]);
        assert_eq!(st.tlbr(), [85.0, 170.0, 115.0, 230.0]);
    }
}
