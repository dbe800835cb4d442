package optim

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/kron"
)

var (
	_ Optimizer = (*Newton)(nil)
	_ Needer    = (*Newton)(nil)
)

// Defaults of Newton.
const (
	// DefaultNewtonDamping is the default relative Tikhonov damping λ of
	// Newton (see Newton.Damping for its units), as for KFAC.
	DefaultNewtonDamping = 0.1
	// DefaultNewtonMaxParams is the default largest layer, in parameters,
	// whose block Newton agrees to build: 5000, a 200 MB block and a
	// Cholesky factorization of about 4·10¹⁰ flops.
	DefaultNewtonMaxParams = 5000
)

// Newton is the block-diagonal Gauss–Newton (or Fisher) method of thesis
// §3.1.6 with the Tikhonov damping of §3.1.3: every affine layer is updated
// with its own exact curvature block, cross-layer terms ignored,
//
//	θ ← θ − η (B + λ_l I)⁻¹ ∇θ,   θ = [vec(W); b] (vec stacking columns),
//
// where B is the layer's block (thesis eq. 3.3.2) built by curvature.Block
// from the record's Input and Back,
//
//	B = BackScale Σ_r (h̃_{e(r)} h̃_{e(r)}ᵀ) ⊗ (g_r g_rᵀ),   h̃ = (h, 1),
//
// g_r the rows of Back and e(r) the example of row r. What B is depends on
// what the caller put in Back (curvature.Estimator): the exact GN or Fisher
// block with the exact estimators (k rows of J_aᵀ D^{1/2} per example), a
// Monte-Carlo estimate with sampled targets. The system is solved by Cholesky
// (mat.Cholesky).
//
// The example of each row of Back is given by Examples, which the caller sets
// before Step: with package nn it is the index returned by
// curvature.Backprop.Fill (Network.BackExamples), the same for all layers.
// When Examples is nil, the rows are taken to be, for m rows of Back and n
// examples, one per example (row r is example r) when m ≤ n, and k
// consecutive rows per example (rows i·k … i·k+k−1 are example i, as
// nn.Network.BackwardGN and BackwardFisher lay them out) when m = k·n. Any
// other layout (several Monte-Carlo samples, which nn lays out sample by
// sample) needs Examples.
//
// λ is relative unless AbsoluteDamping is set: λ_l = λ·tr(B)/P, the mean
// eigenvalue of the block times λ (1 when the trace is zero), so that the
// step does not depend on the scale of the loss. Undamped sets λ = 0, the
// pure block Newton step. If B + λ_l I is not positive definite (a rank-
// deficient block, fewer examples than parameters, undamped or with a
// damping lost to rounding), λ_l is raised — to 10⁻¹⁰ of the mean eigenvalue
// from zero, then multiplied by Retry.Growth — up to Retry.Tries attempts,
// each raise reported through OnDampingRaised and DampingRaised. Step
// returns an error, leaving every parameter unchanged, when all attempts
// fail.
//
// Parameters in the layers' Extra get a plain gradient step θ ← θ − η∇θ.
//
// Cost per layer with P = n_out(n_in+1) parameters and m rows of Back: the
// block, O(m P²), and its Cholesky factorization, P³/3 flops, at every Step,
// with P² floats of memory. It is meant for small networks: a layer with more
// than MaxParams parameters is refused with an error. Buffers are kept
// between Steps (curvature.Block allocates a small workspace per call).
//
// The zero value is ready to use: η = 1, relative damping 0.1, MaxParams
// 5000. Newton keeps per-layer state by position: pass the layers in the same
// order at every Step. It is not safe for concurrent use.
type Newton struct {
	// Rate is the learning rate η. Zero means 1; negative is refused.
	Rate float64
	// Damping is the Tikhonov damping λ, relative to the mean eigenvalue of
	// each block unless AbsoluteDamping is set. Zero means
	// DefaultNewtonDamping (0.1); negative is refused.
	Damping float64
	// AbsoluteDamping makes Damping the plain λ of B + λI.
	AbsoluteDamping bool
	// Undamped sets λ = 0 (pure block Newton); Damping must then be zero.
	Undamped bool
	// MaxParams is the largest number of parameters n_out(n_in+1) of a
	// layer. Zero means DefaultNewtonMaxParams (5000); negative is refused.
	MaxParams int
	// Examples gives the example of each row of Back, for every layer
	// (nil: see the type's documentation).
	Examples []int
	// Retry is the policy applied when a damped block is not positive
	// definite. The zero value means {Tries: 10, Growth: 10}.
	Retry kron.Retry
	// OnDampingRaised, if set, is called when the damping of a layer had to
	// be raised, with the layer's index and the damping used, in the units
	// of Damping.
	OnDampingRaised func(layer int, damping float64)

	layers []newtonLayer
	idx    []int
	raised int
}

type newtonLayer struct {
	out, in int
	block   mat.SymDense
	chol    mat.Cholesky
	grad    mat.VecDense
	dir     mat.VecDense
}

// Needs reports that Newton needs Back in every record.
func (nw *Newton) Needs() Needs { return Needs{Back: true} }

// DampingRaised returns how many times the damping of a block had to be
// raised for it to be positive definite.
func (nw *Newton) DampingRaised() int { return nw.raised }

func (nw *Newton) rate() float64 {
	if nw.Rate == 0 {
		return 1
	}
	return nw.Rate
}

func (nw *Newton) damping() float64 {
	switch {
	case nw.Undamped:
		return 0
	case nw.Damping == 0:
		return DefaultNewtonDamping
	}
	return nw.Damping
}

// Validate returns an error, prefixed "optim: Newton:", describing the first
// invalid setting, or nil. Step panics with that message (a programmer
// error, as in SGD); callers that build a Newton from user input can call
// Validate first.
func (nw *Newton) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("optim: Newton: "+format, a...)
	}
	switch {
	case !kfFiniteNonNeg(nw.Rate):
		return bad("learning rate Rate=%g, want finite and ≥ 0", nw.Rate)
	case !kfFiniteNonNeg(nw.Damping):
		return bad("Damping=%g, want finite and ≥ 0 (0 means %g)", nw.Damping, DefaultNewtonDamping)
	case nw.Undamped && nw.Damping != 0:
		return bad("Undamped with Damping=%g", nw.Damping)
	case nw.MaxParams < 0:
		return bad("MaxParams=%d, want > 0 (0 means %d)", nw.MaxParams, DefaultNewtonMaxParams)
	}
	return kfValidateRetry("Newton", nw.Retry)
}

// Step applies one damped block Newton update to every layer. It panics for
// an invalid setting (see Validate) or a shape mismatch. It returns an error,
// leaving every parameter unchanged, for a layer larger than MaxParams, a
// missing Back (wrapping ErrMissingCapability), NaN or Inf in the records, or
// a block that stays not positive definite after the retries.
func (nw *Newton) Step(layers []*secondorder.Layer) error {
	checkLayers("Newton", layers)
	if err := nw.Validate(); err != nil {
		panic(err.Error())
	}
	maxP := kfDefaultInt(nw.MaxParams, DefaultNewtonMaxParams)
	for j, l := range layers {
		out, in := l.Dims()
		if p := out * (in + 1); p > maxP {
			return fmt.Errorf("optim: Newton: layer %d (%d×%d) has %d parameters, more than MaxParams=%d (its block would take %s); use smaller layers or K-FAC",
				j, out, in, p, maxP, newtonBytes(8*float64(p)*float64(p)))
		}
	}
	for j, l := range layers {
		if l.Back == nil {
			return missingCapability("Newton", fmt.Sprintf("layer %d has no Back", j))
		}
		if l.Input == nil {
			panic(fmt.Sprintf("optim: Newton: layer %d has no Input", j))
		}
		if err := kfCheckFinite("Newton", j, l, true); err != nil {
			return err
		}
	}
	nw.ensureState(layers)
	retry := kfRetry(nw.Retry)
	for j, l := range layers {
		s := &nw.layers[j]
		curvature.Block(&s.block, l, nw.index(j, l))
		p := s.out * (s.in + 1)
		scale := 1.0
		if !nw.AbsoluteDamping {
			if tr := mat.Trace(&s.block) / float64(p); tr > 0 && !math.IsInf(tr, 1) {
				scale = tr
			}
		}
		want := nw.damping() * scale
		lam := want
		newtonAddDiag(&s.block, lam)
		ok := s.chol.Factorize(&s.block)
		for try := 1; !ok && try < retry.Tries; try++ {
			next := lam * retry.Growth
			if lam == 0 {
				next = 1e-10 * scale
			}
			newtonAddDiag(&s.block, next-lam)
			lam = next
			ok = s.chol.Factorize(&s.block)
		}
		if !ok {
			return fmt.Errorf("optim: Newton: layer %d: block not positive definite even with damping %g after %d tries; parameters left unchanged", j, lam/scale, retry.Tries)
		}
		if lam > want {
			nw.raised++
			if nw.OnDampingRaised != nil {
				nw.OnDampingRaised(j, lam/scale)
			}
		}
		newtonVecGrad(&s.grad, l)
		if err := s.chol.SolveVecTo(&s.dir, &s.grad); err != nil {
			if _, cond := err.(mat.Condition); !cond {
				return fmt.Errorf("optim: Newton: layer %d: %w", j, err)
			}
		}
		if !kfFiniteVec(&s.dir) {
			return fmt.Errorf("optim: Newton: layer %d: the Newton direction is not finite (damping %g); parameters left unchanged", j, lam/scale)
		}
	}
	eta := nw.rate()
	for j, l := range layers {
		s := &nw.layers[j]
		d := s.dir.RawVector().Data
		w := l.W.RawMatrix()
		for c := 0; c < s.in; c++ {
			for i := 0; i < s.out; i++ {
				w.Data[i*w.Stride+c] -= eta * d[c*s.out+i]
			}
		}
		for i := 0; i < s.out; i++ {
			l.B.SetVec(i, l.B.AtVec(i)-eta*d[s.in*s.out+i])
		}
		for _, p := range l.Extra {
			axpyVec(p.Value, -eta, p.Grad)
		}
	}
	return nil
}

// index returns the example of each row of layer j's Back.
func (nw *Newton) index(j int, l *secondorder.Layer) []int {
	m, _ := l.Back.Dims()
	n, _ := l.Input.Dims()
	if nw.Examples != nil {
		if len(nw.Examples) != m {
			panic(fmt.Sprintf("optim: Newton: Examples has length %d, layer %d's Back has %d rows", len(nw.Examples), j, m))
		}
		for r, e := range nw.Examples {
			if e < 0 || e >= n {
				panic(fmt.Sprintf("optim: Newton: Examples[%d] = %d outside [0, %d)", r, e, n))
			}
		}
		return nw.Examples
	}
	switch {
	case m <= n:
		if cap(nw.idx) < m {
			nw.idx = make([]int, m)
		}
		nw.idx = nw.idx[:m]
		for r := range nw.idx {
			nw.idx[r] = r
		}
	case m%n == 0:
		k := m / n
		if cap(nw.idx) < m {
			nw.idx = make([]int, m)
		}
		nw.idx = nw.idx[:m]
		for r := range nw.idx {
			nw.idx[r] = r / k
		}
	default:
		panic(fmt.Sprintf("optim: Newton: layer %d's Back has %d rows for %d examples; set Examples", j, m, n))
	}
	return nw.idx
}

func (nw *Newton) ensureState(layers []*secondorder.Layer) {
	if nw.layers != nil {
		if len(layers) != len(nw.layers) {
			panic(fmt.Sprintf("optim: Newton: got %d layers, earlier steps had %d", len(layers), len(nw.layers)))
		}
		for j, l := range layers {
			out, in := l.Dims()
			if s := &nw.layers[j]; s.out != out || s.in != in {
				panic(fmt.Sprintf("optim: Newton: layer %d changed shape from %d×%d to %d×%d between steps", j, s.out, s.in, out, in))
			}
		}
		return
	}
	nw.layers = make([]newtonLayer, len(layers))
	for j, l := range layers {
		out, in := l.Dims()
		s := &nw.layers[j]
		s.out, s.in = out, in
		p := out * (in + 1)
		s.block.ReuseAsSym(p)
		s.grad.ReuseAsVec(p)
		s.dir.ReuseAsVec(p)
	}
}

// newtonVecGrad writes ∇θ = [vec(∇W); ∇b] into dst.
func newtonVecGrad(dst *mat.VecDense, l *secondorder.Layer) {
	out, in := l.Dims()
	d := dst.RawVector().Data
	g := l.GradW.RawMatrix()
	for c := 0; c < in; c++ {
		for i := 0; i < out; i++ {
			d[c*out+i] = g.Data[i*g.Stride+c]
		}
	}
	for i := 0; i < out; i++ {
		d[in*out+i] = l.GradB.AtVec(i)
	}
}

// newtonAddDiag adds s to the diagonal of a.
func newtonAddDiag(a *mat.SymDense, s float64) {
	if s == 0 {
		return
	}
	raw := a.RawSymmetric()
	for i := 0; i < raw.N; i++ {
		raw.Data[i*raw.Stride+i] += s
	}
}

// newtonBytes formats a number of bytes with a binary-free SI unit.
func newtonBytes(b float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	u := 0
	for b >= 1000 && u < len(units)-1 {
		b /= 1000
		u++
	}
	return fmt.Sprintf("%.3g %s", b, units[u])
}
