package curvature

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/matutil"
)

// ErrScale is returned when the heuristic scale α of the amortized
// covariance preconditioner is not a positive finite number: every entry of
// the gradient is zero, or one is NaN or infinite.
var ErrScale = errors.New("curvature: ACP scale is not positive and finite")

// MaxSquaredGrad returns the heuristic scale α of the amortized covariance
// preconditioner (thesis §3.4.2),
//
//	α = max_{i ∈ batch, j ≤ n_out} (∇_{a_i} l)_j²,
//
// for the per-example pre-activation gradients in the rows of grad (a
// record's Grad). A NaN entry makes the result NaN.
func MaxSquaredGrad(grad mat.Matrix) float64 {
	return maxSquared(matutil.AsDense(grad).RawMatrix())
}

// maxSquared is MaxSquaredGrad on raw storage, without allocation: the one
// implementation of the heuristic α, shared with ACPBlock.
func maxSquared(g blas64.General) float64 {
	alpha := 0.0
	for i := 0; i < g.Rows; i++ {
		for _, v := range g.Data[i*g.Stride : i*g.Stride+g.Cols] {
			if math.IsNaN(v) {
				return math.NaN()
			}
			alpha = max(alpha, v*v)
		}
	}
	return alpha
}

// ACPScale chooses the scale α of the output side αI of the amortized
// covariance preconditioner F_in = Ā ⊗ αI (thesis §3.3.3, §3.4.2). The zero
// value selects the heuristic. Values of ACPScale are safe for concurrent
// use.
type ACPScale struct {
	// Fixed is α when positive, a hyperparameter to tune (thesis §3.4.2,
	// first approach). Zero selects the heuristic MaxSquaredGrad of the
	// layer's Grad, a different α for every layer and minibatch (second
	// approach).
	Fixed float64
}

// Alpha returns α for the layer. With the heuristic it returns ErrScale
// (wrapped, with the layer's value) when α is not positive and finite.
func (s ACPScale) Alpha(l *secondorder.Layer) (float64, error) {
	if s.Fixed < 0 || math.IsNaN(s.Fixed) || math.IsInf(s.Fixed, 0) {
		panic(fmt.Sprintf("curvature: ACPScale: Fixed is %g, want positive and finite, or 0 for the heuristic", s.Fixed))
	}
	if s.Fixed > 0 {
		return s.Fixed, nil
	}
	checkLayer(l, "ACPScale.Alpha", false, true, false)
	alpha := MaxSquaredGrad(l.Grad)
	if !(alpha > 0) || math.IsInf(alpha, 0) {
		return alpha, fmt.Errorf("%w: max (∇_a l)² = %g", ErrScale, alpha)
	}
	return alpha, nil
}

// DenseACP writes into dst the dense damped covariance preconditioner of
// thesis §3.4.2,
//
//	Ā ⊗ αI_out + λI,
//
// with a = Ā the bias-augmented second moment (InputFactor), n_out outputs,
// scale α and Tikhonov damping λ, in the order of θ = [vec(W); b]. It is the
// dense reference for the closed-form inverse of kron.AugmentedInverse. An
// empty dst is resized. For tests and small layers.
func DenseACP(dst *mat.SymDense, a mat.Symmetric, out int, alpha, lambda float64) {
	if out <= 0 {
		panic(fmt.Sprintf("curvature: DenseACP: n_out = %d, want positive", out))
	}
	na := a.SymmetricDim()
	reuseSym(dst, na*out, "DenseACP")
	dst.Zero()
	for i := 0; i < na; i++ {
		for j := i; j < na; j++ {
			v := alpha * a.At(i, j)
			for o := 0; o < out; o++ {
				dst.SetSym(i*out+o, j*out+o, v)
			}
		}
	}
	for p := 0; p < na*out; p++ {
		dst.SetSym(p, p, dst.At(p, p)+lambda)
	}
}
