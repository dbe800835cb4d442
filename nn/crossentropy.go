package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

var _ Loss = CrossEntropy{}

// CrossEntropy is the multiclass cross-entropy (thesis appendix A.3) for
// softmax outputs f = softmax(a) and targets y_j ≥ 0 (normally a probability
// vector, e.g. one-hot):
//
//	l(f, y) = −Σ_j y_j log f_j = Σ_j y_j (logsumexp(a) − a_j),
//
// the second form being how it is evaluated, from the logits. With
// s = Σ_j y_j (1 for a distribution) its derivatives are
//
//	∇_f l = −y/f                     ∇_a l = s f − y
//	GN:     ∂²l/∂f² = diag(y/f²)                                  (table 3.I)
//	Fisher: D = diag(1/f)                                         (table 3.II, appendix B.3)
//	D_a:    GN SplitLogits s (diag(f) − f fᵀ);
//	        GN SplitOutputs Σ_j y_j (e_j − f)(e_j − f)ᵀ = diag(y) − y fᵀ − f yᵀ + s f fᵀ;
//	        Fisher (both splits) diag(f) − f fᵀ
//
// where the derivatives with respect to f treat f as unconstrained, as the
// thesis does. The predictive distribution is categorical(f), which Sample
// draws from as one-hot rows. It requires a Softmax output. Values of
// CrossEntropy are safe for concurrent use.
type CrossEntropy struct{}

// Name returns "cross-entropy".
func (CrossEntropy) Name() string { return "cross-entropy" }

// Check returns an error unless act is Softmax.
func (CrossEntropy) Check(act Activation) error {
	if _, ok := act.(Softmax); !ok {
		return fmt.Errorf("nn: cross-entropy needs a softmax output activation, have %s", act.Name())
	}
	return nil
}

// Value returns the mean over the batch of l, computed from the logits A.
func (c CrossEntropy) Value(o Output, y *mat.Dense) float64 {
	n, _ := checkLossArgs(c, "Value", o, y)
	s := 0.0
	for i := 0; i < n; i++ {
		s += crossEntropy(row(o.A, i), row(y, i))
	}
	return s / float64(n)
}

// Values writes the per-example losses, computed from the logits A.
func (c CrossEntropy) Values(dst []float64, o Output, y *mat.Dense) {
	n, _ := checkLossArgs(c, "Values", o, y)
	checkLen(c, "Values", dst, n)
	for i := range dst {
		dst[i] = crossEntropy(row(o.A, i), row(y, i))
	}
}

func crossEntropy(a, y []float64) float64 {
	lse := logSumExp(a)
	s := 0.0
	for j, v := range a {
		if y[j] != 0 {
			s += y[j] * (lse - v)
		}
	}
	return s
}

// GradF writes dst = −y/F elementwise (appendix A.3).
func (c CrossEntropy) GradF(dst *mat.Dense, o Output, y *mat.Dense) {
	n, k := checkLossArgs(c, "GradF", o, y)
	checkShape("cross-entropy.GradF", "dst", dst, n, k)
	for i := 0; i < n; i++ {
		d, f, t := row(dst, i), row(o.F, i), row(y, i)
		for j, v := range f {
			d[j] = -t[j] / v
		}
	}
}

// GradA writes row i of dst as s_i f_i − y_i, s_i = Σ_j y_ij: the gradient
// with respect to the logits (f − y for a target distribution).
func (c CrossEntropy) GradA(dst *mat.Dense, o Output, y *mat.Dense) {
	n, k := checkLossArgs(c, "GradA", o, y)
	checkShape("cross-entropy.GradA", "dst", dst, n, k)
	for i := 0; i < n; i++ {
		d, f, t := row(dst, i), row(o.F, i), row(y, i)
		s := sum(t)
		for j, v := range f {
			d[j] = s*v - t[j]
		}
	}
}

// DOutputs writes D with respect to the outputs f of example i: diag(y/f²)
// for GaussNewton (table 3.I), diag(1/f) for Fisher (table 3.II).
func (c CrossEntropy) DOutputs(dst *mat.Dense, cv Curvature, o Output, y *mat.Dense, i int) {
	n, k := checkLossArgs(c, "DOutputs", o, y)
	checkCurvature(c, "DOutputs", cv, SplitOutputs)
	checkExample(c, "DOutputs", i, n)
	useDst("cross-entropy.DOutputs", dst, k, k)
	f, t := row(o.F, i), row(y, i)
	if cv == Fisher {
		diagOnly(dst, func(j int) float64 { return 1 / f[j] })
		return
	}
	diagOnly(dst, func(j int) float64 { return t[j] / (f[j] * f[j]) })
}

// DLogits writes D_a of example i: diag(f) − f fᵀ for Fisher,
// s (diag(f) − f fᵀ) for GaussNewton with SplitLogits (the Hessian of l with
// respect to a), and Σ_j y_j (e_j − f)(e_j − f)ᵀ = J_φᵀ diag(y/f²) J_φ for
// GaussNewton with SplitOutputs.
func (c CrossEntropy) DLogits(dst *mat.Dense, cv Curvature, sp Split, o Output, y *mat.Dense, i int) {
	n, k := checkLossArgs(c, "DLogits", o, y)
	checkCurvature(c, "DLogits", cv, sp)
	checkExample(c, "DLogits", i, n)
	useDst("cross-entropy.DLogits", dst, k, k)
	f, t := row(o.F, i), row(y, i)
	s := sum(t)
	for p := 0; p < k; p++ {
		for q := 0; q < k; q++ {
			var v float64
			switch {
			case cv == Fisher:
				v = -f[p] * f[q]
				if p == q {
					v += f[p]
				}
			case sp == SplitLogits:
				v = -s * f[p] * f[q]
				if p == q {
					v += s * f[p]
				}
			default:
				v = -t[p]*f[q] - f[p]*t[q] + s*f[p]*f[q]
				if p == q {
					v += t[p]
				}
			}
			dst.Set(p, q, v)
		}
	}
}

// SqrtD writes rows w_j (e_j − f_i), j = 0 … k−1, for example i into rows
// i·k+j of dst, with w_j = √f_j for Fisher, √(s f_j) for GaussNewton with
// SplitLogits and √y_j for GaussNewton with SplitOutputs. Then
// S_iᵀ S_i = Σ_j w_j² (e_j − f)(e_j − f)ᵀ = D_a; with Σ_j f_j = 1 this is
// diag(w²) − f (w²)ᵀ − w² fᵀ + (Σ_j w_j²) f fᵀ. For a one-hot target and
// SplitOutputs the only non-zero row is e_t − f = ∇_a l (thesis §3.1.5).
func (c CrossEntropy) SqrtD(dst *mat.Dense, cv Curvature, sp Split, o Output, y *mat.Dense) {
	n, k := checkLossArgs(c, "SqrtD", o, y)
	checkCurvature(c, "SqrtD", cv, sp)
	useDst("cross-entropy.SqrtD", dst, n*k, k)
	for i := 0; i < n; i++ {
		f, t := row(o.F, i), row(y, i)
		s := sum(t)
		for j := 0; j < k; j++ {
			var w float64
			switch {
			case cv == Fisher:
				w = math.Sqrt(f[j])
			case sp == SplitLogits:
				w = math.Sqrt(s * f[j])
			default:
				w = math.Sqrt(t[j])
			}
			r := row(dst, i*k+j)
			for m, v := range f {
				r[m] = -w * v
			}
			r[j] += w
		}
	}
}

// Sample writes into row i of dst a one-hot target e_t with t drawn from
// categorical(f_i).
func (c CrossEntropy) Sample(dst *mat.Dense, o Output, rng *rand.Rand) {
	n, k := checkLossArgs(c, "Sample", o, nil)
	checkShape("cross-entropy.Sample", "dst", dst, n, k)
	for i := 0; i < n; i++ {
		d, f := row(dst, i), row(o.F, i)
		clear(d)
		u := rng.Float64()
		t := k - 1
		acc := 0.0
		for j, v := range f {
			acc += v
			if u < acc {
				t = j
				break
			}
		}
		d[t] = 1
	}
}

func sum(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s
}
