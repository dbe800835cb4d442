package curvature

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// DefaultSLQProbes is the number of probes of a zero-value SLQ.
const DefaultSLQProbes = 10

// SLQ is stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; used for
// the Hessian spectra of neural networks by Ghorbani, Krishnan & Xiao 2019
// and Papyan 2019): the spectral density φ(t) = (1/n) Σ_i δ(t − λ_i) of a
// symmetric operator A, and spectral sums tr f(A), from Lanczos runs
// started at normalised Rademacher probes z_p/√n. For each probe the Ritz
// values θ_pj and weights τ_pj of a k-step run form the Gauss quadrature
// rule of the probe's spectral measure, so that
//
//	tr f(A) ≈ (n/P) Σ_p Σ_j τ_pj f(θ_pj),   φ ≈ (1/P) Σ_p Σ_j τ_pj δ(· − θ_pj),
//
// each probe's term being z_pᵀ f(A) z_p up to the quadrature error (zero
// for polynomials of degree below 2k): Hutchinson's estimator of tr f(A).
//
// The zero value is ready to use: DefaultSLQProbes probes of
// DefaultLanczosSteps steps (capped at n), drawn from a fixed seed.
type SLQ struct {
	// Steps is the number k of Lanczos steps per probe; zero means
	// DefaultLanczosSteps.
	Steps int
	// Probes is P ≥ 1; zero means DefaultSLQProbes.
	Probes int
	// Rand draws the probes; nil means a source with a fixed seed.
	Rand *rand.Rand
}

// Quadrature holds the Gauss quadrature rules of SLQ's probes for an
// operator of dimension N.
type Quadrature struct {
	N int
	// Nodes[p] and Weights[p] are the Ritz values and weights of probe p;
	// each Weights[p] sums to 1.
	Nodes, Weights [][]float64
}

// Run runs one Lanczos iteration per probe on op. It returns the errors of
// Lanczos.Run.
func (s SLQ) Run(op LinearOperator) (*Quadrature, error) {
	const name = "SLQ.Run"
	n := checkDim(op, name)
	p := countSetting(s.Probes, DefaultSLQProbes, name, "Probes")
	rng := orDefaultRand(s.Rand)
	q := &Quadrature{N: n, Nodes: make([][]float64, p), Weights: make([][]float64, p)}
	z := mat.NewVecDense(n, nil)
	for k := 0; k < p; k++ {
		rademacher(z.RawVector().Data, rng)
		r, err := Lanczos{Steps: s.Steps, Start: z}.Run(op)
		if err != nil {
			return nil, fmt.Errorf("curvature: %s: probe %d: %w", name, k, err)
		}
		q.Nodes[k], q.Weights[k] = r.Values, r.Weights
	}
	return q, nil
}

// Trace returns the estimate of tr f(A), (n/P) Σ_p Σ_j τ_pj f(θ_pj), with
// the standard error of the mean over the probes.
func (q *Quadrature) Trace(f func(float64) float64) Estimate {
	var mean, m2 float64
	for p, nodes := range q.Nodes {
		x := 0.0
		for j, t := range nodes {
			x += q.Weights[p][j] * f(t)
		}
		x *= float64(q.N)
		d := x - mean
		mean += d / float64(p+1)
		m2 += d * (x - mean)
	}
	return Estimate{Value: mean, StdErr: stdErr(m2, len(q.Nodes)), Samples: len(q.Nodes)}
}

// Density writes into dst[i] the spectral density at t[i] smoothed by a
// Gaussian of standard deviation sigma > 0,
// (1/P) Σ_p Σ_j τ_pj exp(−(t − θ_pj)²/2σ²)/(σ√2π), which integrates to 1.
func (q *Quadrature) Density(dst, t []float64, sigma float64) {
	if len(dst) != len(t) {
		panic(fmt.Sprintf("curvature: Quadrature.Density: %d destinations for %d points", len(dst), len(t)))
	}
	if !(sigma > 0) || math.IsInf(sigma, 0) {
		panic(fmt.Sprintf("curvature: Quadrature.Density: sigma = %v, want finite and > 0", sigma))
	}
	c := 1 / (sigma * math.Sqrt(2*math.Pi) * float64(len(q.Nodes)))
	for i, x := range t {
		s := 0.0
		for p, nodes := range q.Nodes {
			for j, th := range nodes {
				u := (x - th) / sigma
				s += q.Weights[p][j] * math.Exp(-u*u/2)
			}
		}
		dst[i] = c * s
	}
}

// Range returns the smallest and largest node over the probes, estimates
// of the extreme eigenvalues of A.
func (q *Quadrature) Range() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, nodes := range q.Nodes {
		for _, t := range nodes {
			lo, hi = math.Min(lo, t), math.Max(hi, t)
		}
	}
	return lo, hi
}
