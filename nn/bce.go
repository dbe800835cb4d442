package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

var _ Loss = BinaryCrossEntropy{}

// BinaryCrossEntropy is the cross-entropy of k independent binary decisions
// (thesis appendix A.2), summed over the outputs, for sigmoid outputs
// f = σ(a) and targets y_j ∈ [0, 1]:
//
//	l(f, y) = −Σ_j [y_j log f_j + (1−y_j) log(1−f_j)]
//	        = Σ_j softplus(a_j) − y_j a_j,
//
// the second form being how it is evaluated, from the logits, so that it
// neither overflows nor loses precision when f saturates. Its derivatives are
//
//	∇_f l = (f − y) / (f(1−f))            ∇_a l = f − y
//	GN:     ∂²l/∂f² = diag(y/f² + (1−y)/(1−f)²)       (table 3.I)
//	Fisher: D = diag(1/(f(1−f)))                       (table 3.II, appendix B.2)
//	D_a:    GN SplitLogits diag(f(1−f)); GN SplitOutputs diag(y(1−f)² + (1−y)f²);
//	        Fisher (both splits) diag(f(1−f))
//
// with all operations elementwise. The predictive distribution is a product
// of Bernoulli(f_j), which Sample draws from. It requires a Sigmoid output.
// Values of BinaryCrossEntropy are safe for concurrent use.
type BinaryCrossEntropy struct{}

// Name returns "binary cross-entropy".
func (BinaryCrossEntropy) Name() string { return "binary cross-entropy" }

// Check returns an error unless act is Sigmoid.
func (BinaryCrossEntropy) Check(act Activation) error {
	if _, ok := act.(Sigmoid); !ok {
		return fmt.Errorf("nn: binary cross-entropy needs a sigmoid output activation, have %s", act.Name())
	}
	return nil
}

// Value returns the mean over the batch of l, computed from the logits A.
func (b BinaryCrossEntropy) Value(o Output, y *mat.Dense) float64 {
	n, _ := checkLossArgs(b, "Value", o, y)
	s := 0.0
	for i := 0; i < n; i++ {
		s += bce(row(o.A, i), row(y, i))
	}
	return s / float64(n)
}

// Values writes the per-example losses, computed from the logits A.
func (b BinaryCrossEntropy) Values(dst []float64, o Output, y *mat.Dense) {
	n, _ := checkLossArgs(b, "Values", o, y)
	checkLen(b, "Values", dst, n)
	for i := range dst {
		dst[i] = bce(row(o.A, i), row(y, i))
	}
}

func bce(a, y []float64) float64 {
	s := 0.0
	for j, v := range a {
		s += softplus(v) - y[j]*v
	}
	return s
}

// GradF writes dst = (F − y)/(F(1−F)) elementwise (appendix A.2).
func (b BinaryCrossEntropy) GradF(dst *mat.Dense, o Output, y *mat.Dense) {
	n, k := checkLossArgs(b, "GradF", o, y)
	checkShape("binary cross-entropy.GradF", "dst", dst, n, k)
	for i := 0; i < n; i++ {
		d, f, t := row(dst, i), row(o.F, i), row(y, i)
		for j, v := range f {
			d[j] = (v - t[j]) / (v * (1 - v))
		}
	}
}

// GradA writes dst = F − y, the gradient with respect to the logits.
func (b BinaryCrossEntropy) GradA(dst *mat.Dense, o Output, y *mat.Dense) {
	n, k := checkLossArgs(b, "GradA", o, y)
	checkShape("binary cross-entropy.GradA", "dst", dst, n, k)
	for i := 0; i < n; i++ {
		d, f, t := row(dst, i), row(o.F, i), row(y, i)
		for j, v := range f {
			d[j] = v - t[j]
		}
	}
}

// DOutputs writes D with respect to the outputs f of example i:
// diag(y/f² + (1−y)/(1−f)²) for GaussNewton (table 3.I), diag(1/(f(1−f)))
// for Fisher (table 3.II).
func (b BinaryCrossEntropy) DOutputs(dst *mat.Dense, c Curvature, o Output, y *mat.Dense, i int) {
	n, k := checkLossArgs(b, "DOutputs", o, y)
	checkCurvature(b, "DOutputs", c, SplitOutputs)
	checkExample(b, "DOutputs", i, n)
	useDst("binary cross-entropy.DOutputs", dst, k, k)
	f, t := row(o.F, i), row(y, i)
	if c == Fisher {
		diagOnly(dst, func(j int) float64 { return 1 / (f[j] * (1 - f[j])) })
		return
	}
	diagOnly(dst, func(j int) float64 {
		return t[j]/(f[j]*f[j]) + (1-t[j])/((1-f[j])*(1-f[j]))
	})
}

// DLogits writes D_a of example i: diag(f(1−f)) for Fisher and for
// GaussNewton with SplitLogits (the Hessian of l with respect to a), and
// diag(y(1−f)² + (1−y)f²) = J_φᵀ (∂²l/∂f²) J_φ for GaussNewton with
// SplitOutputs.
func (b BinaryCrossEntropy) DLogits(dst *mat.Dense, c Curvature, s Split, o Output, y *mat.Dense, i int) {
	n, k := checkLossArgs(b, "DLogits", o, y)
	checkCurvature(b, "DLogits", c, s)
	checkExample(b, "DLogits", i, n)
	useDst("binary cross-entropy.DLogits", dst, k, k)
	f, t := row(o.F, i), row(y, i)
	diagOnly(dst, func(j int) float64 { return bceDA(c, s, f[j], t[j]) })
}

// DLogitsDiag writes the diagonal of DLogits into dst and reports true:
// the D_a of the binary cross-entropy is always diagonal (see
// DiagonalLoss).
func (b BinaryCrossEntropy) DLogitsDiag(dst []float64, c Curvature, s Split, o Output, y *mat.Dense, i int) bool {
	n, k := checkLossArgs(b, "DLogitsDiag", o, y)
	checkCurvature(b, "DLogitsDiag", c, s)
	checkExample(b, "DLogitsDiag", i, n)
	f, t := row(o.F, i), row(y, i)
	diagInto(b, "DLogitsDiag", dst, k, func(j int) float64 { return bceDA(c, s, f[j], t[j]) })
	return true
}

func bceDA(c Curvature, s Split, f, y float64) float64 {
	if c == GaussNewton && s == SplitOutputs {
		return y*(1-f)*(1-f) + (1-y)*f*f
	}
	return f * (1 - f)
}

// SqrtD writes the diagonal factor: row i·k+j of dst is √(D_a)_jj e_j with
// D_a as in DLogits.
func (b BinaryCrossEntropy) SqrtD(dst *mat.Dense, c Curvature, s Split, o Output, y *mat.Dense) {
	n, k := checkLossArgs(b, "SqrtD", o, y)
	checkCurvature(b, "SqrtD", c, s)
	useDst("binary cross-entropy.SqrtD", dst, n*k, k)
	for i := 0; i < n; i++ {
		f, t := row(o.F, i), row(y, i)
		for j := 0; j < k; j++ {
			r := row(dst, i*k+j)
			clear(r)
			r[j] = math.Sqrt(bceDA(c, s, f[j], t[j]))
		}
	}
}

// Sample writes y_ij ∼ Bernoulli(f_ij), as 0 or 1.
func (b BinaryCrossEntropy) Sample(dst *mat.Dense, o Output, rng *rand.Rand) {
	n, k := checkLossArgs(b, "Sample", o, nil)
	checkShape("binary cross-entropy.Sample", "dst", dst, n, k)
	for i := 0; i < n; i++ {
		d, f := row(dst, i), row(o.F, i)
		for j, v := range f {
			if rng.Float64() < v {
				d[j] = 1
			} else {
				d[j] = 0
			}
		}
	}
}
