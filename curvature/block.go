package curvature

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/kron"
)

// Block is the curvature block of one affine layer, owning its statistics,
// after kfac-jax's CurvatureBlock. It estimates the layer's P×P block C of the
// Gauss–Newton or Fisher matrix (P = n_out(n_in+1), in the order of
// θ = [vec(W); b]) from the layer's records, keeps a factorization of the
// damped estimate C + λI (or of the method's damped form of it, such as the
// factored Tikhonov damping of K-FAC), and applies its inverse.
//
// Directions and gradients are n_out × (n_in+1) matrices [ΔW Δb]
// (secondorder.Direction, secondorder.Layer.ParamGrad), the shape of the
// argument of every Kronecker-factored solve.
//
// The blocks of this package are KFACBlock (Ā ⊗ G, Martens & Grosse 2015),
// ACPBlock (Ā ⊗ αI, thesis §3.3.3–3.4.2), ExactBlock (the dense per-layer
// block of eq. 3.3.2, block-diagonal Newton, §3.1.6) and DiagonalBlock (the
// diagonal of that block). A block is created empty; its shapes are fixed by
// the first Update. In steady state no method allocates. They also
// implement Staged, so that an optimizer can undo the Update, SetAlpha and
// Refresh of a step it refuses.
//
// Implementations need not be safe for concurrent use, and those of this
// package are not.
type Block interface {
	// Update folds the statistics of the layer's record (Input, Grad, Back,
	// BackScale, BackExamples, as the block needs) into the estimate. The
	// record must be finite; Update does not check.
	Update(l *secondorder.Layer)
	// Scale returns the mean eigenvalue tr(C)/P of the current estimate, the
	// unit of relative damping; 1 when the estimate is empty, zero or not
	// finite.
	Scale() float64
	// Refresh factorizes the estimate damped by λ = lambda (absolute, in the
	// units of C), in one attempt. It returns an error wrapping
	// ErrNotPositiveDefinite when the damped estimate is not positive
	// definite, and ErrNoEstimate before the first Update; the previous
	// factorization is then kept. RefreshDamped raises λ and retries.
	Refresh(lambda float64) error
	// Ready reports whether a factorization is held, so that Precondition
	// may be called.
	Ready() bool
	// Precondition writes into dst (n_out × (n_in+1)) the direction
	// (C + λI)⁻¹ [∇W ∇b] for the layer's current record, λ that of the last
	// successful Refresh. It may use the record's Input and Grad to work on
	// the batch side when that is cheaper.
	Precondition(dst *mat.Dense, l *secondorder.Layer)
	// Mul writes dst = C v for a direction v (n_out × (n_in+1)), with the
	// undamped current estimate: the quadratic form of the block.
	Mul(dst, v *mat.Dense)
}

// The blocks of this package, checked at compile time.
var _ = []Block{(*KFACBlock)(nil), (*ACPBlock)(nil), (*ExactBlock)(nil), (*DiagonalBlock)(nil), (*EKFACBlock)(nil), (*ShampooBlock)(nil), (*SOAPBlock)(nil)}

// ErrNotPositiveDefinite is wrapped by Block.Refresh when the damped estimate
// cannot be factorized.
var ErrNotPositiveDefinite = kron.ErrNotPositiveDefinite

// RestartDamping is the damping, relative to the block's Scale, from which
// RefreshDamped restarts when the estimate is not positive definite without
// damping.
const RestartDamping = 1e-4

// ErrNoEstimate is returned by Block.Refresh before the first Update.
var ErrNoEstimate = errors.New("curvature: block has no estimate yet (Refresh before Update)")

// RefreshDamped factorizes b with the damping lambda and, when the damped
// estimate is not positive definite, raises the damping and tries again: a
// zero damping restarts from RestartDamping·b.Scale(), a positive one is multiplied by
// retry.Growth, for up to retry.Tries attempts in all (the zero value of
// kron.Retry means 10 attempts and growth 10). It returns the damping of the
// factorization in place, which is larger than lambda when it was raised,
// or the last error. The loop is kron.Retry.Run, the module's one
// raise-and-refactorize loop.
//
// The restart of a zero damping is relative to the block's mean eigenvalue
// and not tiny: a singular estimate (a batch of identical inputs makes every
// input covariance zero) factorized with 1e-10·Scale gave ACP a step that
// took the risk from 3.8 to 10²⁸ in five steps, with 10⁻⁴·Scale it decreases.
func RefreshDamped(b Block, lambda float64, retry kron.Retry) (used float64, err error) {
	if !(lambda >= 0) || math.IsInf(lambda, 1) {
		panic(fmt.Sprintf("curvature: RefreshDamped: damping %g, want finite and ≥ 0", lambda))
	}
	if retry.Tries == 0 {
		retry.Tries = 10
	}
	if retry.Tries < 1 || (retry.Growth != 0 && !(retry.Growth > 1)) {
		panic(fmt.Sprintf("curvature: RefreshDamped: retry %+v, want Tries ≥ 1 and Growth > 1 (0 for the defaults)", retry))
	}
	noEstimate := false
	used, err = retry.Run(lambda, RestartDamping*b.Scale(), func(lambda float64) error {
		err := b.Refresh(lambda)
		if err == ErrNoEstimate {
			noEstimate = true
			return nil // stop: nothing to factorize
		}
		return err
	})
	if noEstimate {
		return used, ErrNoEstimate
	}
	return used, err
}
