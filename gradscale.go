package secondorder

import (
	"errors"
	"fmt"
	"math"
)

// ErrGradDividedByN is wrapped by the error of CheckGradScale.
var ErrGradDividedByN = errors.New("Grad looks divided by the batch size")

// gradScaleTol is the relative distance ‖Σ_i Grad_i − GradB‖ / ‖GradB‖
// under which CheckGradScale takes GradB for the sum of Grad's rows. A
// record that follows the conventions sits at distance n − 1 ≥ 1.
const gradScaleTol = 1e-6

// CheckGradScale returns an error wrapping ErrGradDividedByN when the
// record's rows of Grad sum, rather than average, to GradB:
//
//	Σ_i Grad_i = GradB   instead of   (1/n) Σ_i Grad_i = GradB
//
// (to a relative 1e-6). That is what a record holds whose Grad rows are
// gradients of the mean loss — PyTorch's reduction="mean", whose hooks
// give ∇_{a_i} R = ∇_{a_i} l / n — while GradW and GradB are the risk's
// gradients, or whose GradW and GradB were summed over the batch instead
// of averaged. Either way the per-example quantities are n times too
// small relative to the gradient (the Kronecker factor built from Grad is
// n² times too small), and a curvature method is quietly worse; the fix
// is to multiply Grad by n (docs/porting.md).
//
// The check costs n·n_out additions. It needs n ≥ 2 rows of Grad, GradB,
// and a GradB that is not zero; otherwise it returns nil. A layer without
// a bias cannot be checked this cheaply.
func (l *Layer) CheckGradScale() error {
	if l.Grad == nil || l.GradB == nil {
		return nil
	}
	n, out := l.Grad.Dims()
	if n < 2 || l.GradB.Len() != out {
		return nil
	}
	g := l.Grad.RawMatrix()
	var diff, norm float64
	for j := 0; j < out; j++ {
		s := 0.0
		for i := 0; i < n; i++ {
			s += g.Data[i*g.Stride+j]
		}
		b := l.GradB.AtVec(j)
		diff += (s - b) * (s - b)
		norm += b * b
	}
	if !(norm > 0) || math.IsInf(norm, 0) || !(diff <= gradScaleTol*gradScaleTol*norm) {
		return nil
	}
	return fmt.Errorf("%w: GradB is the sum of Grad's %d rows, not their mean: Grad holds gradients of the mean loss (as PyTorch's reduction=\"mean\" gives them), or GradW and GradB were summed instead of averaged; multiply Grad by n = %d, or divide GradW and GradB by it", ErrGradDividedByN, n, n)
}
