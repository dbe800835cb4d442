// Command spectrum draws a picture of the curvature of the benchmark
// autoencoder at several points of its training: the spectral density of
// the Gauss–Newton matrix of a batch (stochastic Lanczos quadrature on the
// matrix-free operator of package curvature/network), and how far each
// block approximation of this library — K-FAC, EKFAC, Shampoo's and the
// diagonal — is from the exact Gauss–Newton block of one layer (relative
// Frobenius distance, each approximation at its best scale).
//
//	go run ./examples/spectrum -out docs/spectrum
//
// writes spectrum.csv (the density on a grid of eigenvalues, per training
// point), blocks.csv (the distances), spectrum.png and blocks.png. Training
// between the points uses centered gradient descent (η 0.1, μ 0.9, batch
// 100, the benchmark's best method), from Martens' sparse initialisation
// with seed 1.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/curvature/network"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/kron"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// config holds the flags.
type config struct {
	arch          string
	at            string
	layer         int
	batch, probes int
	steps         int
	out, mnist    string
	seed          uint64
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "spectrum:", err)
		os.Exit(2)
	}
	if err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "spectrum:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("spectrum", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.arch, "arch", "784-1000-500-250-30-250-500-1000-784", "layer sizes of the autoencoder")
	fs.StringVar(&c.at, "at", "0,300,3000", "updates of training (ascending) at which to draw the curvature")
	fs.IntVar(&c.layer, "layer", 3, "the layer whose exact block the approximations are compared with (0 is the first); its n_out(n_in+1) parameters make a dense block of that size squared")
	fs.IntVar(&c.batch, "batch", 100, "examples of the batch whose curvature is drawn (the first of the training set) and of the training minibatches")
	fs.IntVar(&c.steps, "steps", 60, "Lanczos steps per probe")
	fs.IntVar(&c.probes, "probes", 3, "probes of stochastic Lanczos quadrature")
	fs.StringVar(&c.out, "out", "", "directory for the CSV files and plots (required; its files must not exist)")
	fs.StringVar(&c.mnist, "mnist", "", "directory of the MNIST files (empty: $MNIST_DIR, the module cache, the module proxy)")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed (initialisation, minibatches, probes)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.out == "" {
		return c, errors.New("-out DIR is required")
	}
	if c.batch < 1 || c.steps < 1 || c.probes < 1 {
		return c, fmt.Errorf("-batch %d, -steps %d, -probes %d: want ≥ 1", c.batch, c.steps, c.probes)
	}
	return c, nil
}

// points parses -at.
func (c config) points() ([]int, error) {
	var at []int
	for _, f := range strings.Split(c.at, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || (len(at) > 0 && n <= at[len(at)-1]) {
			return nil, fmt.Errorf("-at %q: want ascending update counts ≥ 0", c.at)
		}
		at = append(at, n)
	}
	return at, nil
}

func run(c config, w io.Writer) error {
	at, err := c.points()
	if err != nil {
		return err
	}
	sizes, err := parseArch(c.arch)
	if err != nil {
		return err
	}
	if c.layer < 0 || c.layer >= len(sizes)-1 {
		return fmt.Errorf("-layer %d: the net has layers 0 … %d", c.layer, len(sizes)-2)
	}
	if p := sizes[c.layer+1] * (sizes[c.layer] + 1); p > 12000 {
		return fmt.Errorf("-layer %d has %d parameters: its dense block would take %.1f GB; pick a smaller layer", c.layer, p, float64(p*p*8)/1e9)
	}
	for _, name := range []string{"spectrum.csv", "blocks.csv", "spectrum.png", "blocks.png"} {
		if _, err := os.Lstat(filepath.Join(c.out, name)); err == nil {
			return fmt.Errorf("-out %s: %s exists already", c.out, name)
		}
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	data, err := datasets.MNISTConfig{Dir: c.mnist, Progress: w}.Load()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(c.seed, 0x5ec0))
	net := nn.NewAutoencoder(sizes)
	net.Init(nn.Sparse{}, rng)
	loss := nn.Quadratic{}
	train := data.TrainImages
	nTrain, _ := train.Dims()
	xb := train.Slice(0, c.batch, 0, sizes[0]).(*mat.Dense)
	opt := &optim.Centered{Rate: 0.1, Momentum: 0.9}
	batches := datasets.NewBatches(nTrain, rng, datasets.BatchConfig{Size: c.batch})
	var mb *mat.Dense
	fmt.Fprintf(w, "net %s (%d parameters), block of layer %d (%d→%d, %d parameters), backend %s\n",
		c.arch, net.NumParams(), c.layer, sizes[c.layer], sizes[c.layer+1], sizes[c.layer+1]*(sizes[c.layer]+1), secondorder.Backend())

	var specs []spectrum
	var rows []blockRow
	done := 0
	for _, target := range at {
		for ; done < target; done++ {
			batches.Next()
			mb = batches.Rows(mb, train)
			net.Forward(mb)
			net.Backward(loss, mb)
			if err := opt.Step(net.Records()); err != nil {
				return fmt.Errorf("update %d: %w", done+1, err)
			}
		}
		risk := net.Risk(loss, xb, xb)
		fmt.Fprintf(w, "update %d: risk of the batch %.4g\n", done, risk)

		t0 := time.Now()
		sp, err := gnSpectrum(net, loss, xb, c, rng)
		if err != nil {
			return fmt.Errorf("update %d: %w", done, err)
		}
		sp.update = done
		specs = append(specs, sp)
		fmt.Fprintf(w, "  GN spectrum: λ_max ≈ %.4g, trace ≈ %.4g ± %.2g, %d products in %.1fs\n",
			sp.hi, sp.trace.Value, sp.trace.StdErr, c.probes*c.steps, time.Since(t0).Seconds())

		t0 = time.Now()
		errs, err := blockErrors(net, loss, xb, c.layer)
		if err != nil {
			return fmt.Errorf("update %d: %w", done, err)
		}
		for _, e := range errs {
			rows = append(rows, blockRow{update: done, method: e.method, err: e.err})
			fmt.Fprintf(w, "  %-8s %.4f\n", e.method, e.err)
		}
		fmt.Fprintf(w, "  blocks in %.1fs\n", time.Since(t0).Seconds())
	}
	if err := writeSpectra(filepath.Join(c.out, "spectrum.csv"), specs); err != nil {
		return err
	}
	if err := writeBlocks(filepath.Join(c.out, "blocks.csv"), rows); err != nil {
		return err
	}
	if err := plotSpectra(filepath.Join(c.out, "spectrum.png"), specs, c); err != nil {
		return err
	}
	if err := plotBlocks(filepath.Join(c.out, "blocks.png"), rows, c, sizes); err != nil {
		return err
	}
	fmt.Fprintf(w, "wrote %s\n", strings.Join([]string{"spectrum.csv", "blocks.csv", "spectrum.png", "blocks.png"}, ", "))
	return nil
}

// spectrum is the GN spectrum at one point of training.
type spectrum struct {
	update  int
	q       *curvature.Quadrature
	lo, hi  float64
	trace   curvature.Estimate
	grid    []float64
	density []float64
}

// gnSpectrum runs stochastic Lanczos quadrature on the GN operator of the
// batch and evaluates the density, smoothed by a Gaussian of a hundredth of
// the spectrum's range, on a grid of 400 points.
func gnSpectrum(net *nn.Network, loss nn.Loss, x *mat.Dense, c config, rng *rand.Rand) (spectrum, error) {
	op := network.NewGaussNewtonOperator(net, loss, x, x, nn.GaussNewton, nn.SplitLogits)
	q, err := curvature.SLQ{Steps: c.steps, Probes: c.probes, Rand: rng}.Run(op)
	if err != nil {
		return spectrum{}, err
	}
	lo, hi := q.Range()
	lo = math.Max(lo, 0)
	sp := spectrum{q: q, lo: lo, hi: hi, trace: q.Trace(func(x float64) float64 { return x })}
	const n = 400
	sp.grid = make([]float64, n)
	sp.density = make([]float64, n)
	for i := range sp.grid {
		sp.grid[i] = lo + (hi-lo)*float64(i)/(n-1)
	}
	q.Density(sp.density, sp.grid, (hi-lo)/100)
	return sp, nil
}

// approxErr is the distance of one approximation to the exact block.
type approxErr struct {
	method string
	err    float64
}

// blockRow is one line of blocks.csv.
type blockRow struct {
	update int
	method string
	err    float64
}

// blockErrors fills the records with the exact Gauss–Newton vectors of the
// batch (network.GGNExact) and returns, for the layer, the relative
// Frobenius distances ‖c M − B‖/‖B‖ to the exact block B (eq. 3.3.2) of
// K-FAC's Ā⊗G, EKFAC's U diag(S) Uᵀ (S = diag(UᵀBU), so that the distance
// is √(‖B‖² − ‖S‖²)), Shampoo's R^{1/2}⊗L^{1/2} from the records' per-row
// gradients, and the diagonal diag(B), each M at its best scale c.
func blockErrors(net *nn.Network, loss nn.Loss, x *mat.Dense, layer int) ([]approxErr, error) {
	bp := network.Backprop{Estimator: network.GGNExact}
	bp.Fill(net, loss, x, x)
	rec := net.Records()[layer]
	var b mat.SymDense
	curvature.DenseBlock(&b, rec)
	nb := frob(&b)
	if !(nb > 0) {
		return nil, errors.New("the exact block is zero")
	}
	var out []approxErr
	scaled := func(m mat.Matrix) float64 {
		// ‖c M − B‖ at the best c = ⟨M, B⟩/‖M‖².
		mb, mm := inner(m, &b), inner(m, m)
		if !(mm > 0) {
			return 1
		}
		return math.Sqrt(math.Max(nb*nb-mb*mb/mm, 0)) / nb
	}

	// K-FAC.
	kf := curvature.KFACBlock{Decay: 1e-300}
	kf.Update(rec)
	a, g := kf.Factors()
	var k mat.SymDense
	curvature.DenseKFAC(&k, a, g)
	out = append(out, approxErr{"K-FAC", scaled(&k)})

	// EKFAC: S = diag(UᵀBU) in K-FAC's eigenbasis.
	ek := curvature.EKFACBlock{Decay: 1e-300}
	ek.Update(rec)
	if _, err := curvature.RefreshDamped(&ek, 0, kron.Retry{}); err != nil {
		return nil, fmt.Errorf("EKFAC basis: %w", err)
	}
	var s mat.Dense
	ek.Project(&s, rec)
	ss := inner(&s, &s)
	out = append(out, approxErr{"EKFAC", math.Sqrt(math.Max(nb*nb-ss, 0)) / nb})

	// Shampoo: L = Σ_r s |h̃|² g gᵀ, R = Σ_r s |g|² h̃h̃ᵀ over the rows of Back.
	out = append(out, approxErr{"Shampoo", scaled(shampooMatrix(rec))})

	// The diagonal diag(B).
	d := 0.0
	for i := 0; i < b.SymmetricDim(); i++ {
		d += b.At(i, i) * b.At(i, i)
	}
	out = append(out, approxErr{"diagonal", math.Sqrt(math.Max(nb*nb-d, 0)) / nb})
	return out, nil
}

// shampooMatrix returns R^{1/2} ⊗ L^{1/2} of the record's per-row
// gradients G_r = g_r h̃_rᵀ (rows of Back, inputs of their examples), in
// the order of θ = [vec(W); b].
func shampooMatrix(l *secondorder.Layer) *mat.Dense {
	out, in := l.Dims()
	L := mat.NewSymDense(out, nil)
	R := mat.NewSymDense(in+1, nil)
	s := l.BackScaleOrDefault()
	m, _ := l.Back.Dims()
	h := make([]float64, in+1)
	for r := 0; r < m; r++ {
		g := mat.NewVecDense(out, l.Back.RawRowView(r))
		copy(h, l.Input.RawRowView(l.BackExample(r)))
		h[in] = 1
		hv := mat.NewVecDense(in+1, h)
		L.SymRankOne(L, s*mat.Dot(hv, hv), g)
		R.SymRankOne(R, s*mat.Dot(g, g), hv)
	}
	var k mat.Dense
	k.Kronecker(sqrtSym(R), sqrtSym(L))
	return &k
}

// sqrtSym returns the square root of a symmetric positive semidefinite
// matrix.
func sqrtSym(a *mat.SymDense) *mat.Dense {
	var es mat.EigenSym
	es.Factorize(a, true)
	vals := es.Values(nil)
	var q mat.Dense
	es.VectorsTo(&q)
	for j, v := range vals {
		col := math.Sqrt(math.Sqrt(math.Max(v, 0)))
		for i := range vals {
			q.Set(i, j, q.At(i, j)*col)
		}
	}
	var r mat.Dense
	r.Mul(&q, q.T())
	return &r
}

// frob returns the Frobenius norm of m.
func frob(m mat.Matrix) float64 { return math.Sqrt(inner(m, m)) }

// inner returns Σ_ij a_ij b_ij.
func inner(a, b mat.Matrix) float64 {
	r, c := a.Dims()
	s := 0.0
	ad, aok := a.(mat.RawMatrixer)
	bd, bok := b.(mat.RawMatrixer)
	if aok && bok {
		ar, br := ad.RawMatrix(), bd.RawMatrix()
		for i := 0; i < r; i++ {
			arow, brow := ar.Data[i*ar.Stride:i*ar.Stride+c], br.Data[i*br.Stride:i*br.Stride+c]
			for j, v := range arow {
				s += v * brow[j]
			}
		}
		return s
	}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			s += a.At(i, j) * b.At(i, j)
		}
	}
	return s
}

// writeSpectra writes the densities: update, eigenvalue, density, and a
// first line per update with λ_max and the trace estimate as comments.
func writeSpectra(path string, specs []spectrum) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	cw.Write([]string{"update", "eigenvalue", "density", "lambda_max", "trace", "trace_stderr"})
	for _, sp := range specs {
		for i, x := range sp.grid {
			cw.Write([]string{strconv.Itoa(sp.update), fmt.Sprintf("%.6g", x), fmt.Sprintf("%.6g", sp.density[i]),
				fmt.Sprintf("%.6g", sp.hi), fmt.Sprintf("%.6g", sp.trace.Value), fmt.Sprintf("%.3g", sp.trace.StdErr)})
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeBlocks writes update, method, relative Frobenius distance.
func writeBlocks(path string, rows []blockRow) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(f)
	cw.Write([]string{"update", "method", "relative_frobenius_distance"})
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].update < rows[j].update })
	for _, r := range rows {
		cw.Write([]string{strconv.Itoa(r.update), r.method, fmt.Sprintf("%.6g", r.err)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseArch parses "784-30-784".
func parseArch(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, "-") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-arch %q: want sizes like 784-1000-500-250-30-250-500-1000-784", s)
		}
		sizes = append(sizes, n)
	}
	if len(sizes) < 2 || sizes[0] != 784 || sizes[len(sizes)-1] != 784 {
		return nil, fmt.Errorf("-arch %q: want at least two sizes, the first and last 784", s)
	}
	return sizes, nil
}
