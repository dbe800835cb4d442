package curvature

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// DefaultHutchinsonSamples is the number of probes of a zero-value
// Hutchinson estimator.
const DefaultHutchinsonSamples = 100

// Hutchinson estimates the trace and the diagonal of a symmetric matrix A
// from S products A z with independent Rademacher probes z (entries ±1;
// Hutchinson 1990; Bekas, Kokiopoulou & Saad 2007 for the diagonal):
//
//	tr A ≈ (1/S) Σ_s z_sᵀ A z_s,         diag A ≈ (1/S) Σ_s z_s ∘ A z_s.
//
// Both are unbiased, and exact for a diagonal A. Their variances per probe
// are Var(zᵀAz) = 2 Σ_{i≠j} A_ij² and Var(z_i (Az)_i) = Σ_{j≠i} A_ij², so the
// standard errors, which the methods return from the sample variance of
// the probes, shrink as 1/√S. With curvature/network's operators it gives
// the diagonal and trace of a network's Hessian, Gauss–Newton or Fisher
// matrix at a cost of S R-operator passes (the exact diagonal of the
// Gauss–Newton and Fisher blocks comes cheaper from the records, see
// DiagonalBlock).
//
// The zero value is ready to use: DefaultHutchinsonSamples probes drawn from
// a fixed seed.
type Hutchinson struct {
	// Samples is S ≥ 1; zero means DefaultHutchinsonSamples.
	Samples int
	// Rand draws the probes; nil means a source with a fixed seed, so that
	// results repeat.
	Rand *rand.Rand
}

// Estimate is a Monte-Carlo estimate with its standard error, the sample
// standard deviation of the per-probe values divided by √Samples.
type Estimate struct {
	Value, StdErr float64
	Samples       int
}

func (h Hutchinson) settings(name string) (int, *rand.Rand) {
	return countSetting(h.Samples, DefaultHutchinsonSamples, name, "Samples"), orDefaultRand(h.Rand)
}

// Trace returns the estimate of tr A. It returns an error when a product is
// not finite.
func (h Hutchinson) Trace(op LinearOperator) (Estimate, error) {
	const name = "Hutchinson.Trace"
	n := checkDim(op, name)
	s, rng := h.settings(name)
	z := mat.NewVecDense(n, nil)
	az := mat.NewVecDense(n, nil)
	var mean, m2 float64 // Welford
	for k := 0; k < s; k++ {
		rademacher(z.RawVector().Data, rng)
		if err := mulChecked(op, az, z, name, k); err != nil {
			return Estimate{}, err
		}
		x := mat.Dot(z, az)
		d := x - mean
		mean += d / float64(k+1)
		m2 += d * (x - mean)
	}
	return Estimate{Value: mean, StdErr: stdErr(m2, s), Samples: s}, nil
}

// Diagonal writes the estimate of diag A into dst and the standard errors
// of its entries into stderr, which may be nil; empty destinations are
// resized. It returns an error when a product is not finite, with dst and
// stderr then unspecified.
func (h Hutchinson) Diagonal(dst, stderr *mat.VecDense, op LinearOperator) error {
	const name = "Hutchinson.Diagonal"
	n := checkDim(op, name)
	s, rng := h.settings(name)
	reuseVec(dst, n, name)
	if stderr != nil {
		reuseVec(stderr, n, name)
	}
	z := mat.NewVecDense(n, nil)
	az := mat.NewVecDense(n, nil)
	mean := dst.RawVector().Data
	m2 := make([]float64, n)
	for i := range mean {
		mean[i] = 0
	}
	zd, azd := z.RawVector().Data, az.RawVector().Data
	for k := 0; k < s; k++ {
		rademacher(zd, rng)
		if err := mulChecked(op, az, z, name, k); err != nil {
			return err
		}
		inv := 1 / float64(k+1)
		for i, zi := range zd {
			x := zi * azd[i]
			d := x - mean[i]
			mean[i] += d * inv
			m2[i] += d * (x - mean[i])
		}
	}
	if stderr != nil {
		for i, v := range m2 {
			stderr.SetVec(i, stdErr(v, s))
		}
	}
	return nil
}

// stdErr returns the standard error of a mean of s values whose sum of
// squared deviations is m2 (0 for a single value).
func stdErr(m2 float64, s int) float64 {
	if s < 2 {
		return 0
	}
	return math.Sqrt(math.Max(m2, 0) / float64(s-1) / float64(s))
}
