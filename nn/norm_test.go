package nn

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
)

// normSpec is a small network with normalised and whitened layers.
type normSpec struct {
	name     string
	sizes    []int
	acts     []Activation
	norms    []Norm
	whitened []int
	lc       lossCase
}

var normSpecs = []normSpec{
	{"bn-meanonly-none tanh-sigmoid-identity quadratic", []int{4, 5, 3, 2}, []Activation{Tanh{}, Sigmoid{}, Identity{}},
		[]Norm{BatchNorm, MeanOnlyBatchNorm, NoNorm}, nil, lossCases[0]},
	{"meanonly-bn-none relu-sigmoid-softmax ce", []int{4, 5, 3, 3}, []Activation{ReLU{}, Sigmoid{}, Softmax{}},
		[]Norm{MeanOnlyBatchNorm, BatchNorm, NoNorm}, nil, lossCases[5]},
	{"bn on the output layer bce", []int{4, 5, 2}, []Activation{Tanh{}, Sigmoid{}},
		[]Norm{BatchNorm, BatchNorm}, nil, lossCases[4]},
	{"whitened every layer, no norm, sigmoid quadratic", []int{4, 5, 3, 2}, []Activation{Sigmoid{}, Tanh{}, Sigmoid{}},
		[]Norm{NoNorm, NoNorm, NoNorm}, []int{0, 1, 2}, lossCases[1]},
	{"whitened + bn + mean-only", []int{4, 5, 3, 2}, []Activation{Sigmoid{}, Tanh{}, Sigmoid{}},
		[]Norm{BatchNorm, NoNorm, MeanOnlyBatchNorm}, []int{1, 2}, lossCases[1]},
}

// build returns an initialized network with random biases, γ, β, running
// statistics and (for whitened layers) a whitening estimated from a sample,
// with a batch of netN examples and targets.
func (s normSpec) build(seed uint64) (*Network, *mat.Dense, *mat.Dense) {
	rng := newRand(seed)
	net := New(s.sizes, s.acts)
	for l, k := range s.norms {
		net.SetNorm(l, k)
	}
	for _, l := range s.whitened {
		net.SetWhitened(l, true)
	}
	net.Init(Glorot{Alpha: 6}, rng)
	for _, l := range net.layers {
		for j := 0; j < l.b.Len(); j++ {
			l.b.SetVec(j, 0.3*rng.NormFloat64())
		}
		if l.norm == nil {
			continue
		}
		for j := 0; j < l.b.Len(); j++ {
			l.norm.beta.SetVec(j, 0.3*rng.NormFloat64())
			l.norm.runMean.SetVec(j, 0.3*rng.NormFloat64())
			if l.norm.kind == BatchNorm {
				l.norm.gamma.SetVec(j, 1+0.3*rng.NormFloat64())
				l.norm.runVar.SetVec(j, 0.5+rng.Float64())
			}
		}
	}
	if len(s.whitened) > 0 {
		// Correlated inputs with a constant column.
		S := correlated(rng, 60, s.sizes[0])
		if err := net.Whiten(S, 0.05); err != nil {
			panic(err)
		}
	}
	X := testutil.RandDense(rng, netN, s.sizes[0], 1)
	Y := s.lc.targets(rng, netN, s.sizes[len(s.sizes)-1])
	return net, X, Y
}

// correlated returns N rows of d correlated Gaussian features whose last
// column is constant.
func correlated(rng interface{ NormFloat64() float64 }, N, d int) *mat.Dense {
	Z := mat.NewDense(N, d, nil)
	for i := range Z.RawMatrix().Data {
		Z.RawMatrix().Data[i] = rng.NormFloat64()
	}
	M := mat.NewDense(d, d, nil)
	for i := range M.RawMatrix().Data {
		M.RawMatrix().Data[i] = rng.NormFloat64()
	}
	var X mat.Dense
	X.Mul(Z, M)
	for i := 0; i < N; i++ {
		X.Set(i, d-1, 0.7)
	}
	return &X
}

// directNorm returns the normalisation of a by its definition, with the
// batch's statistics or the running ones.
func directNorm(s *normState, a *mat.Dense, batch bool) *mat.Dense {
	n, out := a.Dims()
	z := mat.NewDense(n, out, nil)
	for j := 0; j < out; j++ {
		col := mat.Col(nil, j, a)
		mean, vr := s.runMean.AtVec(j), 0.0
		if s.kind == BatchNorm {
			vr = s.runVar.AtVec(j)
		}
		if batch {
			mean, vr = 0, 0
			for _, v := range col {
				mean += v
			}
			mean /= float64(n)
			for _, v := range col {
				vr += (v - mean) * (v - mean)
			}
			vr /= float64(n)
		}
		for i, v := range col {
			if s.kind == MeanOnlyBatchNorm {
				z.Set(i, j, v-mean+s.beta.AtVec(j))
			} else {
				z.Set(i, j, s.gamma.AtVec(j)*(v-mean)/math.Sqrt(vr+s.eps)+s.beta.AtVec(j))
			}
		}
	}
	return z
}

// directForward recomputes the network's output on X from the definitions
// of the layers, in the network's mode, with delta added to the
// pre-activation a_l[i][j] (no perturbation when l < 0). It touches neither
// the network's buffers nor its running averages.
func directForward(net *Network, X *mat.Dense, l, i, j int, delta float64) Output {
	n, _ := X.Dims()
	h := X
	var o Output
	for k, ly := range net.layers {
		out, in := ly.Dims()
		input := h
		if ly.wh != nil {
			he := mat.NewDense(n, in, nil)
			for r := 0; r < n; r++ {
				var c, u mat.VecDense
				c.SubVec(h.RowView(r), ly.wh.mu)
				u.MulVec(ly.wh.u, &c)
				he.SetRow(r, u.RawVector().Data)
			}
			input = he
		}
		a := mat.NewDense(n, out, nil)
		a.Mul(input, ly.w.T())
		for r := 0; r < n; r++ {
			for c := 0; c < out; c++ {
				a.Set(r, c, a.At(r, c)+ly.b.AtVec(c))
			}
		}
		if k == l {
			a.Set(i, j, a.At(i, j)+delta)
		}
		z := a
		if ly.norm != nil {
			z = directNorm(ly.norm, a, net.training)
		}
		f := mat.NewDense(n, out, nil)
		ly.act.Forward(f, z)
		h = f
		o = Output{Act: ly.act, A: z, F: f}
	}
	return o
}

type runStats [][]float64

func runningStats(net *Network) runStats {
	var s runStats
	for _, ly := range net.layers {
		if ly.norm == nil {
			continue
		}
		s = append(s, slices.Clone(ly.norm.runMean.RawVector().Data))
		if ly.norm.kind == BatchNorm {
			s = append(s, slices.Clone(ly.norm.runVar.RawVector().Data))
		}
	}
	return s
}

func (s runStats) same(t runStats) bool {
	for i := range s {
		if !sameBits(s[i], t[i]) {
			return false
		}
	}
	return len(s) == len(t)
}

// TestNormForward checks Forward against the definitions of the layers
// (tolerance 1e-14 absolute plus 1e-12 relative) in both modes, that the
// output's logits are the normalised pre-activations, that evaluation mode
// leaves the running statistics unchanged and is per example.
func TestNormForward(t *testing.T) {
	for si, s := range normSpecs {
		for _, train := range []bool{true, false} {
			net, X, _ := s.build(uint64(1000 + si))
			net.SetTraining(train)
			before := runningStats(net)
			f := mat.DenseCopyOf(net.Forward(X))
			want := directForward(net, X, -1, 0, 0, 0)
			name := s.name
			if !train {
				name += " (evaluation)"
			}
			equalApprox(t, name+" outputs", f, want.F, 1e-14, 1e-12)
			equalApprox(t, name+" logits", net.Output().A, want.A, 1e-14, 1e-12)
			if changed := !before.same(runningStats(net)); len(before) > 0 && changed != train {
				t.Errorf("%s: running statistics changed: %v, want %v", name, changed, train)
			}
			if !train {
				// One example at a time gives the same rows.
				for i := 0; i < netN; i++ {
					fi := net.Forward(X.Slice(i, i+1, 0, s.sizes[0]))
					equalApprox(t, name+" single example", fi, f.Slice(i, i+1, 0, f.RawMatrix().Cols), 1e-15, 1e-13)
				}
				if !before.same(runningStats(net)) {
					t.Errorf("%s: evaluation changed the running statistics", name)
				}
			}
		}
	}
}

// TestNormRunningAverages checks the running averages after training
// passes, μ_run ← (1−m) μ_run + m μ_B and σ²_run ← (1−m) σ²_run + m σ²_B
// n/(n−1), with the default momentum and a set one.
func TestNormRunningAverages(t *testing.T) {
	rng := newRand(1100)
	net := NewNormalized([]int{3, 4, 4, 2}, []Activation{Tanh{}, Sigmoid{}, Identity{}}, BatchNorm)
	net.SetNorm(1, MeanOnlyBatchNorm)
	net.Init(Glorot{}, rng)
	if net.Layer(2).Norm() != NoNorm || net.Layer(0).Norm() != BatchNorm {
		t.Fatalf("NewNormalized: norms %v %v %v", net.Layer(0).Norm(), net.Layer(1).Norm(), net.Layer(2).Norm())
	}
	net.Layer(1).SetNormOptions(0, 0.5)
	if eps, m := net.Layer(1).NormOptions(); eps != DefaultNormEps || m != 0.5 {
		t.Errorf("NormOptions = %v, %v", eps, m)
	}
	const n = 7
	wantMean := [][]float64{make([]float64, 4), make([]float64, 4)}
	wantVar := []float64{1, 1, 1, 1}
	for step := 0; step < 3; step++ {
		X := testutil.RandDense(rng, n, 3, 1)
		net.Forward(X)
		for l, m := range []float64{DefaultNormMomentum, 0.5} {
			a := net.Layer(l).PreActivations()
			for j := 0; j < 4; j++ {
				col := mat.Col(nil, j, a)
				mean, vr := 0.0, 0.0
				for _, v := range col {
					mean += v / n
				}
				for _, v := range col {
					vr += (v - mean) * (v - mean) / (n - 1)
				}
				wantMean[l][j] = (1-m)*wantMean[l][j] + m*mean
				if l == 0 {
					wantVar[j] = (1-m)*wantVar[j] + m*vr
				}
			}
		}
	}
	equalApprox(t, "running mean layer 0", net.Layer(0).RunningMean(), mat.NewVecDense(4, wantMean[0]), 1e-15, 1e-13)
	equalApprox(t, "running var layer 0", net.Layer(0).RunningVar(), mat.NewVecDense(4, wantVar), 1e-15, 1e-13)
	equalApprox(t, "running mean layer 1", net.Layer(1).RunningMean(), mat.NewVecDense(4, wantMean[1]), 1e-15, 1e-13)
	if net.Layer(1).RunningVar() != nil || net.Layer(1).Gamma() != nil || net.Layer(1).Beta() == nil {
		t.Error("mean-only layer: want β and no γ or running variance")
	}
	if ex := net.Records()[1].Extra; len(ex) != 1 || ex[0].Name != "beta" {
		t.Errorf("mean-only Extra = %v", ex)
	}
	if ex := net.Records()[0].Extra; len(ex) != 2 || ex[0].Name != "gamma" || ex[1].Name != "beta" ||
		ex[0].Value != net.Layer(0).Gamma() || ex[1].Value != net.Layer(0).Beta() {
		t.Errorf("batch-norm Extra = %v", ex)
	}
	if net.Records()[2].Extra != nil {
		t.Error("output layer has Extra")
	}
}

// TestNormGradients checks, in training mode (through the batch
// statistics) and in evaluation mode, every gradient of Backward against
// central differences of the mean loss (step 1e-5; tolerance 1e-7 absolute
// plus 1e-6 relative): GradW and GradB (through Params), the γ and β of
// the records' Extra, and the records' Grad, row i of which must be
// n ∂R/∂a_i. In training mode, Σ_i Grad_i = 0 in normalised layers, so that
// GradB is 0 there.
func TestNormGradients(t *testing.T) {
	for si, s := range normSpecs {
		for _, train := range []bool{true, false} {
			name := s.name
			if !train {
				name += " (evaluation)"
			}
			net, X, Y := s.build(uint64(1200 + si))
			net.SetTraining(train)
			loss := s.lc.loss
			theta := net.Params(nil)
			want := fd.Gradient(nil, func(p []float64) float64 {
				net.SetParams(p)
				return net.Risk(loss, X, Y)
			}, theta, central1)
			net.SetParams(theta)
			net.Forward(X)
			net.Backward(loss, Y)
			got := net.ParamGrads(nil)
			for p := range got {
				if math.Abs(got[p]-want[p]) > 1e-7+1e-6*math.Abs(want[p]) {
					t.Errorf("%s: ∂R/∂θ[%d] = %v, finite differences %v", name, p, got[p], want[p])
				}
			}
			recs := net.Records()
			grads := make([]*mat.Dense, len(recs))
			gradB := make([]*mat.VecDense, len(recs))
			for l, r := range recs {
				grads[l] = mat.DenseCopyOf(r.Grad)
				gradB[l] = mat.VecDenseCopyOf(r.GradB)
				var gw mat.Dense
				gw.Mul(r.Grad.T(), r.Input)
				gw.Scale(1/float64(netN), &gw)
				equalApprox(t, name+" GradW = Gradᵀ Input / n", r.GradW, &gw, 1e-15, 1e-13)
			}
			// γ and β.
			for l, r := range recs {
				for _, p := range r.Extra {
					g := mat.VecDenseCopyOf(p.Grad)
					v := p.Value.RawVector().Data
					fdg := fd.Gradient(nil, func(x []float64) float64 {
						saved := slices.Clone(v)
						copy(v, x)
						defer copy(v, saved)
						return net.Risk(loss, X, Y)
					}, slices.Clone(v), central1)
					equalApprox(t, fmt.Sprintf("%s layer %d %s", name, l, p.Name), g, mat.NewVecDense(len(fdg), fdg), 1e-7, 1e-6)
				}
			}
			// Grad of every layer, through the full backward of the
			// normalisation: perturb one pre-activation a_l[i][j].
			for l := range recs {
				out, _ := net.Layer(l).Dims()
				for i := 0; i < netN; i++ {
					for j := 0; j < out; j++ {
						d := fd.Derivative(func(x float64) float64 {
							return loss.Value(directForward(net, X, l, i, j, x), Y)
						}, 0, central1)
						if g := grads[l].At(i, j); math.Abs(g-netN*d) > 1e-7+1e-6*math.Abs(netN*d) {
							t.Errorf("%s: layer %d Grad(%d,%d) = %v, n ∂R/∂a = %v", name, l, i, j, g, netN*d)
						}
					}
				}
				if !train || net.Layer(l).Norm() == NoNorm {
					continue
				}
				for j := 0; j < out; j++ {
					sum := 0.0
					for i := 0; i < netN; i++ {
						sum += grads[l].At(i, j)
					}
					if math.Abs(sum) > 1e-14 || math.Abs(gradB[l].AtVec(j)) > 1e-15 {
						t.Errorf("%s: layer %d: Σ_i Grad_i[%d] = %v, GradB = %v, want 0", name, l, j, sum, gradB[l].AtVec(j))
					}
				}
			}
		}
	}
}

// fold returns a plain network computing, in evaluation mode, the same
// function as net: whitening folded as W = V U, b = d − V U μ, and the
// normalisation with running statistics as W ← diag(g) W, b ← g ⊙ (b − μ_run)
// + β with g = γ/√(σ²_run + ε) (1 for mean-only). Its pre-activations are
// net's activation inputs z; gains returns g per layer.
func fold(net *Network) (plain *Network, gains [][]float64) {
	acts := make([]Activation, len(net.layers))
	for l, ly := range net.layers {
		acts[l] = ly.act
	}
	plain = New(net.sizes, acts)
	for l, ly := range net.layers {
		out, _ := ly.Dims()
		W, b := plain.layers[l].w, plain.layers[l].b
		W.Copy(ly.w)
		b.CopyVec(ly.b)
		if ly.wh != nil {
			W.Mul(ly.w, ly.wh.u)
			var c mat.VecDense
			c.MulVec(W, ly.wh.mu)
			b.SubVec(b, &c)
		}
		g := make([]float64, out)
		for j := range g {
			g[j] = 1
			if ly.norm == nil {
				continue
			}
			if ly.norm.kind == BatchNorm {
				g[j] = ly.norm.gamma.AtVec(j) / math.Sqrt(ly.norm.runVar.AtVec(j)+ly.norm.eps)
			}
			for c := 0; c < W.RawMatrix().Cols; c++ {
				W.Set(j, c, g[j]*W.At(j, c))
			}
			b.SetVec(j, g[j]*(b.AtVec(j)-ly.norm.runMean.AtVec(j))+ly.norm.beta.AtVec(j))
		}
		gains = append(gains, g)
	}
	return plain, gains
}

// scaleCols returns m with column j multiplied by g[j].
func scaleCols(m mat.Matrix, g []float64) *mat.Dense {
	d := mat.DenseCopyOf(m)
	r, c := d.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			d.Set(i, j, d.At(i, j)*g[j])
		}
	}
	return d
}

// TestNormCurvatureVectors checks that the vector backward passes panic
// after a training-mode Forward with batch normalisation, and that in
// evaluation mode (and for whitened layers in any mode) they agree with
// those of the equivalent plain network (fold), whose passes are checked
// against finite differences in network_test.go: Back_l = Back'_l diag(g_l)
// and likewise Grad_l (tolerance 1e-10 absolute plus 1e-9 relative).
func TestNormCurvatureVectors(t *testing.T) {
	for si, s := range normSpecs {
		net, X, Y := s.build(uint64(1300 + si))
		loss := s.lc.loss
		k := s.sizes[len(s.sizes)-1]
		hasNorm := slices.ContainsFunc(s.norms, func(n Norm) bool { return n != NoNorm })
		if hasNorm {
			net.Forward(X)
			net.Backward(loss, Y)
			msg := "SetTraining(false)"
			expectPanic(t, s.name+" BackwardVectors", func() { net.BackwardVectors(mat.NewDense(netN, k, nil), nil) }, "BackwardVectors", msg)
			expectPanic(t, s.name+" BackwardGN", func() { net.BackwardGN(loss, Y, SplitLogits) }, "BackwardGN", msg)
			expectPanic(t, s.name+" BackwardFisher", func() { net.BackwardFisher(loss) }, "BackwardFisher", msg)
			expectPanic(t, s.name+" BackwardMC", func() { net.BackwardMC(loss, newRand(1)) }, "BackwardMC", msg)
			net.SetTraining(false)
		}
		plain, gains := fold(net)
		equalApprox(t, s.name+" folded outputs", net.Forward(X), plain.Forward(X), 1e-13, 1e-12)
		net.Backward(loss, Y)
		plain.Backward(loss, Y)
		check := func(what string, get func(n *Network, l int) mat.Matrix) {
			for l := range net.layers {
				equalApprox(t, s.name+" "+what, get(net, l), scaleCols(get(plain, l), gains[l]), 1e-10, 1e-9)
			}
		}
		check("Grad", func(n *Network, l int) mat.Matrix { return n.Records()[l].Grad })
		V := testutil.RandDense(newRand(uint64(1400+si)), 4, k, 1)
		idx := []int{3, 0, 3, 5}
		net.BackwardVectors(V, idx)
		plain.BackwardVectors(V, idx)
		check("BackwardVectors", func(n *Network, l int) mat.Matrix { return n.Records()[l].Back })
		net.BackwardGN(loss, Y, SplitOutputs)
		plain.BackwardGN(loss, Y, SplitOutputs)
		check("BackwardGN", func(n *Network, l int) mat.Matrix { return n.Records()[l].Back })
		net.BackwardFisher(loss)
		plain.BackwardFisher(loss)
		check("BackwardFisher", func(n *Network, l int) mat.Matrix { return n.Records()[l].Back })
		if _, ok := loss.(CrossEntropy); !ok { // categorical draws could differ at a rounding boundary
			net.BackwardMC(loss, newRand(7))
			plain.BackwardMC(loss, newRand(7))
			check("BackwardMC", func(n *Network, l int) mat.Matrix { return n.Records()[l].Back })
		}
	}
}

func TestNormPanics(t *testing.T) {
	net := NewNormalized([]int{3, 4, 2}, []Activation{Tanh{}, Identity{}}, BatchNorm)
	expectPanic(t, "one example in training", func() { net.Forward(mat.NewDense(1, 3, nil)) }, "at least 2 examples")
	net.SetTraining(false)
	net.Forward(mat.NewDense(1, 3, nil)) // fine in evaluation mode
	expectPanic(t, "SetNorm range", func() { net.SetNorm(2, BatchNorm) }, "out of range")
	expectPanic(t, "SetNorm kind", func() { net.SetNorm(0, Norm(7)) }, "unknown")
	expectPanic(t, "SetNormOptions plain", func() { net.Layer(1).SetNormOptions(1, 0.1) }, "no normalisation")
	expectPanic(t, "SetNormOptions eps", func() { net.Layer(0).SetNormOptions(-1, 0.1) }, "ε")
	expectPanic(t, "SetNormOptions momentum", func() { net.Layer(0).SetNormOptions(1e-3, 1.5) }, "momentum")
	if got := Norm(5).String(); got != "Norm(5)" {
		t.Errorf("Norm(5).String() = %q", got)
	}
	if BatchNorm.String() != "batch" || MeanOnlyBatchNorm.String() != "mean-only" || NoNorm.String() != "none" {
		t.Error("Norm.String")
	}
}

func TestAutoencoderVariants(t *testing.T) {
	sizes := []int{20, 16, 8, 4, 8, 16, 20}
	for _, norm := range []Norm{BatchNorm, MeanOnlyBatchNorm} {
		net := NewAutoencoderNorm(sizes, norm)
		if net.Plain() {
			t.Error("normalised autoencoder is Plain")
		}
		for l := 0; l < net.NumLayers(); l++ {
			want := norm
			if l == net.NumLayers()-1 {
				want = NoNorm
			}
			if got := net.Layer(l).Norm(); got != want {
				t.Errorf("%v autoencoder: layer %d norm %v, want %v", norm, l, got, want)
			}
		}
		if net.Layer(2).Activation().Name() != "identity" {
			t.Error("code layer is not linear")
		}
	}
	net := NewAutoencoderWhitened(sizes)
	for l := 0; l < net.NumLayers(); l++ {
		if !net.Layer(l).Whitened() || net.Layer(l).Norm() != NoNorm {
			t.Errorf("whitened autoencoder: layer %d whitened %v norm %v", l, net.Layer(l).Whitened(), net.Layer(l).Norm())
		}
	}
	if !NewAutoencoder(sizes).Plain() {
		t.Error("plain autoencoder is not Plain")
	}
}

// TestNormNoAllocs checks that Forward and Backward of networks with
// normalisation and whitening do not allocate at a fixed batch size, in
// both modes, and neither do the vector backward passes in evaluation
// mode.
func TestNormNoAllocs(t *testing.T) {
	testutil.SkipAllocsUnderRace(t)
	rng := newRand(1500)
	sizes := []int{20, 16, 8, 4, 8, 16, 20}
	nets := map[string]*Network{
		"batch":     NewAutoencoderNorm(sizes, BatchNorm),
		"mean-only": NewAutoencoderNorm(sizes, MeanOnlyBatchNorm),
		"whitened":  NewAutoencoderWhitened(sizes),
	}
	X := mat.NewDense(32, 20, nil)
	for i := range X.RawMatrix().Data {
		X.RawMatrix().Data[i] = rng.Float64()
	}
	V := testutil.RandDense(rng, 32, 20, 1)
	for name, net := range nets {
		net.Init(Sparse{}, rng)
		if err := net.Whiten(X, 0); err != nil {
			t.Fatal(err)
		}
		for _, train := range []bool{true, false} {
			net.SetTraining(train)
			fn := func() { net.Forward(X); net.Backward(Quadratic{}, X) }
			if !train {
				fn = func() {
					net.Forward(X)
					net.Backward(Quadratic{}, X)
					net.BackwardVectors(V, nil)
					net.BackwardMC(Quadratic{}, rng)
				}
			}
			fn()
			if a := testing.AllocsPerRun(20, fn); a != 0 {
				t.Errorf("%s (training %v): %v allocations per run, want 0", name, train, a)
			}
		}
	}
}
