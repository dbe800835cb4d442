package optim

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/dist"
)

// Defaults of HessianFree.
const (
	// DefaultHFDamping is the initial Tikhonov damping λ of G + λI
	// (absolute), adapted at every update.
	DefaultHFDamping = 1
	// DefaultHFMaxIters bounds the CG iterations of an update (Martens
	// 2010 used 250).
	DefaultHFMaxIters = 250
	// DefaultHFMinIters is the number of CG iterations before the
	// progress criterion may stop them.
	DefaultHFMinIters = 10
	// DefaultHFWarmStart is ζ, the decay of the previous CG solution that
	// starts the next solve (Martens 2010, §4.5).
	DefaultHFWarmStart = 0.95
	// DefaultHFKeep is the number of CG iterates kept for backtracking.
	DefaultHFKeep = 8
	// DefaultHFMinDamping is the floor of λ relative to the mean of the
	// empirical Fisher's diagonal.
	DefaultHFMinDamping = 1e-2
	// DefaultHFNormConstraint is the trust region C of a step relative to
	// the risk, α² (−∇ᵀx) ≤ C f(θ): a hundred times the curvature blocks'
	// DefaultNormConstraint, as an update costs tens of products. Without
	// one HF diverged on the minibatches of the test problems; on the
	// benchmark autoencoder (60 s, batch 100) C = 0.001 reached 145.5,
	// 0.1 reached 28.9.
	DefaultHFNormConstraint = 0.1
)

// HessianFree is Hessian-free optimization (Martens 2010, "Deep learning
// via Hessian-free optimization"): every update minimises the damped
// Gauss–Newton model of the risk over all the layers at once,
//
//	q(x) = ½ xᵀ(G + λI)x + ∇ᵀx,
//
// by preconditioned conjugate gradient (cgSolver) on the products with the
// Gauss–Newton matrix G of Problem.GNVec (R-operator passes, cross-layer
// terms included; no block approximation), with:
//
//   - a diagonal preconditioner M = (diag(F̂) + λ)^0.75, F̂ the empirical
//     Fisher's diagonal (1/n) Σ_i ∇l_i∘∇l_i from the records' Input and Grad
//     (curvature.DiagonalBlock, moving average), Martens' §4.7;
//   - CG warm-started from ζ times the previous update's last iterate, and
//     stopped by Martens' relative-progress criterion or MaxIters;
//   - CG backtracking: the risk is evaluated (Problem.Loss) at the kept
//     iterates from the last backwards, and the best is taken;
//   - Levenberg–Marquardt damping: with ρ = (f(θ+x) − f(θ)) / (q₀(x) − q₀(0)),
//     q₀ the undamped model, λ ← 3/2 λ if ρ < 1/4 and λ ← 2/3 λ if ρ > 3/4;
//   - λ kept above MinDamping times the curvature scale (the mean of
//     diag(F̂)), and the norm constraint α² (−∇ᵀx) ≤ C f(θ) (NormConstraint,
//     as Rules.NormConstraint) on the step: on small minibatches ρ, computed
//     on the batch of the step, stays near 1, λ collapses and the steps fit
//     the batch (docs/tuning.md);
//   - a backtracking line search on the step length α (Armijo,
//     f(θ+αx) ≤ f(θ) + 10⁻² α ∇ᵀx, α ← 0.8 α; Martens & Sutskever 2012),
//     which takes no step (α = 0, a fallback in the Report) when 20 trials
//     fail.
//
// Problem.Loss and Problem.GNVec are required (network.Closures gives both
// for an nn.Network; a GNVec built on a sub-batch gives Martens' smaller
// batches for the products). Each update costs one GN product per CG
// iteration (an R-forward and a backward pass of the batch), a few loss
// evaluations, and memory for nine copies of the parameters plus the kept
// iterates. Layers with Extra parameters are refused (G does not cover
// them).
//
// The zero value is ready to use: λ₀ 1, at most 250 and at least 10 CG
// iterations, warm start 0.95, preconditioner, 8 iterates kept, line
// search, the norm constraint 0.1 and a damping floor of 0.01 times the
// curvature scale. A refused step (an error) leaves the parameters and the
// state of the optimizer unchanged. It is not safe for concurrent use.
type HessianFree struct {
	// Damping is the initial λ > 0, absolute (units of G). Zero means
	// DefaultHFDamping.
	Damping float64
	// MaxIters and MinIters bound the CG iterations; zero means
	// DefaultHFMaxIters and DefaultHFMinIters.
	MaxIters, MinIters int
	// WarmStart is ζ in [0, 1); zero means DefaultHFWarmStart. NoWarmStart
	// starts every solve from zero.
	WarmStart   float64
	NoWarmStart bool
	// NoPreconditioner runs plain CG.
	NoPreconditioner bool
	// NoLineSearch takes the backtracked CG iterate with α = 1.
	NoLineSearch bool
	// NormConstraint is the trust region C of the step relative to the
	// risk, α² (−∇ᵀx) ≤ C·f(θ), as Rules.NormConstraint; zero means
	// DefaultHFNormConstraint, +Inf none.
	NormConstraint float64
	// MinDamping is the floor of λ relative to the curvature scale, the
	// mean of the empirical Fisher's diagonal diag(F̂) (with the
	// preconditioner). Zero means DefaultHFMinDamping.
	MinDamping float64
	// Problem supplies the risk and the Gauss–Newton products of the
	// current minibatch; both are required.
	Problem Problem
	// Comm, if set with more than one worker, makes Step data-parallel
	// (package dist): each worker passes the records of its shard, and the
	// gradients, the preconditioner's statistics, the values of
	// Problem.Loss and the products of Problem.GNVec are replaced by their
	// means over all workers' examples. Nil is one process.
	Comm dist.Comm

	lambda  float64
	started bool
	t       int
	shapes  [][2]int
	g, th0  layered // gradient, parameters at the start of the update
	prev    layered // the last CG iterate of the previous update
	hasPrev bool
	x0, tmp layered
	minv    layered // the preconditioner's inverse, elementwise
	diags   []*curvature.DiagonalBlock
	diagV   []mat.VecDense
	shadow  []secondorder.Layer // the records with Back = Grad
	views   map[*mat.Dense]secondorder.Direction
	dv, dd  []secondorder.Direction
	cg      cgSolver
	report  Report
	prob    Problem // Problem, or its means over the workers
	sums    gather
	pm      problemMeans
}

// Validate returns an error, prefixed "optim: HessianFree:", describing the
// first invalid setting, or nil.
func (h *HessianFree) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("optim: HessianFree: "+format, a...)
	}
	switch {
	case !(h.Damping >= 0) || math.IsInf(h.Damping, 1):
		return bad("Damping=%g, want finite and > 0 (0 for %g)", h.Damping, float64(DefaultHFDamping))
	case h.MaxIters < 0:
		return bad("MaxIters=%d, want ≥ 1 (0 for %d)", h.MaxIters, DefaultHFMaxIters)
	case h.MinIters < 0:
		return bad("MinIters=%d, want ≥ 0 (0 for %d)", h.MinIters, DefaultHFMinIters)
	case !(h.NormConstraint >= 0):
		return bad("NormConstraint=%g, want > 0, +Inf for none (0 for %g)", h.NormConstraint, float64(DefaultHFNormConstraint))
	case !(h.MinDamping >= 0) || math.IsInf(h.MinDamping, 1):
		return bad("MinDamping=%g, want finite and ≥ 0 (0 for %g)", h.MinDamping, DefaultHFMinDamping)
	case !(h.WarmStart >= 0 && h.WarmStart < 1):
		return bad("WarmStart=%g, want in [0, 1) (0 for %g)", h.WarmStart, DefaultHFWarmStart)
	}
	return nil
}

// Needs reports what Step needs: Problem.Loss and Problem.GNVec.
func (h *HessianFree) Needs() Needs { return Needs{Loss: true, GNVec: true} }

// Report returns the state after the last Step: Updates, Rate (the line
// search's α), Damping (λ for the next update), Rho, ModelDecrease (the
// undamped q₀(x) − q₀(0) of the step taken), Fallbacks and LastFallback,
// Iterations (of CG, at the last update), and Stats (whether the
// preconditioner was used).
func (h *HessianFree) Report() Report { return h.report }

// Step applies one Hessian-free update to the layers' W and B. It panics
// for unusable layers (see Optimizer) and returns, with the parameters
// and the state of h unchanged, an error for an invalid setting, a missing
// Problem.Loss or GNVec (wrapping ErrMissingCapability), layers with Extra
// parameters, NaN or Inf in the records, an error of the closures, or a CG
// solve that fails (a non-finite product or model).
func (h *HessianFree) Step(layers []*secondorder.Layer) (err error) {
	const name = "HessianFree"
	checkLayers(name, layers)
	if err := h.Validate(); err != nil {
		return err
	}
	if h.Problem.Loss == nil || h.Problem.GNVec == nil {
		return missingCapability(name, "Problem.Loss and Problem.GNVec")
	}
	if err := allReduceRecords(h.Comm, &h.sums, name, layers, h.check(layers), true, nil); err != nil {
		return err
	}
	h.prob = h.pm.wrap(h.Comm, name, h.Problem, examples(layers[0]))
	h.ensure(layers)
	for j, l := range layers {
		l.ParamGrad(h.g[j])
		paramsOf(l, h.th0[j])
	}

	// Undo everything on an error: parameters, and the preconditioner's
	// statistics.
	lambda := h.lambda
	precond, scale, err := h.preconditioner(layers)
	if err != nil {
		return err
	}
	if floor := orFloat(h.MinDamping, DefaultHFMinDamping) * scale; lambda < floor {
		lambda = floor
	}
	if precond {
		h.setMinv(lambda)
	}
	defer func() {
		if err != nil {
			restoreParams(layers, h.th0)
			for _, d := range h.diags {
				d.Rollback()
			}
		}
	}()

	f0, err := h.prob.Loss()
	if err != nil {
		return fmt.Errorf("optim: %s: Problem.Loss: %w", name, err)
	}
	if math.IsNaN(f0) || math.IsInf(f0, 0) {
		return fmt.Errorf("optim: %s: Problem.Loss returned %g at the current parameters", name, f0)
	}
	mul := func(dst, v layered) error {
		if err := h.prob.GNVec(h.directions(&h.dd, dst), h.directions(&h.dv, v)); err != nil {
			return fmt.Errorf("optim: %s: Problem.GNVec: %w", name, err)
		}
		dst.axpy(lambda, v)
		return nil
	}
	var x0 layered
	if h.hasPrev && !h.NoWarmStart {
		h.x0.zero()
		h.x0.axpy(orFloat(h.WarmStart, DefaultHFWarmStart), h.prev)
		x0 = h.x0
	}
	if h.cg.keep == 0 {
		h.cg.keep = DefaultHFKeep
	}
	var pre func(dst, r layered)
	if precond {
		pre = func(dst, r layered) {
			for j := range dst {
				dst[j].MulElem(r[j], h.minv[j])
			}
		}
	}
	res, err := h.cg.solve(h.g, x0, mul, pre, orInt(h.MinIters, DefaultHFMinIters), orInt(h.MaxIters, DefaultHFMaxIters))
	if err != nil {
		return fmt.Errorf("optim: %s: %w", name, err)
	}

	// CG backtracking: from the last kept iterate backwards while the risk
	// decreases.
	n := len(h.cg.order)
	best, fBest := n-1, math.Inf(1)
	for k := n - 1; k >= 0; k-- {
		f, err := h.lossAt(layers, h.cg.iterate(k), 1)
		if err != nil {
			return err
		}
		if f < fBest {
			best, fBest = k, f
		} else if k < n-1 {
			break
		}
	}
	x := h.cg.iterate(best)

	// ρ with the undamped model q₀(x) = ½ xᵀGx + ∇ᵀx, at θ₀ (a GNVec may
	// read the parameters of the moment).
	restoreParams(layers, h.th0)
	if err := h.prob.GNVec(h.directions(&h.dd, h.tmp), h.directions(&h.dv, x)); err != nil {
		return fmt.Errorf("optim: %s: Problem.GNVec: %w", name, err)
	}
	gx := h.g.dot(x)
	q0 := 0.5*x.dot(h.tmp) + gx
	rho := (fBest - f0) / q0
	newLambda := lambda
	reason := ""
	switch {
	case !(q0 < 0) || math.IsNaN(rho) || math.IsInf(rho, 0):
		reason = fmt.Sprintf("model change %g and loss change %g give no usable ρ; damping raised", q0, fBest-f0)
		newLambda = 1.5 * lambda
	case rho < 0.25:
		newLambda = 1.5 * lambda
	case rho > 0.75:
		newLambda = lambda * 2 / 3
	}

	// The norm constraint, then a line search on α.
	alpha := 1.0
	constrained := false
	if c := orFloat(h.NormConstraint, DefaultHFNormConstraint); gx < 0 && -gx > c*f0 {
		alpha, constrained = math.Sqrt(c*f0/-gx), true
		if fBest, err = h.lossAt(layers, x, alpha); err != nil {
			return err
		}
	}
	if !h.NoLineSearch {
		f := fBest
		for try := 0; f > f0+1e-2*alpha*gx; try++ {
			if try == 20 || !(gx < 0) {
				alpha = 0
				reason = fmt.Sprintf("line search: no decrease along the CG direction (∇ᵀx = %g); no step taken, damping raised", gx)
				newLambda = 1.5 * lambda
				break
			}
			alpha *= 0.8
			if f, err = h.lossAt(layers, x, alpha); err != nil {
				return err
			}
		}
	}

	// Commit.
	h.setParams(layers, x, alpha)
	h.prev.copyFrom(h.cg.x)
	h.hasPrev = true
	h.lambda = newLambda
	h.t++
	h.report.Updates = h.t
	h.report.Rate, h.report.Damping = alpha, h.lambda
	h.report.Rho, h.report.ModelDecrease = rho, q0
	h.report.Iterations = res.iters
	h.report.Stats, h.report.Constrained = precond, constrained
	if reason != "" {
		h.report.Fallbacks++
		h.report.LastFallback = reason
	}
	return nil
}

// check returns the first reason to refuse the step that the records give.
func (h *HessianFree) check(layers []*secondorder.Layer) error {
	const name = "HessianFree"
	for j, l := range layers {
		if len(l.Extra) > 0 {
			return fmt.Errorf("optim: %s: layer %d has Extra parameters (%s), which the Gauss–Newton products do not cover; parameters left unchanged", name, j, l.Extra[0].Name)
		}
		if err := checkFinite(name, j, l, !h.NoPreconditioner, !h.NoPreconditioner, false); err != nil {
			return err
		}
		if !h.NoPreconditioner {
			if err := l.CheckGradScale(); err != nil {
				return fmt.Errorf("optim: %s: layer %d: %w; parameters left unchanged", name, j, err)
			}
		}
	}
	return nil
}

// ensure sizes the buffers at the first Step and checks the shapes after.
func (h *HessianFree) ensure(layers []*secondorder.Layer) {
	if h.started {
		if len(layers) != len(h.shapes) {
			panic(fmt.Sprintf("optim: HessianFree: %d layers, the first Step had %d", len(layers), len(h.shapes)))
		}
		for j, l := range layers {
			if out, in := l.Dims(); out != h.shapes[j][0] || in != h.shapes[j][1] {
				panic(fmt.Sprintf("optim: HessianFree: layer %d is %d×%d, it was %d×%d", j, out, in, h.shapes[j][0], h.shapes[j][1]))
			}
		}
		for _, d := range h.diags {
			d.Begin()
		}
		return
	}
	h.shapes = make([][2]int, len(layers))
	h.g = make(layered, len(layers))
	for j, l := range layers {
		out, in := l.Dims()
		h.shapes[j] = [2]int{out, in}
		h.g[j] = mat.NewDense(out, in+1, nil)
	}
	h.th0, h.prev, h.x0, h.tmp, h.minv = newLayered(h.g), newLayered(h.g), newLayered(h.g), newLayered(h.g), newLayered(h.g)
	h.diagV = make([]mat.VecDense, len(layers))
	h.shadow = make([]secondorder.Layer, len(layers))
	h.diags = make([]*curvature.DiagonalBlock, len(layers))
	for j := range h.diags {
		h.diags[j] = &curvature.DiagonalBlock{}
		h.diags[j].Begin()
	}
	h.views = map[*mat.Dense]secondorder.Direction{}
	h.lambda = orFloat(h.Damping, DefaultHFDamping)
	h.report.Rho, h.report.ModelDecrease = math.NaN(), math.NaN()
	h.started = true
}

// preconditioner folds the empirical Fisher's diagonal of the records into
// the averages and returns its mean, the curvature scale; it reports false,
// and does nothing, without a preconditioner (NoPreconditioner, or records
// without Input or Grad).
func (h *HessianFree) preconditioner(layers []*secondorder.Layer) (bool, float64, error) {
	if h.NoPreconditioner {
		return false, 0, nil
	}
	for _, l := range layers {
		if l.Input == nil || l.Grad == nil {
			return false, 0, nil
		}
	}
	parallel := dist.Parallel(h.Comm)
	if parallel {
		h.sums.start(nil)
	}
	for j, l := range layers {
		// The empirical Fisher: Back = Grad, one row per example,
		// weight 1/n.
		h.shadow[j] = secondorder.Layer{W: l.W, B: l.B, Input: l.Input, Back: l.Grad}
		if parallel {
			parts, m := h.diags[j].Estimate(&h.shadow[j])
			h.sums.group(float64(m))
			for _, p := range parts {
				h.sums.statistic(p)
			}
		} else {
			h.diags[j].Update(&h.shadow[j])
		}
	}
	if parallel {
		if err := h.sums.finish(h.Comm, "HessianFree: preconditioner"); err != nil {
			return false, 0, err
		}
	}
	sum, n := 0.0, 0
	for j, d := range h.diags {
		if parallel {
			d.Fold()
		}
		d.Diagonal(&h.diagV[j]) // θ order: c·n_out + o
		for _, v := range h.diagV[j].RawVector().Data {
			sum += v
		}
		n += h.diagV[j].Len()
	}
	return true, sum / float64(n), nil
}

// setMinv sets h.minv = (diag(F̂) + λ)^{−0.75}, the inverse of Martens'
// preconditioner.
func (h *HessianFree) setMinv(lambda float64) {
	for j := range h.minv {
		out := h.shapes[j][0]
		dv := h.diagV[j].RawVector().Data
		m := h.minv[j].RawMatrix()
		for o := 0; o < m.Rows; o++ {
			for c := 0; c < m.Cols; c++ {
				m.Data[o*m.Stride+c] = math.Pow(dv[c*out+o]+lambda, -0.75)
			}
		}
	}
}

// lossAt returns the risk at θ₀ + α x, leaving the parameters there.
func (h *HessianFree) lossAt(layers []*secondorder.Layer, x layered, alpha float64) (float64, error) {
	h.setParams(layers, x, alpha)
	f, err := h.prob.Loss()
	if err != nil {
		return 0, fmt.Errorf("optim: HessianFree: Problem.Loss: %w", err)
	}
	if math.IsNaN(f) {
		return math.Inf(1), nil // a trial point where the risk is not defined is a bad one
	}
	return f, nil
}

// setParams sets every layer's [W b] to θ₀ + α x.
func (h *HessianFree) setParams(layers []*secondorder.Layer, x layered, alpha float64) {
	restoreParams(layers, h.th0)
	if alpha == 0 {
		return
	}
	for j, l := range layers {
		l.AddParams(alpha, x[j])
	}
}

// directions returns the Direction views of v, made once per matrix.
func (h *HessianFree) directions(buf *[]secondorder.Direction, v layered) []secondorder.Direction {
	*buf = (*buf)[:0]
	for _, m := range v {
		d, ok := h.views[m]
		if !ok {
			d = secondorder.DirectionOf(m)
			h.views[m] = d
		}
		*buf = append(*buf, d)
	}
	return *buf
}

// paramsOf writes the layer's [W b] into dst and returns it.
func paramsOf(l *secondorder.Layer, dst *mat.Dense) *mat.Dense {
	out, in := l.Dims()
	w := l.W.RawMatrix()
	d := dst.RawMatrix()
	for o := 0; o < out; o++ {
		copy(d.Data[o*d.Stride:o*d.Stride+in], w.Data[o*w.Stride:o*w.Stride+in])
		d.Data[o*d.Stride+in] = l.B.AtVec(o)
	}
	return dst
}

// restoreParams sets every layer's [W b] from th.
func restoreParams(layers []*secondorder.Layer, th layered) {
	for j, l := range layers {
		out, in := l.Dims()
		w := l.W.RawMatrix()
		d := th[j].RawMatrix()
		for o := 0; o < out; o++ {
			copy(w.Data[o*w.Stride:o*w.Stride+in], d.Data[o*d.Stride:o*d.Stride+in])
			l.B.SetVec(o, d.Data[o*d.Stride+in])
		}
	}
}
