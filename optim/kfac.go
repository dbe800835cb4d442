package optim

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/kron"
)

var (
	_ Optimizer = (*KFAC)(nil)
	_ Needer    = (*KFAC)(nil)
)

// Defaults of KFAC.
const (
	// DefaultKFACDamping is the default relative damping λ of KFAC (see
	// KFAC.Damping for its units), chosen on the deep autoencoder (see KFAC).
	DefaultKFACDamping = 0.1
	// DefaultKFACInversePeriod is T3 of Martens & Grosse (2015, §8).
	DefaultKFACInversePeriod = 20
	// DefaultKFACLMPeriod is T2 of Martens & Grosse (2015, §6.5, §8).
	DefaultKFACLMPeriod = 5
	// DefaultKFACNormConstraint is the default bound C on the squared
	// K-FAC norm of an update (see KFAC.NormConstraint).
	DefaultKFACNormConstraint = 1
)

// KFAC is the block-diagonal Kronecker-factored approximate curvature method
// of Martens & Grosse (2015), thesis §3.5.1. Each affine layer's block of the
// Fisher (or Gauss–Newton) matrix is approximated by a Kronecker product
//
//	F_l ≈ Ā ⊗ G,   Ā = E[h̃ h̃ᵀ] ((n_in+1)², h̃ = (h, 1)),   G = E[g gᵀ] (n_out²),
//
// and the update of the layer's parameters Θ = [W b] (n_out × (n_in+1),
// θ = vec(Θ)) is, with the factored Tikhonov damping of Martens & Grosse
// §6.3 (kron.FactoredTikhonov),
//
//	U  = (G + (√λ_l/π) I)⁻¹ [∇W ∇b] (Ā + π√λ_l I)⁻¹ ≈ (F_l + λ_l I)⁻¹ ∇θ,
//	δ  = −η U + μ δ_prev,        Θ ← Θ + δ,
//	π  = sqrt( (tr Ā / (n_in+1)) / (tr G / n_out) )      (trace-norm π),
//
// η the learning rate and μ the momentum (fixed, η possibly lowered by the
// norm constraint; or both chosen by the exact quadratic model when
// AutoRate is set, below).
//
// # What the caller provides
//
// Each Step reads the records' GradW and GradB, and, on the steps where the
// factor statistics are updated (StatsDue; every step by default), Input and
// Back. Back (and BackScale) hold backpropagated curvature vectors g_r, filled
// by the caller with the estimator of its choice (package curvature's
// Estimator and Backprop: Monte-Carlo Fisher, "fisher_gradients", is Martens
// & Grosse's choice and the usual one; exact GN/Fisher work too), so that
// G = BackScale·Backᵀ Back (BackScale zero meaning 1/n, as in
// secondorder.Layer). The rows of Back are tied to examples in order:
//
//   - m ≤ n rows: one per example, row r belongs to example r. Ā is then
//     estimated on the first m rows of Input, the same examples: this is
//     Martens & Grosse's τ1 sub-batch, which makes the statistics cheap.
//     BackScale must then be 1/m (zero would mean 1/n).
//   - more rows, e.g. k·n (exact estimators, k consecutive rows per example)
//     or samples·n (several Monte-Carlo samples): Ā uses all n rows of Input.
//
// With an nn.Network and Monte-Carlo Fisher, the glue is
//
//	bp := curvature.Backprop{Estimator: curvature.FisherGradients, Rand: rng}
//	opt := &optim.KFAC{}
//	for each minibatch x, y {
//		bp.Fill(net, loss, x, y) // Input, Grad, GradW, GradB and Back
//		if err := opt.Step(net.Records()); err != nil { ... }
//	}
//
// Step reads every record before it calls the closures of Problem, which may
// therefore overwrite the records (by running the network forward again).
//
// # Statistics, inverses and damping
//
// The factors are exponential moving averages (curvature.MovingAverage, with
// Martens & Grosse's warm start ε_k = min(1 − 1/k, ε)) of the per-batch
// estimates, updated every StatsPeriod updates (T1). The damped factors are
// factorized by Cholesky every InversePeriod updates (T3), with the damping λ
// of that moment, and at every one of the first InversePeriod updates (a
// warm-up: the factors of the untrained network go stale fastest; on the
// deep autoencoder, the inverse of update 1 kept for 20 updates left the
// error near 100 where refreshing through the warm-up reached 37 in 20
// updates). Between refreshes the cached factorizations are reused.
//
// λ is relative unless AbsoluteDamping is set: layer l is damped with
// λ_l = λ·s_l, s_l = (tr Ā/(n_in+1))·(tr G/n_out), the mean eigenvalue of
// Ā⊗G, so that the shifts of the factors are √λ·tr Ā/(n_in+1) and
// √λ·tr G/n_out. The step is then invariant to the scale of the loss
// (halved or not, summed or averaged over outputs) and the same λ suits
// layers whose curvature differs by orders of magnitude, as in the deep
// autoencoder. With AbsoluteDamping, λ_l = λ is Martens & Grosse's λ for our
// risk R = (1/n) Σ_i l_i: if their objective is our risk divided by c (c = 2
// for their halved squared error against our ‖f − y‖², c = the number of
// outputs if theirs averages over outputs), their λ corresponds to c·λ here;
// their λ = 150 at the start of the MNIST autoencoder runs, with LM
// adaptation, is the intended use of absolute damping. Martens & Grosse's
// separate factored damping γ (their §6.6) is taken as γ = √λ, not adapted.
//
// If a damped factor is not positive definite (a rank-deficient factor with
// a damping lost to rounding), the layer's damping is multiplied by
// Retry.Growth until it is, as in kron.FactoredTikhonov; each such raise
// calls OnDampingRaised and is counted in Report. When every attempt fails,
// Step returns the error and leaves the parameters unchanged.
//
// AdaptDamping adapts λ by the Levenberg–Marquardt rule of Martens & Grosse
// §6.5: every LMPeriod updates (T2) it evaluates Problem.Loss before and after
// the update and compares the decrease with the quadratic model
//
//	ρ = (h(θ+δ) − h(θ)) / (M(δ) − M(0)),   M(δ) − M(0) = ½ δᵀ(F + Λ)δ + ∇ᵀδ,
//	λ ← λ/ω if ρ < 1/4,   λ ← ω λ if ρ > 3/4,   ω = (19/20)^T2,
//
// with Λ = diag(λ_l I) (λ_l as above, from the current λ) and F the exact
// Gauss–Newton/Fisher product Problem.GNVec when it is set, otherwise the
// block-diagonal K-FAC approximation Ā⊗G itself. A model that predicts no
// decrease (M(δ) ≥ M(0), a non-finite ρ) counts as ρ < 1/4. λ stays within
// [1e-16, 1e16]. The new λ is used from the next inverse refresh on.
//
// # Learning rate and momentum
//
// Without AutoRate, η = Rate and μ = Momentum, except that η is lowered when
// needed to keep the squared norm of the new part of the update in the
// damped K-FAC metric F̃ = (Ā + π√λ_l I) ⊗ (G + √λ_l/π I) within
// NormConstraint C (Ba, Grosse & Martens 2017; the norm_constraint of
// TensorFlow's K-FAC):
//
//	(ηU)ᵀ F̃ (ηU) = η² ∇ᵀ U ≤ C,   so η ← min(η, sqrt(C / ∇ᵀU)),
//
// a trust region that costs nothing (∇ᵀU is a dot product) and keeps a
// fixed-rate step safe when the curvature moves faster than the inverses
// are refreshed. On the deep autoencoder (MC Fisher, batch 100, relative
// λ in [0.01, 3], η = 1) it was the difference between reaching a
// reconstruction error of 23–27 in 60 updates and stalling or diverging
// (90–140) once the warm-up ended.
//
// With AutoRate (Martens & Grosse §7) the step δ = −α U + μ δ_prev
// minimizes the exact quadratic model M over α and μ, a 2×2 linear system
// whose entries come from two Problem.GNVec products (one on the first
// update, where μ = 0):
//
//	[UᵀCU  −UᵀCδ₀] [α]   [ ∇ᵀU ]
//	[−δ₀ᵀCU δ₀ᵀCδ₀] [μ] = [−∇ᵀδ₀],   C = F + Λ,  δ₀ = δ_prev.
//
// If the system is not positive definite (non-positive curvature along U or
// δ₀, collinear directions) it falls back to the best α along U alone with
// μ = 0, and if that is not positive and finite either, to the fixed Rate and
// Momentum; fallbacks are counted in Report with their reason. The model
// decrease of the chosen step is then the one used by AdaptDamping. The norm
// constraint applies to the fixed rate only (including AutoRate's fallback
// to it).
//
// Parameters in the layers' Extra (batch normalisation's γ, β) are outside
// the curvature model: they get a plain gradient step θ ← θ − Rate·∇θ.
//
// # Cost
//
// With n_A = n_in+1, n_G = n_out, m_A rows of Input and m rows of Back used,
// per layer:
//
//	every update          4 triangular solves, 2 n_G n_A (n_A + n_G) flops
//	every StatsPeriod      two syrk, m_A n_A² + m n_G² flops, and the averages O(n_A² + n_G²)
//	every refresh         two Cholesky factorizations, (n_A³ + n_G³)/3 flops
//	every LMPeriod        two calls of Problem.Loss, and without GNVec 2 n_G n_A (n_A + n_G) flops
//	with AutoRate         one or two calls of Problem.GNVec per update
//
// For the 784-1000-500-250-30-250-500-1000-784 autoencoder this is about
// 9 GFLOP per update for the solves, 3.2 MFLOP per row of the statistics
// (0.65 GFLOP at m_A = m = 100, hence the τ1 sub-batch and StatsPeriod) and
// 1.8 GFLOP per refresh; measured with OpenBLAS on the shared 2-core
// machine, about 0.45 s per update at batch 100 (solves ~0.3 s, the rest
// statistics, refreshes and the network's passes), against ~0.05 s for an
// SGD update. Memory per layer: the factor estimates, their averages and
// the Cholesky factors, 3 (n_A² + n_G²) floats, and two (four with a GNVec)
// n_G × n_A buffers, plus two of the largest layer's size shared by all
// layers.
//
// Buffers are allocated at the first Step and reused: in steady state a Step
// does not allocate (inverse refreshes included), the closures of Problem
// aside.
//
// The zero value is ready to use: η = 1 under the norm constraint C = 1, no
// momentum, relative damping 0.1, statistics every update, inverses every
// 20 updates after the warm-up, no adaptation. KFAC keeps per-layer state by
// position: pass the layers in the same order at every Step. It is not safe
// for concurrent use.
type KFAC struct {
	// Rate is the learning rate η, and the step size of the Extra
	// parameters. Zero means 1, the natural-gradient (Newton) step length.
	// Negative is refused.
	Rate float64
	// Momentum is the fixed momentum μ in [0, 1) applied to the previous
	// update when AutoRate is false; zero means none.
	Momentum float64
	// NormConstraint is C, the bound on η² ∇ᵀU, the squared norm of the
	// update's new part in the damped K-FAC metric, in units of the risk
	// (Ba, Grosse & Martens 2017). Zero means DefaultKFACNormConstraint
	// (1); +Inf turns the constraint off; negative is refused. It bounds
	// the fixed rate only, not AutoRate's α.
	NormConstraint float64
	// Damping is the initial Tikhonov damping λ, relative to each layer's
	// mean eigenvalue unless AbsoluteDamping is set (see the type's
	// documentation). Zero means DefaultKFACDamping (0.1); negative is
	// refused.
	Damping float64
	// AbsoluteDamping makes Damping the plain λ of F + λI (Martens &
	// Grosse's units), the same for every layer.
	AbsoluteDamping bool
	// Decay is the decay ε of the moving averages of the factors, in
	// (0, 1). Zero means curvature.DefaultDecay (0.95, Martens & Grosse §5).
	Decay float64
	// StatsPeriod is T1: the factor statistics are updated at updates 1,
	// 1+T1, 1+2T1, … Zero means 1; negative is refused.
	StatsPeriod int
	// InversePeriod is T3: the damped factors are refactorized at each of
	// the first T3 updates, then at updates 1+T3, 1+2T3, … (and whenever a
	// factorization is missing). Zero means DefaultKFACInversePeriod (20);
	// negative is refused.
	InversePeriod int
	// AdaptDamping turns on the Levenberg–Marquardt adaptation of λ
	// (Martens & Grosse §6.5), which needs Problem.Loss.
	AdaptDamping bool
	// LMPeriod is T2: λ is adapted at updates T2, 2T2, … Zero means
	// DefaultKFACLMPeriod (5); negative is refused.
	LMPeriod int
	// AutoRate chooses the learning rate and momentum of every update from
	// the exact quadratic model (Martens & Grosse §7), which needs
	// Problem.GNVec.
	AutoRate bool
	// Retry is the policy applied when a damped factor is not positive
	// definite. The zero value means {Tries: 10, Growth: 10}; Tries zero
	// means 10, Growth zero means 10.
	Retry kron.Retry
	// OnDampingRaised, if set, is called when the damping of a layer had to
	// be raised for its factors to be positive definite, with the layer's
	// index and the damping used, in the units of Damping.
	OnDampingRaised func(layer int, damping float64)
	// Problem holds the closures over the current minibatch that
	// AdaptDamping (Loss) and AutoRate (GNVec) need; set them before each
	// Step. A GNVec set without AutoRate still serves the LM model.
	Problem Problem

	t       int     // updates done
	lambda  float64 // current λ, in the units of Damping
	layers  []kfacLayer
	ones    []float64 // column sums of the inputs
	work    [2][]float64
	report  KFACReport
	dirs    [4][]Direction // U, δ, F U, F δ views for GNVec
	started bool
}

// KFACReport describes the state of a KFAC optimizer after its last Step.
type KFACReport struct {
	// Updates is the number of updates done.
	Updates int
	// Damping is the current λ, in the units of KFAC.Damping.
	Damping float64
	// Refreshed tells whether the last update refactorized the damped
	// factors, Stats whether it updated the statistics, and Constrained
	// whether the norm constraint lowered its rate.
	Refreshed, Stats, Constrained bool
	// Rate and Momentum are the α (η) and μ of the last update.
	Rate, Momentum float64
	// Rho is the last reduction ratio ρ of the LM adaptation (NaN before
	// the first), and ModelDecrease the last M(δ) − M(0) that it used.
	Rho, ModelDecrease float64
	// DampingRaised counts the factorizations whose damping had to be
	// raised (OnDampingRaised).
	DampingRaised int
	// Fallbacks counts the updates whose AutoRate or LM quadratic model was
	// not usable, and LastFallback says why for the last one.
	Fallbacks    int
	LastFallback string
}

type kfacLayer struct {
	out, in    int
	aEst, gEst mat.SymDense
	aAvg, gAvg curvature.MovingAverage
	ft         kron.FactoredTikhonov
	valid      bool
	theta      mat.Dense // [∇W ∇b], then U in place
	prev       mat.Dense // δ_prev, then δ
	hasPrev    bool
	fu, fd     mat.Dense // F U and F δ for AutoRate
	gl, hl     mat.Dense // Grad and [H 1] for the batch-side solve
}

// kfOuterRows returns the batch size n and whether the layer's gradient can
// be taken as (1/n) Gradᵀ [H 1] (Grad and Input present with n rows each).
func kfOuterRows(l *secondorder.Layer) (int, bool) {
	if l.Grad == nil || l.Input == nil {
		return 0, false
	}
	n, _ := l.Input.Dims()
	m, _ := l.Grad.Dims()
	return n, n == m && n > 0
}

// kfAugment writes [H 1] into dst (n × (n_in+1)).
func kfAugment(dst *mat.Dense, h *mat.Dense) {
	d, hr := dst.RawMatrix(), h.RawMatrix()
	for i := 0; i < hr.Rows; i++ {
		row := d.Data[i*d.Stride : i*d.Stride+hr.Cols+1]
		copy(row, hr.Data[i*hr.Stride:i*hr.Stride+hr.Cols])
		row[hr.Cols] = 1
	}
}

// Needs reports what Step needs: Back always (on the steps where
// StatsDue), Problem.Loss with AdaptDamping, Problem.GNVec with AutoRate.
func (k *KFAC) Needs() Needs {
	return Needs{Back: true, Loss: k.AdaptDamping, GNVec: k.AutoRate}
}

// StatsDue reports whether the next Step updates the factor statistics and
// so reads the records' Input and Back. A caller may skip computing Back
// when it is false.
func (k *KFAC) StatsDue() bool { return k.t%k.statsPeriod() == 0 }

// CurrentDamping returns the current λ, in the units of Damping (the
// initial value before the first Step).
func (k *KFAC) CurrentDamping() float64 {
	if !k.started {
		return k.damping()
	}
	return k.lambda
}

// Report returns the state after the last Step.
func (k *KFAC) Report() KFACReport {
	r := k.report
	r.Updates = k.t
	r.Damping = k.CurrentDamping()
	return r
}

// Factors returns the current moving averages Ā and G of layer l, owned by
// k and valid until the next Step; nil before the first Step.
func (k *KFAC) Factors(l int) (a, g *mat.SymDense) {
	if l < 0 || l >= len(k.layers) {
		return nil, nil
	}
	return k.layers[l].aAvg.Mean(), k.layers[l].gAvg.Mean()
}

func (k *KFAC) rate() float64 {
	if k.Rate == 0 {
		return 1
	}
	return k.Rate
}

func (k *KFAC) normConstraint() float64 {
	if k.NormConstraint == 0 {
		return DefaultKFACNormConstraint
	}
	return k.NormConstraint
}

func (k *KFAC) damping() float64 {
	if k.Damping == 0 {
		return DefaultKFACDamping
	}
	return k.Damping
}

func (k *KFAC) decay() float64 {
	if k.Decay == 0 {
		return curvature.DefaultDecay
	}
	return k.Decay
}

func (k *KFAC) statsPeriod() int   { return kfDefaultInt(k.StatsPeriod, 1) }
func (k *KFAC) inversePeriod() int { return kfDefaultInt(k.InversePeriod, DefaultKFACInversePeriod) }
func (k *KFAC) lmPeriod() int      { return kfDefaultInt(k.LMPeriod, DefaultKFACLMPeriod) }

func kfDefaultInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// kfRetry fills the defaults of a Retry.
func kfRetry(r kron.Retry) kron.Retry {
	if r.Tries == 0 {
		r.Tries = 10
	}
	if r.Growth == 0 {
		r.Growth = 10
	}
	return r
}

// Validate returns an error, prefixed "optim: KFAC:", describing the first
// invalid setting, or nil. Step panics with that message, invalid settings
// being programmer errors as in SGD; callers that build a KFAC from user
// input (flags) can call Validate first.
func (k *KFAC) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("optim: KFAC: "+format, a...)
	}
	switch {
	case !kfFiniteNonNeg(k.Rate):
		return bad("learning rate Rate=%g, want finite and ≥ 0", k.Rate)
	case !(k.Momentum >= 0 && k.Momentum < 1):
		return bad("Momentum=%g, want in [0, 1)", k.Momentum)
	case !(k.NormConstraint >= 0):
		return bad("NormConstraint=%g, want ≥ 0 (0 means %g, +Inf none)", k.NormConstraint, float64(DefaultKFACNormConstraint))
	case !kfFiniteNonNeg(k.Damping):
		return bad("Damping=%g, want finite and ≥ 0 (0 means %g)", k.Damping, DefaultKFACDamping)
	case !(k.Decay >= 0 && k.Decay < 1):
		return bad("Decay=%g outside (0, 1) (0 means %g)", k.Decay, curvature.DefaultDecay)
	case k.StatsPeriod < 0:
		return bad("StatsPeriod=%d, want > 0 (0 means 1)", k.StatsPeriod)
	case k.InversePeriod < 0:
		return bad("InversePeriod=%d, want > 0 (0 means %d)", k.InversePeriod, DefaultKFACInversePeriod)
	case k.LMPeriod < 0:
		return bad("LMPeriod=%d, want > 0 (0 means %d)", k.LMPeriod, DefaultKFACLMPeriod)
	}
	return kfValidateRetry("KFAC", k.Retry)
}

func kfValidateRetry(name string, r kron.Retry) error {
	if r.Tries < 0 {
		return fmt.Errorf("optim: %s: Retry.Tries=%d, want ≥ 0", name, r.Tries)
	}
	if r.Growth != 0 && !(r.Growth > 1 && !math.IsInf(r.Growth, 1)) {
		return fmt.Errorf("optim: %s: Retry.Growth=%g, want finite and > 1 (0 means 10)", name, r.Growth)
	}
	return nil
}

func kfFiniteNonNeg(x float64) bool { return x >= 0 && !math.IsInf(x, 1) }

// Step applies one K-FAC update to every layer. It panics for an invalid
// setting (see Validate) or a shape mismatch. It returns an error, leaving
// the parameters unchanged and the update uncounted, for a missing
// capability (wrapping ErrMissingCapability), NaN or Inf in the records, a
// factorization that fails even after raising the damping, a non-finite
// direction, or an error of Problem.Loss or Problem.GNVec before the update
// (the statistics of the batch may then have been folded in already). An
// error of the Loss evaluated after the update (AdaptDamping) is returned
// with the update applied.
func (k *KFAC) Step(layers []*secondorder.Layer) error {
	checkLayers("KFAC", layers)
	if err := k.Validate(); err != nil {
		panic(err.Error())
	}
	k.ensureState(layers)
	stats := k.StatsDue()
	lm := k.AdaptDamping && (k.t+1)%k.lmPeriod() == 0
	if k.AdaptDamping && k.Problem.Loss == nil {
		return missingCapability("KFAC", "Problem.Loss, needed by AdaptDamping")
	}
	if k.AutoRate && k.Problem.GNVec == nil {
		return missingCapability("KFAC", "Problem.GNVec, needed by AutoRate")
	}
	for j, l := range layers {
		if stats {
			if l.Back == nil {
				return missingCapability("KFAC", fmt.Sprintf("layer %d has no Back (the statistics are due at this update)", j))
			}
			if l.Input == nil {
				panic(fmt.Sprintf("optim: KFAC: layer %d has no Input", j))
			}
		}
		if err := kfCheckFinite("KFAC", j, l, stats); err != nil {
			return err
		}
	}

	k.report.Stats, k.report.Refreshed, k.report.Constrained = stats, false, false
	if stats {
		for j, l := range layers {
			k.updateStats(&k.layers[j], l)
		}
	}
	refresh := k.refreshDue()
	for j := range k.layers {
		if refresh || !k.layers[j].valid {
			if err := k.refresh(j); err != nil {
				return err
			}
			k.report.Refreshed = true
		}
	}

	// Directions U = F̃⁻¹∇ and the inner products the models need, read
	// from the records before any closure runs.
	var gu, gp float64 // ∇ᵀU, ∇ᵀδ_prev
	hasPrev := false
	for j, l := range layers {
		s := &k.layers[j]
		kfGradTheta(&s.theta, l)
		if s.hasPrev {
			hasPrev = true
			gp += kfDot(&s.theta, &s.prev)
		}
		if n, useOuter := kfOuterRows(l); useOuter && s.ft.UseOuter(n) {
			// U = (1/n) (Grad G_d⁻¹)ᵀ ([H 1] Ā_d⁻¹): the same product,
			// in flops proportional to the batch instead of the layer.
			s.gl.Reset()
			s.gl.ReuseAs(n, s.out)
			s.gl.Copy(l.Grad)
			s.hl.Reset()
			s.hl.ReuseAs(n, s.in+1)
			kfAugment(&s.hl, l.Input)
			s.ft.SolveOuter(&s.theta, 1/float64(n), &s.gl, &s.hl)
		} else {
			s.ft.Solve(&s.theta, &s.theta) // U = G_d⁻¹ [∇W ∇b] Ā_d⁻¹
		}
		if !kfFiniteDense(&s.theta) {
			return fmt.Errorf("optim: KFAC: layer %d: the K-FAC direction is not finite (damping %g); parameters left unchanged", j, s.ft.Damping()/k.layerScale(j))
		}
		gu += kfGradDot(l, &s.theta)
	}

	var h0 float64
	if lm {
		var err error
		if h0, err = k.Problem.Loss(); err != nil {
			return fmt.Errorf("optim: KFAC: Problem.Loss before the update: %w", err)
		}
	}
	alpha, mu := k.rate(), k.Momentum
	decrease := math.NaN() // M(δ) − M(0), when known
	if k.AutoRate {
		var err error
		alpha, mu, decrease, err = k.autoRate(gu, gp, hasPrev)
		if err != nil {
			return err
		}
	}
	if c := k.normConstraint(); math.IsNaN(decrease) && alpha*alpha*gu > c {
		// Fixed rate (or AutoRate's fallback to it): keep (αU)ᵀF̃(αU) ≤ C.
		alpha = math.Sqrt(c / gu)
		k.report.Constrained = true
	}
	if !hasPrev {
		mu = 0
	}
	// δ = −α U + μ δ_prev, in place of δ_prev.
	for j := range k.layers {
		s := &k.layers[j]
		p := kfRaw(&s.prev)
		if mu == 0 {
			for i := range p {
				p[i] = 0
			}
		} else {
			floats.Scale(mu, p)
		}
		floats.AddScaled(p, -alpha, kfRaw(&s.theta))
		s.hasPrev = true
	}
	if lm && math.IsNaN(decrease) {
		var err error
		if decrease, err = k.modelDecrease(-alpha*gu + mu*gp); err != nil {
			for j := range k.layers {
				k.layers[j].hasPrev = false // δ was not applied
			}
			return err
		}
	}
	k.t++
	eta := k.rate()
	for j, l := range layers {
		kfApplyTheta(l, &k.layers[j].prev)
		for _, p := range l.Extra {
			axpyVec(p.Value, -eta, p.Grad)
		}
	}
	k.report.Rate, k.report.Momentum = alpha, mu
	if !lm {
		return nil
	}
	h1, err := k.Problem.Loss()
	if err != nil {
		return fmt.Errorf("optim: KFAC: Problem.Loss after the update (applied): %w", err)
	}
	k.adapt(h0, h1, decrease)
	return nil
}

// ensureState allocates the per-layer state at the first Step and checks
// that later Steps pass the same layers.
func (k *KFAC) ensureState(layers []*secondorder.Layer) {
	if k.started {
		if len(layers) != len(k.layers) {
			panic(fmt.Sprintf("optim: KFAC: got %d layers, earlier steps had %d", len(layers), len(k.layers)))
		}
		for j, l := range layers {
			out, in := l.Dims()
			if s := &k.layers[j]; s.out != out || s.in != in {
				panic(fmt.Sprintf("optim: KFAC: layer %d changed shape from %d×%d to %d×%d between steps", j, s.out, s.in, out, in))
			}
		}
		return
	}
	k.started = true
	k.lambda = k.damping()
	k.report.Rho, k.report.ModelDecrease = math.NaN(), math.NaN()
	k.layers = make([]kfacLayer, len(layers))
	maxP := 0
	for j, l := range layers {
		out, in := l.Dims()
		s := &k.layers[j]
		s.out, s.in = out, in
		s.aEst.ReuseAsSym(in + 1)
		s.gEst.ReuseAsSym(out)
		s.theta.ReuseAs(out, in+1)
		s.prev.ReuseAs(out, in+1)
		maxP = max(maxP, out*(in+1))
	}
	k.work[0] = make([]float64, maxP)
	k.work[1] = make([]float64, maxP)
}

// updateStats folds the factor estimates of the record into the averages.
func (k *KFAC) updateStats(s *kfacLayer, l *secondorder.Layer) {
	n, in := l.Input.Dims()
	m, _ := l.Back.Dims()
	rows := n
	if m < n {
		rows = m // τ1 sub-batch: the examples of the rows of Back
	}
	if rows == 0 {
		panic("optim: KFAC: a layer has no examples")
	}
	// Ā = (1/rows) Σ h̃ h̃ᵀ: syrk for E[hhᵀ], gemv with ones for E[h].
	h := l.Input.RawMatrix()
	h.Rows = rows
	a := s.aEst.RawSymmetric()
	blas64.Syrk(blas.Trans, 1/float64(rows), h, 0,
		blas64.Symmetric{Uplo: blas.Upper, N: in, Stride: a.Stride, Data: a.Data})
	if len(k.ones) < rows {
		k.ones = make([]float64, rows)
		for i := range k.ones {
			k.ones[i] = 1
		}
	}
	blas64.Gemv(blas.Trans, 1/float64(rows), h, blas64.Vector{N: rows, Inc: 1, Data: k.ones}, 0,
		blas64.Vector{N: in, Inc: a.Stride, Data: a.Data[in:]})
	a.Data[in*a.Stride+in] = 1
	// G = BackScale · Backᵀ Back.
	scale := l.BackScale
	if scale == 0 {
		scale = 1 / float64(n)
	}
	blas64.Syrk(blas.Trans, scale, l.Back.RawMatrix(), 0, s.gEst.RawSymmetric())
	eps := k.decay()
	s.aAvg.Decay, s.gAvg.Decay = eps, eps
	s.aAvg.Add(&s.aEst)
	s.gAvg.Add(&s.gEst)
}

// refreshDue reports whether the inverses are refreshed at the coming
// update: at every one of the first InversePeriod updates (the warm-up, while
// the averages change fastest), then every InversePeriod updates.
func (k *KFAC) refreshDue() bool {
	T := k.inversePeriod()
	return k.t < T || k.t%T == 0
}

// layerScale returns s_l, the factor from the units of Damping to the
// absolute damping of layer j.
func (k *KFAC) layerScale(j int) float64 {
	if k.AbsoluteDamping {
		return 1
	}
	s := &k.layers[j]
	a, g := s.aAvg.Mean(), s.gAvg.Mean()
	v := mat.Trace(a) / float64(s.in+1) * mat.Trace(g) / float64(s.out)
	if !(v > 0) || math.IsInf(v, 1) {
		return 1
	}
	return v
}

// refresh refactorizes the damped factors of layer j with the current λ.
func (k *KFAC) refresh(j int) error {
	s := &k.layers[j]
	s.ft.Retry = kfRetry(k.Retry)
	scale := k.layerScale(j)
	want := k.lambda * scale
	s.valid = false
	if err := s.ft.Factorize(s.aAvg.Mean(), s.gAvg.Mean(), want); err != nil {
		var fe *kron.FactorError
		if errors.As(err, &fe) {
			name := map[string]string{"A": "input factor Ā", "B": "output factor G"}[fe.Factor]
			return fmt.Errorf("optim: KFAC: layer %d: damped %s not positive definite even with damping %g after %d tries: %w",
				j, name, fe.Damping/scale, s.ft.Retry.Tries, err)
		}
		return fmt.Errorf("optim: KFAC: layer %d: %w", j, err)
	}
	s.valid = true
	if used := s.ft.Damping(); used > want {
		k.report.DampingRaised++
		if k.OnDampingRaised != nil {
			k.OnDampingRaised(j, used/scale)
		}
	}
	return nil
}

// fallback records that a quadratic model was not usable.
func (k *KFAC) fallback(reason string) {
	k.report.Fallbacks++
	k.report.LastFallback = reason
}

// ensureDirs builds, once, the Direction views of U (theta), δ (prev) and
// the GNVec outputs.
func (k *KFAC) ensureDirs() {
	if k.dirs[0] != nil {
		return
	}
	for i := range k.dirs {
		k.dirs[i] = make([]Direction, len(k.layers))
	}
	for j := range k.layers {
		s := &k.layers[j]
		s.fu.ReuseAs(s.out, s.in+1)
		s.fd.ReuseAs(s.out, s.in+1)
		for i, m := range []*mat.Dense{&s.theta, &s.prev, &s.fu, &s.fd} {
			k.dirs[i][j] = Direction{
				W: m.Slice(0, s.out, 0, s.in).(*mat.Dense),
				B: m.ColView(s.in).(*mat.VecDense),
			}
		}
	}
}

// autoRate chooses α and μ minimizing the quadratic model M(−αU + μδ₀)
// (Martens & Grosse §7) and returns them with the model decrease.
func (k *KFAC) autoRate(gu, gp float64, hasPrev bool) (alpha, mu, decrease float64, err error) {
	k.ensureDirs()
	if err := k.Problem.GNVec(k.dirs[2], k.dirs[0]); err != nil {
		return 0, 0, 0, fmt.Errorf("optim: KFAC: Problem.GNVec: %w", err)
	}
	var a11, a12, a22 float64
	for j := range k.layers {
		s := &k.layers[j]
		lam := k.lambda * k.layerScale(j)
		u := kfRaw(&s.theta)
		a11 += kfDot(&s.theta, &s.fu) + lam*floats.Dot(u, u)
	}
	if hasPrev {
		if err := k.Problem.GNVec(k.dirs[3], k.dirs[1]); err != nil {
			return 0, 0, 0, fmt.Errorf("optim: KFAC: Problem.GNVec: %w", err)
		}
		for j := range k.layers {
			s := &k.layers[j]
			lam := k.lambda * k.layerScale(j)
			u, p := kfRaw(&s.theta), kfRaw(&s.prev)
			a12 -= kfDot(&s.theta, &s.fd) + lam*floats.Dot(u, p)
			a22 += kfDot(&s.prev, &s.fd) + lam*floats.Dot(p, p)
		}
	}
	b1, b2 := -gu, gp
	if hasPrev && a11 > 0 && a22 > 0 {
		det := a11*a22 - a12*a12
		if det > 1e-12*a11*a22 && !math.IsInf(det, 0) {
			alpha = -(a22*b1 - a12*b2) / det
			mu = -(a11*b2 - a12*b1) / det
			if alpha > 0 && !math.IsInf(alpha, 0) && !math.IsNaN(mu) && !math.IsInf(mu, 0) {
				return alpha, mu, 0.5 * (b1*alpha + b2*mu), nil
			}
			k.fallback("AutoRate: the 2×2 model gives a non-positive rate; momentum dropped")
		} else {
			k.fallback("AutoRate: the 2×2 model is not positive definite; momentum dropped")
		}
	} else if hasPrev {
		k.fallback("AutoRate: non-positive curvature along the update; momentum dropped")
	}
	if a11 > 0 && !math.IsInf(a11, 0) {
		alpha = -b1 / a11
		if alpha > 0 && !math.IsInf(alpha, 0) {
			return alpha, 0, 0.5 * b1 * alpha, nil
		}
	}
	k.fallback(fmt.Sprintf("AutoRate: curvature %g and slope %g along the K-FAC direction give no positive rate; fixed Rate and Momentum used", a11, -gu))
	return k.rate(), k.Momentum, math.NaN(), nil
}

// modelDecrease returns M(δ) − M(0) = ½ δᵀ(F + Λ)δ + ∇ᵀδ for the update δ
// held in the layers' prev buffers, with F from Problem.GNVec when set and
// the K-FAC approximation otherwise; gd is ∇ᵀδ.
func (k *KFAC) modelDecrease(gd float64) (float64, error) {
	quad := 0.0
	if k.Problem.GNVec != nil {
		k.ensureDirs()
		if err := k.Problem.GNVec(k.dirs[3], k.dirs[1]); err != nil {
			return 0, fmt.Errorf("optim: KFAC: Problem.GNVec: %w", err)
		}
		for j := range k.layers {
			s := &k.layers[j]
			quad += kfDot(&s.prev, &s.fd)
		}
	} else {
		for j := range k.layers {
			s := &k.layers[j]
			a, g := s.aAvg.Mean().RawSymmetric(), s.gAvg.Mean().RawSymmetric()
			na, ng := s.in+1, s.out
			d := kfGeneral(ng, na, kfRaw(&s.prev))
			w0 := kfGeneral(ng, na, k.work[0][:ng*na])
			w1 := kfGeneral(ng, na, k.work[1][:ng*na])
			blas64.Symm(blas.Left, 1, g, d, 0, w0)   // G δ
			blas64.Symm(blas.Right, 1, a, w0, 0, w1) // G δ Ā
			quad += floats.Dot(w1.Data, d.Data)
		}
	}
	for j := range k.layers {
		p := kfRaw(&k.layers[j].prev)
		quad += k.lambda * k.layerScale(j) * floats.Dot(p, p)
	}
	return 0.5*quad + gd, nil
}

// adapt applies the Levenberg–Marquardt rule of Martens & Grosse §6.5.
func (k *KFAC) adapt(h0, h1, decrease float64) {
	rho := (h1 - h0) / decrease
	k.report.Rho, k.report.ModelDecrease = rho, decrease
	omega := math.Pow(19.0/20.0, float64(k.lmPeriod()))
	switch {
	case !(decrease < 0) || math.IsNaN(rho) || math.IsInf(rho, 0):
		k.fallback(fmt.Sprintf("LM: model change %g and loss change %g give no usable ρ; damping raised", decrease, h1-h0))
		k.lambda /= omega
	case rho < 0.25:
		k.lambda /= omega
	case rho > 0.75:
		k.lambda *= omega
	}
	k.lambda = min(max(k.lambda, 1e-16), 1e16)
}

// kfCapabilityError is ErrMissingCapability with the optimizer and the
// missing piece named.
type kfCapabilityError struct{ msg string }

func (e *kfCapabilityError) Error() string { return e.msg }
func (e *kfCapabilityError) Unwrap() error { return ErrMissingCapability }

// missingCapability returns an error wrapping ErrMissingCapability that reads
// "optim: <name>: missing capability: <what>".
func missingCapability(name, what string) error {
	return &kfCapabilityError{msg: "optim: " + name + ": missing capability: " + what}
}

// kfCheckFinite returns an error naming the first field of the record that
// holds a NaN or an Inf. Input and Back are checked when used.
func kfCheckFinite(name string, j int, l *secondorder.Layer, stats bool) error {
	bad := func(field string) error {
		return fmt.Errorf("optim: %s: layer %d: %s holds NaN or Inf; parameters left unchanged", name, j, field)
	}
	switch {
	case !kfFiniteDense(l.GradW):
		return bad("GradW")
	case !kfFiniteVec(l.GradB):
		return bad("GradB")
	case l.Grad != nil && !kfFiniteDense(l.Grad):
		return bad("Grad")
	case stats && l.Back != nil && !kfFiniteDense(l.Back):
		return bad("Back")
	case stats && l.Input != nil && !kfFiniteDense(l.Input):
		return bad("Input")
	case stats && !kfFiniteNonNeg(l.BackScale):
		return bad("BackScale")
	}
	for _, p := range l.Extra {
		if !kfFiniteVec(p.Grad) {
			return bad("Extra " + p.Name + " gradient")
		}
	}
	return nil
}

func kfFiniteDense(m *mat.Dense) bool {
	raw := m.RawMatrix()
	for i := 0; i < raw.Rows; i++ {
		if !kfFiniteSlice(raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]) {
			return false
		}
	}
	return true
}

func kfFiniteVec(v *mat.VecDense) bool {
	raw := v.RawVector()
	if raw.Inc == 1 {
		return kfFiniteSlice(raw.Data[:raw.N])
	}
	for i := 0; i < raw.N; i++ {
		if x := raw.Data[i*raw.Inc]; math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// kfFiniteSlice reports whether every element is finite: x − x is NaN
// exactly for NaN and ±Inf, and NaN propagates through the sum.
func kfFiniteSlice(x []float64) bool {
	s := 0.0
	for _, v := range x {
		s += v - v
	}
	return s == 0
}

// kfGradTheta writes [∇W ∇b] into the n_out × (n_in+1) matrix dst.
func kfGradTheta(dst *mat.Dense, l *secondorder.Layer) {
	out, in := l.Dims()
	d := dst.RawMatrix()
	g := l.GradW.RawMatrix()
	for i := 0; i < out; i++ {
		copy(d.Data[i*d.Stride:i*d.Stride+in], g.Data[i*g.Stride:i*g.Stride+in])
		d.Data[i*d.Stride+in] = l.GradB.AtVec(i)
	}
}

// kfGradDot returns ⟨[∇W ∇b], X⟩ for X of size n_out × (n_in+1).
func kfGradDot(l *secondorder.Layer, x *mat.Dense) float64 {
	out, in := l.Dims()
	xr := x.RawMatrix()
	g := l.GradW.RawMatrix()
	s := 0.0
	for i := 0; i < out; i++ {
		s += floats.Dot(g.Data[i*g.Stride:i*g.Stride+in], xr.Data[i*xr.Stride:i*xr.Stride+in])
		s += l.GradB.AtVec(i) * xr.Data[i*xr.Stride+in]
	}
	return s
}

// kfApplyTheta adds the update [ΔW Δb] to W and b.
func kfApplyTheta(l *secondorder.Layer, d *mat.Dense) {
	out, in := l.Dims()
	dr := d.RawMatrix()
	w := l.W.RawMatrix()
	for i := 0; i < out; i++ {
		floats.Add(w.Data[i*w.Stride:i*w.Stride+in], dr.Data[i*dr.Stride:i*dr.Stride+in])
		l.B.SetVec(i, l.B.AtVec(i)+dr.Data[i*dr.Stride+in])
	}
}

// kfDot returns ⟨X, Y⟩ for contiguous matrices of equal shape.
func kfDot(x, y *mat.Dense) float64 { return floats.Dot(kfRaw(x), kfRaw(y)) }

// kfRaw returns the storage of a contiguous matrix.
func kfRaw(m *mat.Dense) []float64 {
	raw := m.RawMatrix()
	if raw.Stride != raw.Cols {
		panic("optim: internal error: strided buffer")
	}
	return raw.Data[:raw.Rows*raw.Cols]
}

// kfGeneral returns a row-major blas64.General view of data.
func kfGeneral(r, c int, data []float64) blas64.General {
	return blas64.General{Rows: r, Cols: c, Stride: c, Data: data}
}
