package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
)

// kfNet is a small fully connected network written by hand for the tests
// of the curvature-based optimizers (package optim must not import nn):
// affine layers with tanh or identity activations, the last one identity,
// and the unhalved quadratic loss l = ‖f − y‖², so that D = ∂²l/∂f² = 2I.
// It fills the secondorder.Layer records like a network library would:
// Input, Grad, GradW, GradB, and Back with exact Gauss–Newton or Monte-Carlo
// Fisher vectors, and provides the risk and the exact GN-vector product as
// the closures of Problem.
type kfNet struct {
	layers []*secondorder.Layer
	tanh   []bool // activation after layer j
	x, y   *mat.Dense
	n      int
	hs     []*mat.Dense // hs[j]: input of layer j; hs[L]: output
	as     []*mat.Dense // pre-activations
}

// newKFNet returns a network of the given sizes on n examples whose targets
// come from a random teacher network of the same shape plus noise.
func newKFNet(rng *rand.Rand, sizes []int, tanh []bool, n int) *kfNet {
	L := len(sizes) - 1
	t := &kfNet{tanh: tanh, n: n}
	t.x = testutil.RandDense(rng, n, sizes[0], 1)
	for j := 0; j < L; j++ {
		in, out := sizes[j], sizes[j+1]
		t.layers = append(t.layers, &secondorder.Layer{
			W: testutil.RandDense(rng, out, in, 1/math.Sqrt(float64(in))),
			B: mat.NewVecDense(out, testutil.RandSlice(rng, out, 0.1)),
		})
		t.hs = append(t.hs, mat.NewDense(n, in, nil))
		t.as = append(t.as, mat.NewDense(n, out, nil))
	}
	t.hs = append(t.hs, mat.NewDense(n, sizes[L], nil))
	// Teacher: the same architecture with other weights.
	save := t.params()
	for _, l := range t.layers {
		out, in := l.Dims()
		l.W.Copy(testutil.RandDense(rng, out, in, 1.5/math.Sqrt(float64(in))))
	}
	t.forward()
	t.y = mat.DenseCopyOf(t.hs[L])
	t.y.Add(t.y, testutil.RandDense(rng, n, sizes[L], 0.05))
	t.setParams(save)
	return t
}

// params returns copies of W and B of every layer.
func (t *kfNet) params() []*mat.Dense {
	var p []*mat.Dense
	for _, l := range t.layers {
		p = append(p, mat.DenseCopyOf(l.W), mat.DenseCopyOf(l.B))
	}
	return p
}

func (t *kfNet) setParams(p []*mat.Dense) {
	for j, l := range t.layers {
		l.W.Copy(p[2*j])
		l.B.CopyVec(p[2*j+1].ColView(0))
	}
}

// forward fills every record's Input and returns the risk (1/n) Σ ‖f − y‖².
func (t *kfNet) forward() float64 {
	t.hs[0].Copy(t.x)
	for j, l := range t.layers {
		l.Input = t.hs[j]
		a := t.as[j]
		a.Mul(t.hs[j], l.W.T())
		out, _ := l.Dims()
		for i := 0; i < t.n; i++ {
			for c := 0; c < out; c++ {
				v := a.At(i, c) + l.B.AtVec(c)
				a.Set(i, c, v)
				if t.tanh[j] {
					v = math.Tanh(v)
				}
				t.hs[j+1].Set(i, c, v)
			}
		}
	}
	if t.y == nil {
		return 0
	}
	var d mat.Dense
	d.Sub(t.hs[len(t.layers)], t.y)
	r := mat.Norm(&d, 2)
	return r * r / float64(t.n)
}

// deriv multiplies m elementwise by the derivative of layer j's activation
// (1 − h² for tanh) at the examples of the rows (idx[r], or r if nil).
func (t *kfNet) deriv(m *mat.Dense, j int, idx []int) {
	if !t.tanh[j] {
		return
	}
	h := t.hs[j+1]
	r, c := m.Dims()
	for i := 0; i < r; i++ {
		e := i
		if idx != nil {
			e = idx[i]
		}
		for q := 0; q < c; q++ {
			v := h.At(e, q)
			m.Set(i, q, m.At(i, q)*(1-v*v))
		}
	}
}

// backward fills Grad (∇_a l per example), GradW and GradB after forward.
func (t *kfNet) backward() {
	L := len(t.layers)
	g := mat.NewDense(t.n, t.hs[L].RawMatrix().Cols, nil)
	g.Sub(t.hs[L], t.y)
	g.Scale(2, g)
	t.propagate(g, nil, func(j int, m *mat.Dense) {
		t.layers[j].Grad = m
		t.layers[j].ComputeParamGrads()
	})
}

// propagate backpropagates the rows of v (the output layer's ∇_a rows,
// tied to examples by idx) and hands the rows at every layer to f.
func (t *kfNet) propagate(v *mat.Dense, idx []int, f func(j int, m *mat.Dense)) {
	L := len(t.layers)
	cur := v
	t.deriv(cur, L-1, idx)
	for j := L - 1; j >= 0; j-- {
		f(j, cur)
		if j > 0 {
			var prev mat.Dense
			prev.Mul(cur, t.layers[j].W)
			t.deriv(&prev, j-1, idx)
			cur = &prev
		}
	}
}

// fillRecords runs the forward and backward passes and fills Back by the
// named estimator: "gn" the exact Gauss–Newton vectors, "mc" Monte-Carlo
// Fisher vectors for all n examples, "sub" Monte-Carlo Fisher vectors for
// the first sub examples (Martens & Grosse's τ1 sub-batch). It returns the
// example of each row of Back and the number of examples Back covers; for
// another name Back is left alone, and the result is nil and n.
func (t *kfNet) fillRecords(rng *rand.Rand, back string, sub int) (idx []int, rows int) {
	risk := t.forward()
	t.backward()
	for _, l := range t.layers {
		l.Risk = risk // read by the norm constraint
	}
	switch back {
	case "gn":
		return t.backGN(), t.n
	case "mc":
		t.backMC(rng, t.n)
		return rowPerExample(t.n), t.n
	case "sub":
		t.backMC(rng, sub)
		return rowPerExample(sub), sub
	}
	return nil, t.n
}

// fillGNIndexed runs fillRecords with the exact Gauss–Newton vectors and
// sets every record's BackExamples to the example of each row of Back,
// which it returns.
func (t *kfNet) fillGNIndexed() []int {
	idx, _ := t.fillRecords(nil, "gn", 0)
	for _, l := range t.layers {
		l.BackExamples = idx
	}
	return idx
}

// rowPerExample returns 0, 1, …, n−1: the examples of the rows of a Back
// with one row per example.
func rowPerExample(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// backGN fills Back with the exact Gauss–Newton vectors: k = n_out rows
// √2 e_c per example (S with SᵀS = D = 2I), consecutive per example, and
// returns their example index.
func (t *kfNet) backGN() []int {
	L := len(t.layers)
	k := t.hs[L].RawMatrix().Cols
	v := mat.NewDense(t.n*k, k, nil)
	idx := make([]int, t.n*k)
	for i := 0; i < t.n; i++ {
		for c := 0; c < k; c++ {
			v.Set(i*k+c, c, math.Sqrt2)
			idx[i*k+c] = i
		}
	}
	t.propagate(v, idx, func(j int, m *mat.Dense) {
		t.layers[j].Back = m
		t.layers[j].BackScale = 1 / float64(t.n)
	})
	return idx
}

// backMC fills Back with Monte-Carlo Fisher vectors for the first m
// examples (m ≤ n): the loss ‖f − ỹ‖² is the negative log-density of
// ỹ ~ N(f, I/2) up to a constant, so ∇_f l = 2(f − ỹ) = −√2 ξ with ξ
// standard normal. BackScale is 1/m.
func (t *kfNet) backMC(rng *rand.Rand, m int) {
	L := len(t.layers)
	k := t.hs[L].RawMatrix().Cols
	v := testutil.RandDense(rng, m, k, -math.Sqrt2)
	t.propagate(v, nil, func(j int, b *mat.Dense) {
		t.layers[j].Back = b
		t.layers[j].BackScale = 1 / float64(m)
	})
}

// gnVec is the exact Gauss–Newton-vector product of the risk at the current
// parameters, (1/n) Σ_i J_iᵀ 2 J_i v, by a forward R-pass and a backward
// pass. It runs forward itself, like a closure over a network would.
func (t *kfNet) gnVec(dst, v []secondorder.Direction) error {
	t.forward()
	rf := t.rForward(v)
	rf.Scale(2, rf)
	t.propagate(rf, nil, func(j int, g *mat.Dense) {
		dst[j].W.Mul(g.T(), t.hs[j])
		dst[j].W.Scale(1/float64(t.n), dst[j].W)
		out, _ := t.layers[j].Dims()
		for c := 0; c < out; c++ {
			dst[j].B.SetVec(c, mat.Sum(g.ColView(c))/float64(t.n))
		}
	})
	return nil
}

// rForward returns the directional derivative of the outputs along v,
// the rows J_i v, after forward.
func (t *kfNet) rForward(v []secondorder.Direction) *mat.Dense {
	var rh *mat.Dense
	for j, l := range t.layers {
		out, _ := l.Dims()
		ra := mat.NewDense(t.n, out, nil)
		ra.Mul(t.hs[j], v[j].W.T())
		if rh != nil {
			var p mat.Dense
			p.Mul(rh, l.W.T())
			ra.Add(ra, &p)
		}
		for i := 0; i < t.n; i++ {
			for c := 0; c < out; c++ {
				ra.Set(i, c, ra.At(i, c)+v[j].B.AtVec(c))
			}
		}
		if j < len(t.layers)-1 {
			t.deriv(ra, j, nil)
		}
		rh = ra
	}
	return rh
}

// leastSquares returns Θ = [W b] of the linear model that minimises
// Σ_i ‖W x_i + b − y_i‖² on the network's data, the solution of the normal
// equations X̃ᵀX̃ Θᵀ = X̃ᵀY with X̃ = [X 1].
func (t *kfNet) leastSquares(tb testing.TB) *mat.Dense {
	tb.Helper()
	_, in := t.x.Dims()
	xt := mat.NewDense(t.n, in+1, nil)
	xt.Slice(0, t.n, 0, in).(*mat.Dense).Copy(t.x)
	for i := 0; i < t.n; i++ {
		xt.Set(i, in, 1)
	}
	var a, b, sol mat.Dense
	a.Mul(xt.T(), xt)
	b.Mul(xt.T(), t.y)
	if err := sol.Solve(&a, &b); err != nil {
		tb.Fatal(err)
	}
	return mat.DenseCopyOf(sol.T())
}

// checkLeastSquaresStep takes one step of opt on a linear model (4 inputs,
// 3 outputs, 30 examples) with the quadratic loss and exact Gauss–Newton
// vectors, whose GN block is the Hessian (2/n) X̃ᵀX̃ ⊗ I, and requires Θ to
// land on the least-squares solution within tol (mat.EqualApprox).
func checkLeastSquaresStep(t *testing.T, opt Optimizer, tol float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(23, 5))
	net := newKFNet(rng, []int{4, 3}, []bool{false}, 30)
	net.fillRecords(rng, "gn", 0)
	if err := opt.Step(net.layers); err != nil {
		t.Fatal(err)
	}
	if got, want := kfThetaOf(net.layers[0]), net.leastSquares(t); !mat.EqualApprox(got, want, tol) {
		t.Fatalf("Θ after one step\n%v\nwant\n%v", mat.Formatted(got), mat.Formatted(want))
	}
}

// dirs returns zero directions shaped like the layers.
func (t *kfNet) dirs() []secondorder.Direction {
	d := make([]secondorder.Direction, len(t.layers))
	for j, l := range t.layers {
		out, in := l.Dims()
		d[j] = secondorder.Direction{W: mat.NewDense(out, in, nil), B: mat.NewVecDense(out, nil)}
	}
	return d
}

// kfThetaOf returns Θ = [W b] of a layer.
func kfThetaOf(l *secondorder.Layer) *mat.Dense { return kfJoin(l.W, l.B) }

// kfGradThetaOf returns [∇W ∇b] of a layer.
func kfGradThetaOf(l *secondorder.Layer) *mat.Dense { return kfJoin(l.GradW, l.GradB) }

// thetas returns Θ = [W b] and [∇W ∇b] of every layer, copies taken
// before a step.
func (t *kfNet) thetas() (theta, grads []*mat.Dense) {
	for _, l := range t.layers {
		theta = append(theta, kfThetaOf(l))
		grads = append(grads, kfGradThetaOf(l))
	}
	return theta, grads
}

// kfJoin returns the n_out × (n_in+1) matrix [w b].
func kfJoin(w *mat.Dense, b *mat.VecDense) *mat.Dense {
	out, in := w.Dims()
	t := mat.NewDense(out, in+1, nil)
	t.Slice(0, out, 0, in).(*mat.Dense).Copy(w)
	t.ColView(in).(*mat.VecDense).CopyVec(b)
	return t
}

// kfRandomLayer returns a record with random Input (n rows), Back (m rows),
// gradients and parameters, for tests that only need matrices.
func kfRandomLayer(rng *rand.Rand, out, in, n, m int) *secondorder.Layer {
	return &secondorder.Layer{
		W:     testutil.RandDense(rng, out, in, 1),
		B:     mat.NewVecDense(out, testutil.RandSlice(rng, out, 1)),
		Input: testutil.RandDense(rng, n, in, 1),
		Grad:  testutil.RandDense(rng, n, out, 1),
		Back:  testutil.RandDense(rng, m, out, 1),
		GradW: testutil.RandDense(rng, out, in, 1),
		GradB: mat.NewVecDense(out, testutil.RandSlice(rng, out, 1)),
	}
}

// kfRefreshRecord draws new Input, Back and gradients into l.
func kfRefreshRecord(rng *rand.Rand, l *secondorder.Layer) {
	for _, m := range []*mat.Dense{l.Input, l.Back, l.Grad, l.GradW} {
		r, c := m.Dims()
		m.Copy(testutil.RandDense(rng, r, c, 1))
	}
	l.GradB.CopyVec(mat.NewVecDense(l.GradB.Len(), testutil.RandSlice(rng, l.GradB.Len(), 1)))
}

// kfInputFactor is Ā = (1/m) H̃ᵀH̃ over the first m rows of h, built
// with plain products as an independent reference.
func kfInputFactor(h *mat.Dense, m int) *mat.SymDense {
	_, in := h.Dims()
	ht := mat.NewDense(m, in+1, nil)
	ht.Slice(0, m, 0, in).(*mat.Dense).Copy(h.Slice(0, m, 0, in))
	for i := 0; i < m; i++ {
		ht.Set(i, in, 1)
	}
	var a mat.Dense
	a.Mul(ht.T(), ht)
	a.Scale(1/float64(m), &a)
	return kfSym(&a)
}

// kfOutputFactor is G = s BackᵀBack with s = BackScale (1/n if zero).
func kfOutputFactor(l *secondorder.Layer) *mat.SymDense {
	s := l.BackScale
	if s == 0 {
		n, _ := l.Input.Dims()
		s = 1 / float64(n)
	}
	var g mat.Dense
	g.Mul(l.Back.T(), l.Back)
	g.Scale(s, &g)
	return kfSym(&g)
}

func kfSym(m *mat.Dense) *mat.SymDense {
	n, _ := m.Dims()
	s := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			s.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	return s
}
