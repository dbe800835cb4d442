package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// Initializer sets the initial weights and biases of one affine layer
// (thesis §2.4.2). W is n_out × n_in. Implementations need not be safe for
// concurrent use; those of this package are.
type Initializer interface {
	Init(W *mat.Dense, b *mat.VecDense, rng *rand.Rand)
}

var (
	_ Initializer = Glorot{}
	_ Initializer = He{}
	_ Initializer = Sparse{}
)

// Init initializes every layer with init, drawing from rng in layer order,
// so that a fixed seed gives a fixed network. It also resets normalised
// layers to γ = 1, β = 0, running mean 0 and running variance 1, and
// whitened layers to U = I, μ = 0 (so that V, d are the initial W, b).
func (net *Network) Init(init Initializer, rng *rand.Rand) {
	for _, l := range net.layers {
		init.Init(l.w, l.b, rng)
		if l.norm != nil {
			l.norm.reset()
		}
		if l.wh != nil {
			l.wh.reset()
		}
	}
}

// Glorot is the normalized initialization of Glorot & Bengio (2010, eq. 16)
// in the form of thesis §2.4.2: weights drawn independently from the
// uniform distribution of variance α/(n_in+n_out), that is on [−r, r] with
// r = √(3α/(n_in+n_out)); biases zero. Values of Glorot are safe for
// concurrent use.
type Glorot struct {
	// Alpha is α. Zero means 2, the papers' default (r = √6/√(n_in+n_out)).
	// Glorot & Bengio suggest 4 times more for sigmoid units; the thesis
	// tunes α by random search.
	Alpha float64
}

// Init sets W and b.
func (g Glorot) Init(W *mat.Dense, b *mat.VecDense, rng *rand.Rand) {
	alpha := checkAlpha("Glorot", W, b, g.Alpha)
	out, in := W.Dims()
	r := math.Sqrt(3 * alpha / float64(in+out))
	fillW(W, func() float64 { return r * (2*rng.Float64() - 1) })
	b.Zero()
}

// He is the initialization of He et al. (2015) in the form of thesis
// §2.4.2: weights drawn independently from the Gaussian N(0, α/n_in), as in
// the paper; biases zero. Values of He are safe for concurrent use.
type He struct {
	// Alpha is α. Zero means 2, the paper's default for ReLU units.
	Alpha float64
}

// Init sets W and b.
func (h He) Init(W *mat.Dense, b *mat.VecDense, rng *rand.Rand) {
	alpha := checkAlpha("He", W, b, h.Alpha)
	_, in := W.Dims()
	sd := math.Sqrt(alpha / float64(in))
	fillW(W, func() float64 { return sd * rng.NormFloat64() })
	b.Zero()
}

// Sparse is the sparse initialization of Martens (2010): each unit (row
// of W) gets Count non-zero incoming weights, at distinct inputs chosen
// uniformly, drawn from N(0, Std²); the other weights and the biases are
// zero. A layer with at most Count inputs gets all its weights drawn.
// Values of Sparse are safe for concurrent use.
type Sparse struct {
	// Count is the number of non-zero incoming weights per unit. Zero means
	// 15, Martens' value.
	Count int
	// Std is the standard deviation of the non-zero weights. Zero means 1,
	// Martens' value.
	Std float64
}

// Init sets W and b.
func (s Sparse) Init(W *mat.Dense, b *mat.VecDense, rng *rand.Rand) {
	count, sd := s.Count, s.Std
	if count == 0 {
		count = 15
	}
	if sd == 0 {
		sd = 1
	}
	if count < 0 {
		panic(fmt.Sprintf("nn: Sparse: negative Count %d", count))
	}
	checkInit("Sparse", W, b, sd)
	out, in := W.Dims()
	count = min(count, in)
	perm := make([]int, in)
	for j := range perm {
		perm[j] = j
	}
	W.Zero()
	for i := 0; i < out; i++ {
		// Partial Fisher–Yates shuffle: perm[:count] is a uniform subset.
		for j := 0; j < count; j++ {
			t := j + rng.IntN(in-j)
			perm[j], perm[t] = perm[t], perm[j]
			W.Set(i, perm[j], sd*rng.NormFloat64())
		}
	}
	b.Zero()
}

// checkAlpha returns α, 2 (the default of Glorot and He) when alpha is
// zero, after checking W, b and α as checkInit does.
func checkAlpha(name string, W *mat.Dense, b *mat.VecDense, alpha float64) float64 {
	if alpha == 0 {
		alpha = 2
	}
	checkInit(name, W, b, alpha)
	return alpha
}

// fillW sets the entries of W to successive values of draw, row by row.
func fillW(W *mat.Dense, draw func() float64) {
	out, in := W.Dims()
	for i := 0; i < out; i++ {
		for j := 0; j < in; j++ {
			W.Set(i, j, draw())
		}
	}
}

func checkInit(name string, W *mat.Dense, b *mat.VecDense, scale float64) {
	if scale < 0 || math.IsNaN(scale) || math.IsInf(scale, 0) {
		panic(fmt.Sprintf("nn: %s: invalid scale %v", name, scale))
	}
	out, in := W.Dims()
	if b.Len() != out {
		panic(fmt.Sprintf("nn: %s: W is %d×%d but b has length %d", name, out, in, b.Len()))
	}
}
