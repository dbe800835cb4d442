package optim

import (
	"fmt"
	"math"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/kron"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

var _ Optimizer = (*ACP)(nil)

// ACP is the amortized covariance preconditioner (thesis §3.3.3–3.4.2,
// algorithm 3). Each layer's curvature block is approximated by
//
//	F_in + λI = Ā ⊗ αI + λI,   Ā = [ E[hhᵀ]  μ ]   μ = E[h],  C = E[hhᵀ] − μμᵀ,
//	                                [ μᵀ      1 ],
//
// the statistics of the layer's input h alone (§3.3.3), with a scalar α
// standing for the output side and Tikhonov damping λ (§3.4.2). The step is
// the exact solve of that system against the gradient θ = [vec(W); b]:
//
//	[ΔW Δb] = (1/α) [∇W ∇b] M⁻¹,   M = Ā + (λ/α) I,
//
// computed in closed form by kron.AugmentedInverse (Schur complement on the
// bias; O(n_out n_in²) per step, no product with Ā), or, when the batch is
// smaller than the layer, as (1/n) Gradᵀ ([H 1] M⁻¹) with M⁻¹ formed once
// per refresh (O(n n_in (n_in + n_out)) per step: about 4× cheaper on the
// autoencoder at batch 100). With λ = 0 it is
// eq. 3.3.3 and the corrected eq. 3.3.4 (DESIGN, slip 2):
//
//	ΔW = (1/α)(1/n) Σ_j ∇_{a_j} l (h_j − μ)ᵀ C⁻¹,
//	Δb = (1/α)(1/n) Σ_j ∇_{a_j} l − ΔW μ.
//
// The update descends (algorithm 3 writes b ← b + λ…, slip 3), with
// optional classical momentum:
//
//	W ← W − η ΔW,   b ← b − η Δb                       (Momentum = 0)
//	v ← μ_m v − η Δ,  θ ← θ + v                         (Momentum = μ_m)
//
// # Amortization
//
// Every RefreshPeriod updates (the first included) Step re-estimates μ and
// C of each layer's input from the current minibatch's Input (1/n
// normalisation, rows centered before the product), optionally blends them
// into moving averages (Decay), and factorizes M with the damping
// λ' = λ/α_r, α_r being the layer's α at that update. Between refreshes
// nothing is recomputed but the gradient's product with the stored
// factorization; only the scale 1/α follows the current minibatch. At update
// t, after a refresh at update r, the step is therefore
//
//	(1/α_t) [∇W ∇b] M_r⁻¹,   the exact solve with Ā_r ⊗ α_t I + λ (α_t/α_r) I:
//
// the Tikhonov weight in effect is λ α_t/α_r (λ itself with a fixed α, or
// at a refresh). The weight step is centered with the refresh mean μ_r and
// the bias gets the matching correction −ΔW μ_r, so that every step is the
// solve of one positive definite system; algorithm 3 centers with the current
// minibatch's mean and leaves b to plain SGD instead. The statistics come from
// the minibatch of the refresh update itself (algorithm 3 draws a separate
// one).
//
// # The scale α
//
// Alpha > 0 fixes α (the thesis's first approach, a hyperparameter). The
// zero value uses the heuristic of §3.4.2, per layer and per minibatch,
//
//	α = max_{i ∈ batch, j ≤ n_out} (∇_{a_i} l)_j²
//
// (curvature.MaxSquaredGrad of the record's Grad). With the heuristic the
// step is ∇Θ (α Ā + λI)⁻¹: where α Ā ≫ λ it is Newton-like, where α Ā ≪ λ
// (layers whose gradients vanish, directions of small input variance) it
// tends to an SGD step of rate η/λ. The heuristic follows the residual, not
// the curvature: with large residuals (unbounded outputs) α is far above the
// curvature and the steps are tiny; as a model approaches zero residual α
// falls below it and the steps grow towards that SGD limit. It suits bounded
// outputs (sigmoid units, residuals ≤ 1) such as the autoencoder's; a fixed α
// avoids both effects. A layer whose Grad is all zero (α = 0, or so small
// that λ/α overflows) gets no step, and its refresh waits for the next update
// where α > 0.
//
// # Defaults, and why (for the deep autoencoder, batch 100)
//
// The network is 784-1000-500-250-30-250-500-1000-784 with sigmoid units and
// the summed quadratic loss. Its layer inputs are pixels in [0, 1] or sigmoid
// outputs, whose variances are about 0.01–0.1 (tr C / n_in); at the output
// layer |∇_a l| = 2|f − y| σ' ≤ 0.5, so the heuristic α ≤ 0.25, and for a
// hidden layer the heuristic α is of the order of the diagonal of its
// Gauss–Newton output factor (max over 100 examples of g² with g = J_aᵀ 2(f−y)).
//
//   - Damping λ = 0.01: a refresh minibatch of 100 examples gives C of rank
//     ≤ 99 for n_in ∈ {250, …, 1000}; the directions it misses are seen by
//     later minibatches with variance ≈ tr C / n_in, and the step there is
//     amplified by (that variance)/(λ/α) over Newton's. λ/α ≥ 0.04 at the
//     output layer keeps this at most about 1, and in the layers with
//     small α the step is SGD-like (rate η/λ) on gradients that are small.
//   - Rate η = 0.1: with α of the order of the Gauss–Newton output factor,
//     η = 1 would be a full block-diagonal Newton step, and the 8 layers'
//     steps add up in the output (the block-diagonal approximation
//     ignores that), so η ≈ 1/(number of layers). With Momentum 0.9, start
//     from η = 0.01–0.03.
//   - RefreshPeriod N = 20: a refresh costs a syrk and a Cholesky
//     factorization per layer (≈ n n_in² + n_in³/3 flops, about 1.2 Gflop
//     for this network, plus n_in³ for the explicit inverse of the
//     input-side form); every 20 updates that is ≈ 0.2 Gflop per update,
//     against ≈ 1.2 Gflop for the per-update input-side preconditioning at
//     batch 100 (4.5 Gflop by triangular solves on the gradient) and
//     ≈ 1.7 Gflop for the forward and backward passes.
//   - Decay 0 (no moving average, as in algorithm 3); Decay 0.95 (K-FAC's)
//     averages the statistics of about 20 refreshes, which makes C full
//     rank and allows a smaller λ.
//
// # Failures
//
// If C' (the damped Schur complement, see kron.AugmentedInverse) is not
// positive definite, the damping λ' is multiplied by 10 and the
// factorization retried, up to 12 attempts (kron.Retry); a zero damping
// (NoDamping) that fails restarts from λ' = 1e-6 tr(C)/n_in (1e-6 when C is
// zero). A raised damping is reported through OnDampingRaised and
// DampingUsed. NaN or Inf in a layer's Input (seen in the statistics at a
// refresh, or in the step), Grad (seen in α or in the step), GradW, GradB or
// an Extra gradient make Step return an error before any parameter is
// changed.
//
// Extra parameters of the layers (batch normalisation's γ and β) are not
// covered by this curvature: they get plain gradient steps of rate
// ExtraRate, with the same momentum.
//
// ACP reads Input, GradW, GradB and, for the heuristic α, Grad. It allocates
// nothing after the first step at a fixed batch size.
type ACP struct {
	// Rate is the learning rate η; zero means 0.1 (see above). Negative is
	// refused.
	Rate float64
	// Momentum is the classical momentum μ in [0, 1); zero means none.
	Momentum float64
	// Alpha is a fixed scale α > 0 of the output side; zero selects the
	// heuristic max_{i,j} (∇_{a_i} l)_j² of §3.4.2. Negative is refused.
	Alpha float64
	// Damping is the Tikhonov weight λ of Ā ⊗ αI + λI (§3.4.2); zero means
	// 0.01 (see above). Negative is refused. Set NoDamping for λ = 0.
	Damping float64
	// NoDamping sets λ = 0 (Damping must then be zero): the undamped
	// eqs. 3.3.3 and 3.3.4, with the damping raised only when C is not
	// positive definite.
	NoDamping bool
	// RefreshPeriod is N, the number of updates between two estimates and
	// factorizations of the input statistics (algorithm 3); zero means 20
	// (see above), 1 refreshes at every update. Negative is refused.
	RefreshPeriod int
	// Decay in [0, 1) blends the statistics of successive refreshes into
	// exponential moving averages of μ and E[hhᵀ] (equivalently of Ā),
	// with weight ε_k = min(1 − 1/k, Decay) on the old value at the k-th
	// refresh (Martens & Grosse 2015, §5). Zero means no averaging: each
	// refresh uses its minibatch alone, as algorithm 3.
	Decay float64
	// ExtraRate is the learning rate of the plain gradient steps on the
	// layers' Extra parameters; zero means 0.01, SGD's default. Negative is
	// refused.
	ExtraRate float64
	// OnDampingRaised, when set, is called at a refresh whose factorization
	// needed a damping λ' (on Ā, i.e. λ/α_r) larger than the requested one.
	OnDampingRaised func(layer int, requested, used float64)

	t  int
	ls []acpLayer
}

const (
	acpRetryTries  = 12
	acpRetryGrowth = 10
	acpZeroFloor   = 1e-6
)

// acpLayer is the state of one layer.
type acpLayer struct {
	out, in int
	nextra  []int

	inv      kron.AugmentedInverse
	mu, muB  *mat.VecDense // running and minibatch mean
	cov, cvB *mat.SymDense // running and minibatch covariance
	hc       []float64     // centered copy of Input
	nref     int           // refreshes merged so far
	pending  bool          // a refresh is due
	valid    bool          // inv holds a factorization
	damping  float64       // λ' of the factorization
	alpha    float64       // α of the current step
	stepping bool          // the current step is not zero

	// Input-side preconditioning (see inputSide): the explicit M⁻¹ of the
	// last refresh, and buffers.
	minvSym       mat.SymDense
	minv          *mat.Dense
	minvOK        bool
	haug, z, daug []float64

	dw *mat.Dense
	db *mat.VecDense
	vw *mat.Dense
	vb *mat.VecDense
	ve []*mat.VecDense
}

type acpSettings struct {
	eta, mu, alpha, lambda, decay, extra float64
	period                               int
}

func (a *ACP) settings() acpSettings {
	const name = "ACP"
	checkRate(name, "learning rate", a.Rate)
	checkUnit(name, "momentum", a.Momentum)
	checkRate(name, "alpha", a.Alpha)
	checkRate(name, "damping", a.Damping)
	checkUnit(name, "decay", a.Decay)
	checkRate(name, "extra rate", a.ExtraRate)
	if a.NoDamping && a.Damping != 0 {
		panic(fmt.Sprintf("optim: ACP: NoDamping set with Damping %v; set one of them", a.Damping))
	}
	if a.Alpha > 0 && math.IsInf(a.Damping/a.Alpha, 0) {
		panic(fmt.Sprintf("optim: ACP: damping/alpha = %v/%v overflows", a.Damping, a.Alpha))
	}
	if a.RefreshPeriod < 0 {
		panic(fmt.Sprintf("optim: ACP: refresh period %d, want ≥ 1 (or 0 for the default 20)", a.RefreshPeriod))
	}
	s := acpSettings{eta: a.Rate, mu: a.Momentum, alpha: a.Alpha, lambda: a.Damping,
		decay: a.Decay, extra: a.ExtraRate, period: a.RefreshPeriod}
	if s.eta == 0 {
		s.eta = 0.1
	}
	if s.lambda == 0 && !a.NoDamping {
		s.lambda = 0.01
	}
	if s.period == 0 {
		s.period = 20
	}
	if s.extra == 0 {
		s.extra = 0.01
	}
	return s
}

// DampingUsed returns the damping λ' on Ā of layer k's current
// factorization: λ/α_r at its last refresh, or more if it had to be raised;
// zero before the first refresh. It panics before the first Step.
func (a *ACP) DampingUsed(k int) float64 { return a.ls[k].damping }

// AlphaUsed returns the scale α of layer k at the last step (0 when its
// Grad was all zero). It panics before the first Step.
func (a *ACP) AlphaUsed(k int) float64 { return a.ls[k].alpha }

// Step applies one update to every layer. It returns an error, leaving
// every parameter unchanged, when a record holds NaN or Inf or when a
// factorization fails even with the raised damping.
func (a *ACP) Step(layers []*secondorder.Layer) error {
	checkLayers("ACP", layers)
	cfg := a.settings()
	a.ensureState(layers, cfg.mu > 0)
	if a.t%cfg.period == 0 {
		for k := range a.ls {
			a.ls[k].pending = true
		}
	}

	// α of every layer, and the minibatch statistics of those due for a
	// refresh; nothing is kept yet.
	for k, l := range layers {
		s := &a.ls[k]
		if l.Input == nil {
			panic(fmt.Sprintf("optim: ACP: layer %d has no Input", k))
		}
		alpha := cfg.alpha
		if alpha == 0 {
			if l.Grad == nil {
				panic(fmt.Sprintf("optim: ACP: layer %d has no Grad, which the heuristic α needs (or set Alpha)", k))
			}
			alpha = maxSquaredRaw(l.Grad)
			if math.IsNaN(alpha) || math.IsInf(alpha, 0) {
				return fmt.Errorf("optim: ACP: layer %d: Grad holds NaN or Inf", k)
			}
			if alpha > 0 && math.IsInf(cfg.lambda/alpha, 0) {
				alpha = 0
			}
		}
		s.alpha = alpha
		if s.pending && alpha > 0 && !s.batchStats(l.Input) {
			return fmt.Errorf("optim: ACP: layer %d: Input holds NaN or Inf", k)
		}
	}

	// Refresh: merge the statistics and factorize.
	for k := range layers {
		s := &a.ls[k]
		if !s.pending || s.alpha == 0 {
			continue
		}
		s.merge(cfg.decay)
		requested := cfg.lambda / s.alpha
		if err := s.factorize(requested); err != nil {
			return fmt.Errorf("optim: ACP: layer %d: %w", k, err)
		}
		s.pending = false
		if s.damping > requested && a.OnDampingRaised != nil {
			a.OnDampingRaised(k, requested, s.damping)
		}
	}

	// Steps into the layers' buffers, checked before anything changes.
	for k, l := range layers {
		s := &a.ls[k]
		s.stepping = s.valid && s.alpha > 0
		if s.stepping {
			if s.inputSide(l) {
				s.preconditionInputs(l)
			} else {
				s.inv.Precondition(s.dw, s.db, l.GradW, l.GradB)
			}
			c := cfg.eta / s.alpha
			if !(c*(sumAbsDense(s.dw)+sumAbsVec(s.db.RawVector())) < math.Inf(1)) {
				return fmt.Errorf("optim: ACP: layer %d: step is not finite (NaN or Inf in Input, Grad, GradW or GradB)", k)
			}
		}
		for _, p := range l.Extra {
			if !(sumAbsVec(p.Grad.RawVector()) < math.Inf(1)) {
				return fmt.Errorf("optim: ACP: layer %d: gradient of %q holds NaN or Inf", k, p.Name)
			}
		}
	}

	// Apply.
	for k, l := range layers {
		s := &a.ls[k]
		c := 0.0
		if s.stepping {
			c = cfg.eta / s.alpha
		} else {
			s.dw.Zero()
			s.db.Zero()
		}
		if cfg.mu == 0 {
			if s.stepping {
				axpy(l.W, -c, s.dw)
				axpyVec(l.B, -c, s.db)
			}
			for _, p := range l.Extra {
				axpyVec(p.Value, -cfg.extra, p.Grad)
			}
			continue
		}
		momentumStep(l.W.RawMatrix(), s.vw.RawMatrix(), s.dw.RawMatrix(), c, cfg.mu, false)
		momentumStepVec(l.B.RawVector(), s.vb.RawVector(), s.db.RawVector(), c, cfg.mu, false)
		for j, p := range l.Extra {
			momentumStepVec(p.Value.RawVector(), s.ve[j].RawVector(), p.Grad.RawVector(), cfg.extra, cfg.mu, false)
		}
	}
	a.t++
	return nil
}

// batchStats computes the mean and covariance (1/n) of the rows of h into
// muB and cvB, centering the rows into hc first. It reports whether they
// are finite (a NaN or Inf anywhere in h makes its column's mean so).
func (s *acpLayer) batchStats(h *mat.Dense) bool {
	raw := h.RawMatrix()
	n, d := raw.Rows, raw.Cols
	mb := s.muB.RawVector().Data[:d]
	columnMeans(mb, h)
	s.hc = growFloats(s.hc, n*d)
	for i := 0; i < n; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+d]
		dst := s.hc[i*d : i*d+d]
		for j, v := range row {
			dst[j] = v - mb[j]
		}
	}
	cb := s.cvB.RawSymmetric()
	blas64.Syrk(blas.Trans, 1/float64(n), blas64.General{Rows: n, Cols: d, Stride: d, Data: s.hc}, 0, cb)
	sum := 0.0
	for j := 0; j < d; j++ {
		sum += math.Abs(mb[j]) + cb.Data[j*cb.Stride+j]
	}
	return sum < math.Inf(1)
}

// merge blends the minibatch statistics into the running ones with weight
// ε = min(1 − 1/k, decay) on the old values at the k-th refresh. Averaging
// μ and E[hhᵀ] is, for the covariance,
//
//	C ← ε C + (1−ε) C_B + ε(1−ε) (μ − μ_B)(μ − μ_B)ᵀ,
//
// which avoids the cancellation of E[hhᵀ] − μμᵀ.
func (s *acpLayer) merge(decay float64) {
	s.nref++
	eps := min(1-1/float64(s.nref), decay)
	if eps == 0 {
		s.mu.CopyVec(s.muB)
		s.cov.CopySym(s.cvB)
		return
	}
	m, mb := s.mu.RawVector().Data, s.muB.RawVector().Data
	c, cb := s.cov.RawSymmetric(), s.cvB.RawSymmetric()
	w := eps * (1 - eps)
	for i := 0; i < s.in; i++ {
		di := m[i] - mb[i]
		cr := c.Data[i*c.Stride : i*c.Stride+s.in]
		br := cb.Data[i*cb.Stride : i*cb.Stride+s.in]
		for j := i; j < s.in; j++ {
			cr[j] = eps*cr[j] + (1-eps)*br[j] + w*di*(m[j]-mb[j])
		}
	}
	for i := range s.in {
		m[i] = eps*m[i] + (1-eps)*mb[i]
	}
}

// factorize factorizes M with damping λ' = requested, raising it on
// failure (see the type's documentation).
func (s *acpLayer) factorize(requested float64) error {
	s.valid = false
	s.inv.Retry = kron.Retry{Tries: acpRetryTries, Growth: acpRetryGrowth}
	err := s.inv.FactorizeCov(s.cov, s.mu, requested)
	if err != nil && requested == 0 {
		tr := 0.0
		for i := range s.in {
			tr += s.cov.At(i, i)
		}
		floor := acpZeroFloor * tr / float64(s.in)
		if !(floor > 0) || math.IsInf(floor, 0) {
			floor = acpZeroFloor
		}
		err = s.inv.FactorizeCov(s.cov, s.mu, floor)
	}
	if err != nil {
		return err
	}
	s.valid = true
	s.damping = s.inv.Damping()
	s.minvOK = false
	return nil
}

// inputSide reports whether the step is cheaper computed from the
// preconditioned inputs, (1/n) Gradᵀ ([H 1] M⁻¹), at 2n(n_in+1)(n_in+1+n_out)
// flops, than from the gradient, [∇W ∇b] M⁻¹ by two triangular solves at
// 2 n_out (n_in+1)² flops: true when the batch is smaller than about
// n_out (n_in+1)/(n_in+1+n_out), e.g. below 440 for a 784 → 1000 layer.
func (s *acpLayer) inputSide(l *secondorder.Layer) bool {
	if l.Grad == nil || acpForceGradientSide {
		return false
	}
	n, _ := l.Input.Dims()
	in1 := s.in + 1
	return n*(in1+s.out) < s.out*in1
}

// acpForceGradientSide makes every step take the gradient-side path; the
// tests use it to compare the two.
var acpForceGradientSide = false

// preconditionInputs computes the step as (1/n) Gradᵀ ([H 1] M⁻¹), the
// input-side form of [∇W ∇b] M⁻¹ (∇W = (1/n) Gradᵀ H, ∇b = (1/n) Gradᵀ 1),
// into dw and db. M⁻¹ is formed explicitly once per refresh.
func (s *acpLayer) preconditionInputs(l *secondorder.Layer) {
	in1 := s.in + 1
	if !s.minvOK {
		s.inv.InverseTo(&s.minvSym)
		if s.minv == nil {
			s.minv = mat.NewDense(in1, in1, nil)
		}
		s.minv.Copy(&s.minvSym)
		s.minvOK = true
	}
	h := l.Input.RawMatrix()
	n := h.Rows
	s.haug = growFloats(s.haug, n*in1)
	s.z = growFloats(s.z, n*in1)
	s.daug = growFloats(s.daug, s.out*in1)
	for i := 0; i < n; i++ {
		dst := s.haug[i*in1 : i*in1+in1]
		copy(dst, h.Data[i*h.Stride:i*h.Stride+s.in])
		dst[s.in] = 1
	}
	haug := blas64.General{Rows: n, Cols: in1, Stride: in1, Data: s.haug}
	z := blas64.General{Rows: n, Cols: in1, Stride: in1, Data: s.z}
	daug := blas64.General{Rows: s.out, Cols: in1, Stride: in1, Data: s.daug}
	blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, haug, s.minv.RawMatrix(), 0, z)
	blas64.Gemm(blas.Trans, blas.NoTrans, 1/float64(n), l.Grad.RawMatrix(), z, 0, daug)
	dw := s.dw.RawMatrix()
	db := s.db.RawVector()
	for i := 0; i < s.out; i++ {
		copy(dw.Data[i*dw.Stride:i*dw.Stride+s.in], s.daug[i*in1:i*in1+s.in])
		db.Data[i*db.Inc] = s.daug[i*in1+s.in]
	}
}

func (a *ACP) ensureState(layers []*secondorder.Layer, momentum bool) {
	if len(a.ls) == 0 {
		a.ls = make([]acpLayer, len(layers))
		for k, l := range layers {
			out, in := l.W.Dims()
			s := &a.ls[k]
			s.out, s.in = out, in
			for _, p := range l.Extra {
				s.nextra = append(s.nextra, p.Value.Len())
			}
			s.mu, s.muB = mat.NewVecDense(in, nil), mat.NewVecDense(in, nil)
			s.cov, s.cvB = mat.NewSymDense(in, nil), mat.NewSymDense(in, nil)
			s.dw, s.db = mat.NewDense(out, in, nil), mat.NewVecDense(out, nil)
		}
	}
	if len(layers) != len(a.ls) {
		panic(fmt.Sprintf("optim: ACP: got %d layers, earlier steps had %d", len(layers), len(a.ls)))
	}
	for k, l := range layers {
		s := &a.ls[k]
		out, in := l.W.Dims()
		same := out == s.out && in == s.in && len(l.Extra) == len(s.nextra)
		for j := 0; same && j < len(l.Extra); j++ {
			same = l.Extra[j].Value.Len() == s.nextra[j]
		}
		if !same {
			panic(fmt.Sprintf("optim: ACP: layer %d changed shape (W, B or Extra) between steps", k))
		}
		if momentum && s.vw == nil {
			s.vw, s.vb = mat.NewDense(out, in, nil), mat.NewVecDense(out, nil)
			for _, n := range s.nextra {
				s.ve = append(s.ve, mat.NewVecDense(n, nil))
			}
		}
	}
}

// maxSquaredRaw is curvature.MaxSquaredGrad on the raw storage of g: the
// largest squared entry, NaN if an entry is NaN, +Inf if one is infinite.
func maxSquaredRaw(g *mat.Dense) float64 {
	raw := g.RawMatrix()
	m := 0.0
	for i := 0; i < raw.Rows; i++ {
		for _, v := range raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols] {
			if v != v {
				return math.NaN()
			}
			m = max(m, v*v)
		}
	}
	return m
}

// sumAbsDense returns Σ |x_ij|: NaN or +Inf when an entry is.
func sumAbsDense(x *mat.Dense) float64 {
	raw := x.RawMatrix()
	s := 0.0
	for i := 0; i < raw.Rows; i++ {
		for _, v := range raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols] {
			s += math.Abs(v)
		}
	}
	return s
}

// sumAbsVec returns Σ |x_i|: NaN or +Inf when an entry is.
func sumAbsVec(x blas64.Vector) float64 {
	s := 0.0
	for i := 0; i < x.N; i++ {
		s += math.Abs(x.Data[i*x.Inc])
	}
	return s
}
