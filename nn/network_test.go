package nn

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
)

// netSpec is a small random network with mixed activations, with the loss
// and targets of a lossCase.
type netSpec struct {
	name  string
	sizes []int
	acts  []Activation
	lc    lossCase // loss and targets
}

var netSpecs = []netSpec{
	{"quadratic 4-5-3-2 tanh-relu-sigmoid", []int{4, 5, 3, 2}, []Activation{Tanh{}, ReLU{}, Sigmoid{}}, lossCases[1]},
	{"quadratic 4-5-3-2 sigmoid-tanh-identity", []int{4, 5, 3, 2}, []Activation{Sigmoid{}, Tanh{}, Identity{}}, lossCases[0]},
	{"quadratic 4-5-3-3 relu-sigmoid-softmax", []int{4, 5, 3, 3}, []Activation{ReLU{}, Sigmoid{}, Softmax{}}, lossCases[3]},
	{"bce 4-5-3-2 tanh-relu-sigmoid", []int{4, 5, 3, 2}, []Activation{Tanh{}, ReLU{}, Sigmoid{}}, lossCases[4]},
	{"ce 4-5-3-3 sigmoid-tanh-softmax", []int{4, 5, 3, 3}, []Activation{Sigmoid{}, Tanh{}, Softmax{}}, lossCases[5]},
	{"ce 3-4-3 identity-softmax soft targets", []int{3, 4, 3}, []Activation{Identity{}, Softmax{}}, lossCases[6]},
}

const netN = 6

// build returns an initialized network with a batch and targets.
func (s netSpec) build(seed uint64) (*Network, *mat.Dense, *mat.Dense) {
	rng := newRand(seed)
	net := New(s.sizes, s.acts)
	net.Init(Glorot{Alpha: 6}, rng)
	// Non-zero biases, so that their gradients are exercised.
	for _, l := range net.layers {
		for j := 0; j < l.b.Len(); j++ {
			l.b.SetVec(j, 0.3*rng.NormFloat64())
		}
	}
	X := testutil.RandDense(rng, netN, s.sizes[0], 1)
	Y := s.lc.targets(rng, netN, s.sizes[len(s.sizes)-1])
	return net, X, Y
}

// buildBackward returns the network, batch and targets of build(seed)
// after a forward and a backward pass, and a snapshot of the records'
// gradients, which the curvature passes must leave alone.
func (s netSpec) buildBackward(seed uint64) (*Network, *mat.Dense, snap) {
	net, X, Y := s.build(seed)
	net.Forward(X)
	net.Backward(s.lc.loss, Y)
	return net, Y, snapshot(net)
}

// TestNetworkGradients checks GradW and GradB of every layer against
// central differences of the mean loss (step 1e-5; tolerance 1e-7 absolute
// plus 1e-6 relative).
func TestNetworkGradients(t *testing.T) {
	for si, s := range netSpecs {
		net, X, Y := s.build(uint64(100 + si))
		theta := net.Params(nil)
		want := fd.Gradient(nil, func(p []float64) float64 {
			net.SetParams(p)
			return net.Risk(s.lc.loss, X, Y)
		}, theta, central1)
		net.SetParams(theta)
		net.Forward(X)
		net.Backward(s.lc.loss, Y)
		got := net.ParamGrads(nil)
		for p := range got {
			if math.Abs(got[p]-want[p]) > 1e-7+1e-6*math.Abs(want[p]) {
				t.Errorf("%s: ∂R/∂θ[%d] = %v, finite differences %v", s.name, p, got[p], want[p])
			}
		}
		// The records hold the same gradient, and Grad rows are per example.
		recs := net.Records()
		for l, r := range recs {
			if r.W != net.Layer(l).W() || r.B != net.Layer(l).B() {
				t.Errorf("%s: record %d does not share the layer's parameters", s.name, l)
			}
			var gw mat.Dense
			gw.Mul(r.Grad.T(), r.Input)
			gw.Scale(1/float64(netN), &gw)
			equalApprox(t, s.name+" GradW = Gradᵀ Input / n", r.GradW, &gw, 1e-15, 1e-13)
		}
		// Output-layer Grad is the loss's GradA, not divided by n.
		ga := mat.NewDense(netN, s.sizes[len(s.sizes)-1], nil)
		s.lc.loss.GradA(ga, net.Output(), Y)
		equalApprox(t, s.name+" output Grad", recs[len(recs)-1].Grad, ga, 0, 0)
	}
}

// forwardFrom returns a_L for one example whose layer-l pre-activation is a.
func forwardFrom(net *Network, l int, a []float64) []float64 {
	cur := mat.NewDense(1, len(a), append([]float64(nil), a...))
	for m := l + 1; m < net.NumLayers(); m++ {
		prev := net.Layer(m - 1)
		h := mat.NewDense(1, len(a), nil)
		prev.Activation().Forward(h, cur)
		out, _ := net.Layer(m).Dims()
		next := mat.NewDense(1, out, nil)
		net.Layer(m).Linear(next, h)
		cur, a = next, row(next, 0)
	}
	return rowVec(cur, 0)
}

// jacobianFD returns J_{a_l → a_L} at example i (k_L × n_l) by central
// differences.
func jacobianFD(net *Network, l, i int) *mat.Dense {
	al := rowVec(net.Layer(l).PreActivations(), i)
	k := net.Sizes()[net.NumLayers()]
	j := mat.NewDense(k, len(al), nil)
	fd.Jacobian(j, func(y, x []float64) { copy(y, forwardFrom(net, l, x)) }, al,
		&fd.JacobianSettings{Formula: fd.Central, Step: 1e-6})
	return j
}

// TestBackwardVectors checks that row r of layer l's Back is
// J_{a_l→a_L}(x_{idx[r]})ᵀ v_r, with the jacobian from finite differences
// (tolerance 1e-8 absolute plus 1e-6 relative), and that Grad, GradW and
// GradB are left alone.
func TestBackwardVectors(t *testing.T) {
	for si, s := range netSpecs {
		net, _, before := s.buildBackward(uint64(200 + si))
		rng := newRand(uint64(300 + si))
		k := s.sizes[len(s.sizes)-1]
		idx := []int{2, 0, 5, 2, 1, 3, 0}
		V := testutil.RandDense(rng, len(idx), k, 1)
		net.BackwardVectors(V, idx)
		if be := net.Records()[0].BackExamples; len(be) != len(idx) || be[0] != idx[0] {
			t.Errorf("%s: BackExamples = %v, want %v", s.name, be, idx)
		}
		if !equalSnapshot(before, snapshot(net)) {
			t.Errorf("%s: BackwardVectors changed Grad, GradW or GradB", s.name)
		}
		for l, rec := range net.Records() {
			if rec.Back == nil || rec.BackScale != 1/float64(netN) {
				t.Fatalf("%s: layer %d: Back %v, BackScale %v", s.name, l, rec.Back, rec.BackScale)
			}
			for r, i := range idx {
				j := jacobianFD(net, l, i)
				var want mat.VecDense
				want.MulVec(j.T(), V.RowView(r))
				equalApprox(t, s.name+" Back", rec.Back.RowView(r), &want, 1e-8, 1e-6)
			}
		}
		// Without an index, row r belongs to example r.
		V = testutil.RandDense(rng, netN, k, 1)
		net.BackwardVectors(V, nil)
		j := jacobianFD(net, 0, 4)
		var want mat.VecDense
		want.MulVec(j.T(), V.RowView(4))
		equalApprox(t, s.name+" Back no index", net.Records()[0].Back.RowView(4), &want, 1e-8, 1e-6)
	}
}

type snap [][]float64

func snapshot(net *Network) snap {
	var s snap
	for _, r := range net.Records() {
		s = append(s, append([]float64(nil), r.Grad.RawMatrix().Data...),
			append([]float64(nil), r.GradW.RawMatrix().Data...),
			append([]float64(nil), r.GradB.RawVector().Data...))
	}
	return s
}

func equalSnapshot(a, b snap) bool {
	for i := range a {
		if !floats.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// outputFactor returns (1/n) Σ_i J_iᵀ D_i J_i at layer l, with J_i the
// finite-difference jacobian of a_L w.r.t. a_l and D_i from DLogits.
func outputFactor(net *Network, loss Loss, c Curvature, sp Split, Y *mat.Dense, l int) *mat.Dense {
	out, _ := net.Layer(l).Dims()
	sum := mat.NewDense(out, out, nil)
	for i := 0; i < net.BatchSize(); i++ {
		var d, t1, t2 mat.Dense
		loss.DLogits(&d, c, sp, net.Output(), Y, i)
		j := jacobianFD(net, l, i)
		t1.Mul(&d, j)
		t2.Mul(j.T(), &t1)
		sum.Add(sum, &t2)
	}
	sum.Scale(1/float64(net.BatchSize()), sum)
	return sum
}

// backMoment returns scale · backᵀ back.
func backMoment(back *mat.Dense, scale float64) *mat.Dense {
	var m mat.Dense
	m.Mul(back.T(), back)
	m.Scale(scale, &m)
	return &m
}

// TestBackwardExact checks that BackwardGN and BackwardFisher give
// BackScale·Backᵀ Back = (1/n) Σ_i J_{a_l}ᵀ D_a J_{a_l} at every layer.
func TestBackwardExact(t *testing.T) {
	for si, s := range netSpecs {
		net, Y, before := s.buildBackward(uint64(400 + si))
		type run struct {
			c  Curvature
			sp Split
			do func()
		}
		runs := []run{
			{GaussNewton, SplitLogits, func() { net.BackwardGN(s.lc.loss, Y, SplitLogits) }},
			{GaussNewton, SplitOutputs, func() { net.BackwardGN(s.lc.loss, Y, SplitOutputs) }},
			{Fisher, SplitLogits, func() { net.BackwardFisher(s.lc.loss) }},
		}
		for _, r := range runs {
			r.do()
			k := s.sizes[len(s.sizes)-1]
			if be := net.Records()[0].BackExamples; len(be) != netN*k || be[k] != 1 || be[k-1] != 0 {
				t.Errorf("%s: BackExamples = %v", s.name, be)
			}
			for l, rec := range net.Records() {
				if rows, _ := rec.Back.Dims(); rows != netN*k {
					t.Fatalf("%s: Back has %d rows, want %d", s.name, rows, netN*k)
				}
				got := backMoment(rec.Back, rec.BackScale)
				want := outputFactor(net, s.lc.loss, r.c, r.sp, Y, l)
				equalApprox(t, s.name+" "+r.c.String()+" "+r.sp.String(), got, want, 1e-8, 1e-6)
			}
		}
		if !equalSnapshot(before, snapshot(net)) {
			t.Errorf("%s: exact backward changed Grad, GradW or GradB", s.name)
		}
	}
}

// TestBackwardMC checks that BackwardMC backpropagates the gradient at the
// sampled targets, and that its output-side factor averaged over 4000 draws
// is within 5 standard errors of the exact Fisher factor at the first
// layer.
func TestBackwardMC(t *testing.T) {
	for si, s := range netSpecs {
		net, Y, before := s.buildBackward(uint64(500 + si))
		rng := newRand(uint64(600 + si))
		net.BackwardMC(s.lc.loss, rng)
		recs := net.Records()
		ga := mat.NewDense(netN, s.sizes[len(s.sizes)-1], nil)
		s.lc.loss.GradA(ga, net.Output(), net.SampledTargets())
		equalApprox(t, s.name+" MC output Back", recs[len(recs)-1].Back, ga, 0, 0)
		if !equalSnapshot(before, snapshot(net)) {
			t.Errorf("%s: BackwardMC changed Grad, GradW or GradB", s.name)
		}

		const N = 4000
		out, _ := net.Layer(0).Dims()
		sum := mat.NewDense(out, out, nil)
		sq := mat.NewDense(out, out, nil)
		for range N {
			net.BackwardMC(s.lc.loss, rng)
			m := backMoment(recs[0].Back, recs[0].BackScale)
			sum.Add(sum, m)
			m.MulElem(m, m)
			sq.Add(sq, m)
		}
		want := outputFactor(net, s.lc.loss, Fisher, SplitLogits, Y, 0)
		for p := 0; p < out; p++ {
			for q := 0; q < out; q++ {
				mean := sum.At(p, q) / N
				se := math.Sqrt(math.Max(sq.At(p, q)/N-mean*mean, 0) / N)
				if math.Abs(mean-want.At(p, q)) > 5*se+1e-10 {
					t.Errorf("%s: MC Fisher factor (%d,%d) = %v ± %v, exact %v", s.name, p, q, mean, se, want.At(p, q))
				}
			}
		}
	}
}

// TestNoAllocs checks that Forward, Backward and the vector backward passes
// do not allocate at a fixed batch size after warm-up. The products are kept
// below the size (4 blocks of 64×64) from which gonum's pure-Go dgemm goes
// parallel and allocates goroutine bookkeeping of its own.
func TestNoAllocs(t *testing.T) {
	testutil.SkipAllocsUnderRace(t)
	rng := newRand(700)
	net := NewAutoencoder([]int{20, 16, 8, 4, 8, 16, 20})
	net.Init(Sparse{}, rng)
	X := mat.NewDense(32, 20, nil)
	for i := range X.RawMatrix().Data {
		X.RawMatrix().Data[i] = rng.Float64()
	}
	small := X.Slice(0, 5, 0, 20).(*mat.Dense) // 5·20 = 100 rows for the exact passes
	V := testutil.RandDense(rng, 32, 20, 1)
	cases := []struct {
		name string
		fn   func()
	}{
		{"Forward+Backward", func() { net.Forward(X); net.Backward(Quadratic{}, X) }},
		{"Forward+Backward+BackwardVectors", func() { net.Forward(X); net.Backward(Quadratic{}, X); net.BackwardVectors(V, nil) }},
		{"Forward+BackwardMC", func() { net.Forward(X); net.BackwardMC(Quadratic{}, rng) }},
		{"Forward+BackwardFisher", func() { net.Forward(small); net.BackwardFisher(Quadratic{}) }},
		{"Forward+BackwardGN BCE", func() { net.Forward(small); net.BackwardGN(BinaryCrossEntropy{}, small, SplitOutputs) }},
	}
	for _, c := range cases {
		c.fn()
		if a := testing.AllocsPerRun(20, c.fn); a != 0 {
			t.Errorf("%s: %v allocations per run, want 0", c.name, a)
		}
	}
}

func TestAutoencoder(t *testing.T) {
	net := NewAutoencoder([]int{784, 1000, 500, 250, 30, 250, 500, 1000, 784})
	if got := net.NumParams(); got != 2837314 {
		t.Errorf("NumParams = %d, want 2837314", got)
	}
	for l := 0; l < net.NumLayers(); l++ {
		want := "sigmoid"
		if l == 3 {
			want = "identity"
		}
		if got := net.Layer(l).Activation().Name(); got != want {
			t.Errorf("layer %d activation %s, want %s", l, got, want)
		}
	}
	// One example through the full-size network.
	net.Init(Sparse{}, newRand(1))
	f := net.Forward(mat.NewDense(1, 784, nil))
	if r, c := f.Dims(); r != 1 || c != 784 {
		t.Errorf("output is %d×%d", r, c)
	}
}

func TestParamsLayout(t *testing.T) {
	net := New([]int{3, 2, 1}, []Activation{Tanh{}, Identity{}})
	theta := make([]float64, net.NumParams())
	for i := range theta {
		theta[i] = float64(i)
	}
	net.SetParams(theta)
	// θ_0 = [vec(W_0); b_0], W_0 2×3, column-major.
	W := net.Layer(0).W()
	if W.At(0, 0) != 0 || W.At(1, 0) != 1 || W.At(0, 1) != 2 || W.At(1, 2) != 5 {
		t.Errorf("vec(W) is not column-major: %v", mat.Formatted(W))
	}
	if b := net.Layer(0).B(); b.AtVec(0) != 6 || b.AtVec(1) != 7 {
		t.Errorf("b_0 = %v", b.RawVector().Data)
	}
	if W1 := net.Layer(1).W(); W1.At(0, 0) != 8 || W1.At(0, 1) != 9 || net.Layer(1).B().AtVec(0) != 10 {
		t.Errorf("layer 1 θ misplaced")
	}
	if !floats.Equal(net.Params(nil), theta) {
		t.Error("Params does not invert SetParams")
	}
}

// TestBatchSizeChange checks that the buffers follow the batch size and
// that results do not depend on it.
func TestBatchSizeChange(t *testing.T) {
	s := netSpecs[0]
	net, X, Y := s.build(800)
	f := mat.DenseCopyOf(net.Forward(X))
	net.Backward(s.lc.loss, Y)
	g := mat.DenseCopyOf(net.Records()[0].Grad)
	net.Forward(X.Slice(0, 2, 0, 4))
	net.Backward(s.lc.loss, Y.Slice(0, 2, 0, 2))
	equalApprox(t, "small batch output", net.Output().F, f.Slice(0, 2, 0, 2), 1e-15, 1e-15)
	equalApprox(t, "small batch grad", net.Records()[0].Grad, g.Slice(0, 2, 0, 5), 1e-15, 1e-15)
	if r, _ := net.Records()[1].Input.Dims(); r != 2 {
		t.Errorf("Input has %d rows after resizing to 2", r)
	}
	net.Forward(X)
	equalApprox(t, "batch restored", net.Output().F, f, 0, 0)
}

func TestNetworkPanics(t *testing.T) {
	act3 := []Activation{Tanh{}, Tanh{}, Sigmoid{}}
	expectPanic(t, "New sizes", func() { New([]int{4}, nil) })
	{
		net := New([]int{2, 3}, []Activation{Softmax{}})
		net.Forward(mat.NewDense(1, 2, nil))
		expectPanic(t, "BackwardMC nil rng", func() { net.BackwardMC(CrossEntropy{}, nil) }, "nil rng")
	}

	expectPanic(t, "New acts", func() { New([]int{4, 3, 2}, act3) }, "activations")
	expectPanic(t, "New zero size", func() { New([]int{4, 0, 2}, act3[:2]) })
	expectPanic(t, "hidden softmax", func() { New([]int{4, 3, 2}, []Activation{Softmax{}, Sigmoid{}}) }, "softmax")
	net := New([]int{4, 3, 2}, []Activation{Tanh{}, Sigmoid{}})
	expectPanic(t, "Backward before Forward", func() { net.Backward(Quadratic{}, mat.NewDense(2, 2, nil)) }, "before Forward")
	expectPanic(t, "Forward shape", func() { net.Forward(mat.NewDense(2, 5, nil)) }, "2×5")
	net.Forward(mat.NewDense(2, 4, nil))
	expectPanic(t, "Backward targets", func() { net.Backward(Quadratic{}, mat.NewDense(3, 2, nil)) }, "targets")
	expectPanic(t, "incompatible loss", func() { net.Backward(CrossEntropy{}, mat.NewDense(2, 2, nil)) }, "softmax")
	expectPanic(t, "BackwardVectors columns", func() { net.BackwardVectors(mat.NewDense(2, 3, nil), nil) })
	expectPanic(t, "BackwardVectors no index", func() { net.BackwardVectors(mat.NewDense(3, 2, nil), nil) }, "index")
	expectPanic(t, "BackwardVectors index", func() { net.BackwardVectors(mat.NewDense(1, 2, nil), []int{2}) }, "out of range")
	expectPanic(t, "BackwardVectors index length", func() { net.BackwardVectors(mat.NewDense(2, 2, nil), []int{0}) }, "length")
	expectPanic(t, "SetParams", func() { net.SetParams(make([]float64, 3)) }, "parameters")
	expectPanic(t, "Params", func() { net.Params(make([]float64, 3)) }, "parameters")
	expectPanic(t, "Linear", func() { net.Layer(0).Linear(mat.NewDense(2, 3, nil), mat.NewDense(2, 3, nil)) })
}

// TestGradientsOnlyAfterBackward proves that the records carry Grad, GradW
// and GradB only between a Backward and the next Forward, so that an
// optimizer stepping after a Forward alone finds no stale gradients.
func TestGradientsOnlyAfterBackward(t *testing.T) {
	net := New([]int{2, 3, 2}, []Activation{Tanh{}, Softmax{}})
	x, y := mat.NewDense(2, 2, []float64{1, 2, 3, 4}), mat.NewDense(2, 2, []float64{1, 0, 0, 1})
	unset := func(when string) {
		for k, r := range net.Records() {
			if r.Grad != nil || r.GradW != nil || r.GradB != nil {
				t.Errorf("%s: layer %d has gradients", when, k)
			}
		}
	}
	unset("new network")
	net.Forward(x)
	unset("after Forward")
	net.Backward(CrossEntropy{}, y)
	for k, r := range net.Records() {
		if r.Grad == nil || r.GradW == nil || r.GradB == nil {
			t.Errorf("after Backward: layer %d has no gradients", k)
		}
	}
	net.Forward(x)
	unset("after the next Forward")
}
