package nn

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// DefaultWhitenEps is the relative regularisation of the whitening when
// Whiten is given eps = 0: the input covariance C of a layer is whitened as
// C + εI with ε = eps · tr(C)/n_in, eps times the mean eigenvalue.
//
// It was chosen on the MNIST autoencoder 784-1000-500-250-30-… (Sparse
// initialisation, U estimated from 2000 training images, checked on 2000
// others) for its pixels (172 of 784 eigenvalues below 1e-6) and the
// sigmoid layers above them. With eps = 0.1, U has condition number 17–30
// and the whitened inputs of the held-out images have covariance
// eigenvalues at most 2–3.6; with eps = 0.01 the condition number is
// 50–96 and held-out eigenvalues reach 4–8, and with eps = 0.001 they reach
// 34. Directions of variance well above ε are whitened almost exactly
// (whitened variance λ/(λ+ε)).
const DefaultWhitenEps = 0.1

// whitening is the input transformation of a whitened layer.
type whitening struct {
	u   *mat.Dense    // U, n_in × n_in, symmetric
	mu  *mat.VecDense // μ
	uMu []float64     // U μ
	he  *mat.Dense    // whitened inputs of the last forward pass (the record's Input)
	tmp *mat.Dense    // backward buffer, m × n_in
}

func newWhitening(in int) *whitening {
	w := &whitening{
		u:   mat.NewDense(in, in, nil),
		mu:  mat.NewVecDense(in, nil),
		uMu: make([]float64, in),
		he:  &mat.Dense{},
		tmp: &mat.Dense{},
	}
	w.reset()
	return w
}

// reset sets U = I and μ = 0.
func (w *whitening) reset() {
	in := w.mu.Len()
	w.u.Zero()
	for i := 0; i < in; i++ {
		w.u.Set(i, i, 1)
	}
	w.mu.Zero()
	clear(w.uMu)
}

// setUMu recomputes U μ after a change of U or μ.
func (w *whitening) setUMu() {
	um := mat.NewVecDense(len(w.uMu), w.uMu)
	um.MulVec(w.u, w.mu)
}

// forward writes the whitened inputs U(h − μ) of the rows of h into he:
// he = h U − 1 (Uμ)ᵀ, U being symmetric.
func (w *whitening) forward(h *mat.Dense) {
	n, in := h.Dims()
	for i := 0; i < n; i++ {
		r := row(w.he, i)[:in]
		for j := range r {
			r[j] = -w.uMu[j]
		}
	}
	gemm(blas.NoTrans, blas.NoTrans, 1, h, w.u, 1, w.he)
}

// SetWhitened makes layer l a whitened layer of a natural neural network
// (Desjardins et al. 2015, PRONG; thesis §3.5.2) or a plain one again:
//
//	a = V U (h − μ) + d,
//
// with U = (C + εI)^{-1/2} and μ the mean of the layer's inputs h (C their
// covariance), estimated by Whiten and not trained. The record has W = V,
// B = d and Input = h_e = U(h − μ), the whitened input: optimizers update V
// and d unchanged, and the record's Input has second moment ≈ [[I, 0],
// [0, 1]] (with h̃_e = (h_e, 1)), the form that makes the Fisher block
// of the layer nearly block-diagonal (thesis §3.5.2). Backward reaches the
// lower layer through Uᵀ Vᵀ.
//
// Both directions leave the network's function unchanged: turning
// whitening on starts from U = I, μ = 0 (so V = W, d = b); turning it off
// folds the whitening into the weights, W = V U and b = d − V U μ. It
// invalidates the results of the last Forward.
func (net *Network) SetWhitened(l int, on bool) {
	if l < 0 || l >= len(net.layers) {
		panic(fmt.Sprintf("nn: SetWhitened: layer %d out of range [0,%d)", l, len(net.layers)))
	}
	ly := net.layers[l]
	switch {
	case on && ly.wh == nil:
		_, in := ly.w.Dims()
		ly.wh = newWhitening(in)
		ly.rec.Input = ly.wh.he
	case !on && ly.wh != nil:
		// W = V U, b = d − V U μ.
		var vu mat.Dense
		vu.Mul(ly.w, ly.wh.u)
		var c mat.VecDense
		c.MulVec(&vu, ly.wh.mu)
		ly.w.Copy(&vu)
		ly.b.SubVec(ly.b, &c)
		ly.wh = nil
		ly.rec.Input = ly.in
	}
	net.invalidate()
}

// Whitened reports whether the layer whitens its input (see
// Network.SetWhitened).
func (l *Affine) Whitened() bool { return l.wh != nil }

// Whitening returns the whitening matrix U (n_in × n_in, symmetric) and
// mean μ (n_in) of a whitened layer, owned by the layer, or nils for a
// plain layer. Modifying them changes the function the network computes.
func (l *Affine) Whitening() (U *mat.Dense, mu *mat.VecDense) {
	if l.wh == nil {
		return nil, nil
	}
	return l.wh.u, l.wh.mu
}

// NewAutoencoderWhitened returns NewAutoencoder(sizes) with every layer
// whitened (see SetWhitened), as the natural neural networks of Desjardins
// et al. (2015): the input layer too, whose pixels are whitened like the
// hidden units. Call Init, then Whiten with a sample of the data.
func NewAutoencoderWhitened(sizes []int) *Network {
	net := NewAutoencoder(sizes)
	for l := range net.layers {
		net.SetWhitened(l, true)
	}
	return net
}

// whitenChunk is the number of rows of each forward pass of Whiten.
const whitenChunk = 512

// Whiten re-estimates the mean μ and the whitening U of every whitened
// layer from a sample x (N × sizes[0], one example per row) and changes
// V and d so that the function the network computes is unchanged
// (Desjardins et al. 2015, algorithm 1; thesis §3.5.2). With μ', C' the
// mean and covariance of the layer's inputs h over the sample and
//
//	U' = (C' + εI)^{-1/2},   ε = eps · tr(C')/n_in
//
// (eps = 0 means DefaultWhitenEps; if tr(C') = 0, ε = eps), the new
// parameters are
//
//	V' = V U U'^{-1},   d' = d + V U (μ' − μ),
//
// which keep a: V' U' (h − μ') + d' = V U h − V U μ' + d + V U (μ' − μ)
// = V U (h − μ) + d for every h. After the refresh the whitened inputs of
// the sample have mean 0 and covariance U' C' U' = C'(C' + εI)^{-1}, ≈ I in
// the directions of variance ≫ ε.
//
// Because a refresh leaves the function of its layer unchanged, it leaves
// the inputs of the layers above unchanged too: one forward pass over x
// (in chunks of 512 rows, with the network's current mode; running
// averages of normalised layers are not updated) gives the statistics of
// every layer, and the layers are then refreshed from the bottom up. The
// results of the last Forward are invalidated.
//
// Cost: the forward pass, one N × n_in × n_in product per layer for C', a
// symmetric eigendecomposition of C' (mat.EigenSym; ~2.7 s for n_in = 1000
// with gonum's pure-Go LAPACK, ~0.2 s with OpenBLAS) and four
// n_in² × max(n_in, n_out) products per whitened layer; memory n_in² per
// layer. PRONG amortises it by refreshing every T updates.
//
// A non-finite input statistic or a failed eigendecomposition is returned
// as an error, with the network unchanged; a sample of the wrong width
// panics.
func (net *Network) Whiten(x mat.Matrix, eps float64) error {
	N, c := x.Dims()
	if c != net.sizes[0] {
		panic(fmt.Sprintf("nn: Whiten: sample is %d×%d, network wants N×%d", N, c, net.sizes[0]))
	}
	if N == 0 {
		panic("nn: Whiten: empty sample")
	}
	if eps == 0 {
		eps = DefaultWhitenEps
	}
	if !(eps > 0) || math.IsInf(eps, 0) {
		panic(fmt.Sprintf("nn: Whiten: eps = %v must be positive", eps))
	}
	type stats struct {
		l   int
		s1  []float64      // Σ (h − μ)
		s2  blas64.General // upper triangle of Σ (h − μ)(h − μ)ᵀ
		ctr *mat.Dense     // h − μ of a chunk
	}
	var st []*stats
	for l, ly := range net.layers {
		if ly.wh == nil {
			continue
		}
		_, in := ly.w.Dims()
		st = append(st, &stats{l: l, s1: make([]float64, in), s2: mat.NewDense(in, in, nil).RawMatrix(), ctr: &mat.Dense{}})
	}
	if len(st) == 0 {
		return nil
	}
	xd, ok := x.(*mat.Dense)
	if !ok {
		xd = mat.DenseCopyOf(x)
	}
	chunks := (N + whitenChunk - 1) / whitenChunk
	lo := 0
	for k := 0; k < chunks; k++ {
		hi := lo + (N-lo)/(chunks-k) // balanced chunks, so none has 1 row unless N = 1
		net.forward(xd.Slice(lo, hi, 0, c), false)
		for _, s := range st {
			ly := net.layers[s.l]
			mu := ly.wh.mu.RawVector().Data
			n, in := ly.in.Dims()
			resize(s.ctr, n, in)
			for i := 0; i < n; i++ {
				cr := row(s.ctr, i)[:in]
				for j, v := range row(ly.in, i)[:in] {
					cr[j] = v - mu[j]
					s.s1[j] += cr[j]
				}
			}
			blas64.Syrk(blas.Trans, 1, s.ctr.RawMatrix(), 1, blas64.Symmetric{
				Uplo: blas.Upper, N: in, Data: s.s2.Data, Stride: s.s2.Stride})
		}
		lo = hi
	}
	net.invalidate()

	// Compute every new whitening before changing any layer, so that an
	// error leaves the network unchanged.
	type update struct {
		u, uinv *mat.Dense
		mu      *mat.VecDense
	}
	ups := make([]update, len(st))
	for k, s := range st {
		ly := net.layers[s.l]
		in := len(s.s1)
		inv := 1 / float64(N)
		delta := make([]float64, in)
		for j, v := range s.s1 {
			delta[j] = v * inv
		}
		C := mat.NewSymDense(in, nil)
		for i := 0; i < in; i++ {
			for j := i; j < in; j++ {
				v := s.s2.Data[i*s.s2.Stride+j]*inv - delta[i]*delta[j]
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return fmt.Errorf("nn: Whiten: layer %d: non-finite input covariance %v at (%d,%d)", s.l, v, i, j)
				}
				C.SetSym(i, j, v)
			}
		}
		muNew := mat.NewVecDense(in, nil)
		for j := range delta {
			v := ly.wh.mu.AtVec(j) + delta[j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("nn: Whiten: layer %d: non-finite input mean %v at unit %d", s.l, v, j)
			}
			muNew.SetVec(j, v)
		}
		u, uinv, err := inverseSqrt(C, eps)
		if err != nil {
			return fmt.Errorf("nn: Whiten: layer %d: %w", s.l, err)
		}
		ups[k] = update{u: u, uinv: uinv, mu: muNew}
	}
	for k, s := range st {
		ly, up := net.layers[s.l], ups[k]
		// M = V U; V' = M U'^{-1}; d' = d + M (μ' − μ).
		var m mat.Dense
		m.Mul(ly.w, ly.wh.u)
		var dmu, shift mat.VecDense
		dmu.SubVec(up.mu, ly.wh.mu)
		shift.MulVec(&m, &dmu)
		ly.b.AddVec(ly.b, &shift)
		ly.w.Mul(&m, up.uinv)
		ly.wh.u.Copy(up.u)
		ly.wh.mu.CopyVec(up.mu)
		ly.wh.setUMu()
	}
	return nil
}

// inverseSqrt returns U = (C + εI)^{-1/2} and U^{-1} = (C + εI)^{1/2}, both
// exactly symmetric, with ε = eps·tr(C)/n (eps if tr(C) = 0), from the
// eigendecomposition C = Q Λ Qᵀ (eigenvalues below zero, from rounding,
// are taken as zero).
func inverseSqrt(C *mat.SymDense, eps float64) (u, uinv *mat.Dense, err error) {
	n := C.SymmetricDim()
	var es mat.EigenSym
	if !es.Factorize(C, true) {
		return nil, nil, fmt.Errorf("eigendecomposition of the %d×%d input covariance failed", n, n)
	}
	lam := es.Values(nil)
	var q mat.Dense
	es.VectorsTo(&q)
	tr := 0.0
	for i, v := range lam {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("non-finite eigenvalue %v of the input covariance", v)
		}
		lam[i] = math.Max(v, 0)
		tr += lam[i]
	}
	reg := eps * tr / float64(n)
	if !(reg > 0) {
		reg = eps
	}
	qa := mat.NewDense(n, n, nil)
	qb := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			s := math.Sqrt(math.Sqrt(lam[j] + reg))
			qa.Set(i, j, q.At(i, j)/s)
			qb.Set(i, j, q.At(i, j)*s)
		}
	}
	u = mat.NewDense(n, n, nil)
	uinv = mat.NewDense(n, n, nil)
	u.Mul(qa, qa.T())
	uinv.Mul(qb, qb.T())
	symmetrize(u)
	symmetrize(uinv)
	return u, uinv, nil
}

// symmetrize replaces the square m by (m + mᵀ)/2.
func symmetrize(m *mat.Dense) {
	n, _ := m.Dims()
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			v := (m.At(i, j) + m.At(j, i)) / 2
			m.Set(i, j, v)
			m.Set(j, i, v)
		}
	}
}
