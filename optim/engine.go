package optim

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/dist"
)

// engine is the one implementation of a curvature-based update: per-layer
// curvature blocks (package curvature) composed with the step rules of
// Rules. KFAC, ACP, Newton, DiagonalNewton and Preconditioned are engines
// with their own blocks and defaults.
type engine struct {
	t       int     // updates done
	lambda  float64 // current λ, in the units of Rules.Damping
	started bool
	layers  []engineLayer
	dirs    [4][]secondorder.Direction // views of U, δ, C U, C δ for Problem.GNVec
	report  Report
	began   bool // the current step has marked its layers (begin)

	// Data-parallel training (Rules.Comm): the all-reduces of a step, the
	// Problem of means, ACP's α, the shared refreshes.
	g      gather
	pm     problemMeans
	alphas []float64
	scalar [1]float64
	shared sharedRefresh
	dues   []bool
}

type engineLayer struct {
	out, in int
	nextra  []int
	block   curvature.Block
	lambda  float64   // absolute damping of the factorization in place
	u       mat.Dense // U = (C + λI)⁻¹ [∇W ∇b], n_out × (n_in+1)
	grad    mat.Dense // [∇W ∇b]
	prev    mat.Dense // δ_prev (the velocity with Nesterov), then δ
	hasPrev bool
	cu, cd  mat.Dense // C U and C δ
	ve      []*mat.VecDense

	// What a refused step restores (engine.restore): λ_l and hasPrev at
	// its start, and δ_prev when the step overwrote it before it could
	// fail (kept, a copy, only then).
	markLambda  float64
	markHasPrev bool
	keep        mat.Dense
	kept        bool
}

// alphaSetter is implemented by blocks part of whose estimate follows every
// minibatch between statistics updates (curvature.ACPBlock's output scale α).
type alphaSetter interface {
	SetAlpha(l *secondorder.Layer)
}

// step applies one update. newBlock makes the block of layer j at the first
// step.
//
// A refused step (an error returned before the parameters are changed)
// leaves the engine exactly as it was: the engine's scalars and report are
// saved at the start and restored, the per-layer λ_l and δ_prev too, and
// every block implementing curvature.Staged is rolled back to its state at
// the start of the step (Begin before its Update, SetAlpha and Refresh).
// A block that does not implement it keeps the statistics of the refused
// step. A refused first step forgets the layers it made.
func (e *engine) step(layers []*secondorder.Layer, r Rules, d methodDefaults, newBlock func(j int) curvature.Block) error {
	checkLayers(d.name, layers)
	s, err := r.resolve(d)
	if err != nil {
		return err
	}
	if s.AutoRate && s.Nesterov {
		return fmt.Errorf("optim: %s: AutoRate chooses a classical momentum; unset Nesterov", d.name)
	}
	saved := *e // the scalars and the report; before the first step, all of e
	e.ensure(layers, d.name, newBlock, s.lambda)
	applied, err := e.update(layers, s, d)
	if err != nil && !applied {
		e.restore(&saved)
	}
	return err
}

// begin marks the state of every layer that a step may change before it is
// refused: its block's (curvature.Staged), λ_l and hasPrev.
func (e *engine) begin() {
	for j := range e.layers {
		el := &e.layers[j]
		if b, ok := el.block.(curvature.Staged); ok {
			b.Begin()
		}
		el.markLambda, el.markHasPrev, el.kept = el.lambda, el.hasPrev, false
	}
}

// restore undoes the changes of a refused step: saved is the engine at the
// start of the step, whose layers begin marked (when it was called).
func (e *engine) restore(saved *engine) {
	if !saved.started {
		*e = *saved
		return
	}
	e.t, e.lambda, e.report = saved.t, saved.lambda, saved.report
	if !e.began {
		return
	}
	e.began = false
	for j := range e.layers {
		el := &e.layers[j]
		if b, ok := el.block.(curvature.Staged); ok {
			b.Rollback()
		}
		el.lambda, el.hasPrev = el.markLambda, el.markHasPrev
		if el.kept {
			el.prev.Copy(&el.keep)
			el.kept = false
		}
	}
}

// update is the body of step, after ensure. applied reports whether the
// parameters were changed (an error is then that of the Loss after the
// update).
func (e *engine) update(layers []*secondorder.Layer, s rules, d methodDefaults) (applied bool, err error) {
	e.began = false
	stats := e.t%s.t1 == 0
	lm := s.AdaptDamping && (e.t+1)%s.t2 == 0
	parallel := dist.Parallel(s.Comm)
	// With curvature blocks, the workers average their preconditioned
	// gradients U rather than their gradients: Precondition is linear in
	// the gradient and the same on every worker once the statistics are,
	// so the mean of the shards' U is the U of the mean gradient, and each
	// shard may take the batch-side solve that the whole batch would (at
	// batch 100, K-FAC's gradient-side solve costs 6 times its flops). The
	// same number of values is all-reduced.
	sharedU := parallel && !d.gradOnly
	if err := allReduceRecords(s.Comm, &e.g, d.name, layers, e.check(layers, &s, d, stats), !sharedU, nil); err != nil {
		return false, err
	}
	s.Problem = e.pm.wrap(s.Comm, d.name, s.Problem, examples(layers[0]))

	bound, err := normBound(&s, layers)
	if err != nil {
		return false, err
	}

	e.begin()
	e.began = true
	e.report.Stats, e.report.Refreshed, e.report.Constrained, e.report.MomentumClipped = stats, false, false, false
	e.report.ModelDecrease = math.NaN()
	if parallel {
		if err := e.updateParallel(layers, &s, d, stats); err != nil {
			return false, err
		}
	} else {
		for j, l := range layers {
			b := e.layers[j].block
			if stats {
				b.Update(l)
			}
			if o, ok := b.(alphaSetter); ok {
				o.SetAlpha(l)
			}
		}
	}
	refresh := e.t%s.t3 == 0 || (e.t < s.t3 && (d.warmUp || (d.doublingWarmUp && e.t&(e.t-1) == 0)))
	if err := e.refreshAll(&s, refresh); err != nil {
		return false, err
	}

	// U = (C + λI)⁻¹ ∇ and the inner products the rules need, read from the
	// records before any closure of Problem runs.
	var gu, gp float64 // ∇ᵀU, ∇ᵀδ_prev
	hasPrev := false
	for j, l := range layers {
		el := &e.layers[j]
		l.ParamGrad(&el.grad)
		if el.block.Ready() {
			el.block.Precondition(&el.u, l)
		} else {
			el.u.Zero() // a block without an estimate yet (ACP with α = 0)
		}
		if el.hasPrev {
			hasPrev = true
			gp += dot(&el.grad, &el.prev)
		}
	}
	if sharedU {
		// The shards' U and ∇ᵀδ_prev → their means (see meanDirections).
		if gp, err = e.meanDirections(s.Comm, d.name, examples(layers[0]), gp); err != nil {
			return false, err
		}
	}
	for j := range e.layers {
		el := &e.layers[j]
		if !finiteDense(&el.u) {
			return false, fmt.Errorf("optim: %s: layer %d: the preconditioned direction is not finite (damping %g); parameters left unchanged", d.name, j, el.lambda)
		}
		gu += dot(&el.grad, &el.u)
	}
	if sharedU {
		if gu, err = e.meanScalar(s.Comm, d.name, examples(layers[0]), gu); err != nil {
			return false, err
		}
	}

	var h0 float64
	if lm {
		if h0, err = s.Problem.Loss(); err != nil {
			return false, fmt.Errorf("optim: %s: Problem.Loss before the update: %w", d.name, err)
		}
	}
	alpha, mu := s.rate(e.t), s.Momentum
	decrease := math.NaN() // M(δ) − M(0), when known
	if s.AutoRate {
		a, m, dec, ok, reason, err := e.autoRate(&s, gu, gp, hasPrev)
		if err != nil {
			return false, err
		}
		if reason != "" {
			e.fallback(reason)
		}
		if ok {
			alpha, mu, decrease = a, m, dec
		}
	}
	if math.IsNaN(decrease) && !math.IsInf(bound, 1) && gu > 0 {
		alpha, e.report.Constrained = constrainRate(alpha, bound, gu)
	}
	if !hasPrev {
		mu = 0 // no previous update (the buffer may hold a refused one)
	}
	look := mu // Nesterov's look-ahead weight: μ from the first update on
	if s.Nesterov {
		look = s.Momentum
	}
	if lm && math.IsNaN(decrease) && s.Problem.GNVec != nil {
		// modelDecrease may still refuse the step after δ has replaced
		// δ_prev: keep a copy (at LM updates only, n_out(n_in+1) floats).
		for j := range e.layers {
			el := &e.layers[j]
			if el.keep.IsEmpty() {
				el.keep.ReuseAs(el.out, el.in+1)
			}
			el.keep.Copy(&el.prev)
			el.kept = true
		}
	}
	// δ = −α U + μ δ_prev, in place of δ_prev (the velocity with Nesterov):
	// the momentum rule of momentum.go.
	for j := range e.layers {
		el := &e.layers[j]
		p := raw(&el.prev)
		if mu == 0 {
			clear(p) // a refused step may have left anything there
		}
		velocityRow(p, raw(&el.u), alpha, mu)
		el.hasPrev = true
	}
	if lm && math.IsNaN(decrease) {
		if decrease, err = e.modelDecrease(&s, -alpha*gu+mu*gp); err != nil {
			return false, fmt.Errorf("optim: %s: %w", d.name, err) // δ_prev restored from keep
		}
	}
	extra := s.extraRate(e.t)
	for j, l := range layers {
		el := &e.layers[j]
		if s.Nesterov && look > 0 {
			// Δθ = μ v − α U with v the new velocity.
			l.AddParams(look, &el.prev)
			l.AddParams(-alpha, &el.u)
		} else {
			l.AddParams(1, &el.prev)
		}
		for i, p := range l.Extra {
			momentumVec(p.Value.RawVector(), el.ve[i].RawVector(), p.Grad.RawVector(), extra, s.Momentum, s.Nesterov)
		}
	}
	e.t++
	e.report.Rate, e.report.Momentum = alpha, mu
	e.report.ModelDecrease = decrease
	if !lm {
		return true, nil
	}
	h1, err := s.Problem.Loss()
	if err != nil {
		return true, fmt.Errorf("optim: %s: Problem.Loss after the update (applied): %w", d.name, err)
	}
	var reason string
	e.lambda, e.report.Rho, reason = levenbergMarquardt(e.lambda, h0, h1, decrease, s.t2, s.minLambda, s.maxLambda)
	if reason != "" {
		e.fallback(reason)
	}
	return true, nil
}

// check returns the first reason to refuse the step that the records or
// the settings give, before anything changes.
func (e *engine) check(layers []*secondorder.Layer, s *rules, d methodDefaults, stats bool) error {
	if s.AdaptDamping && s.Problem.Loss == nil {
		return missingCapability(d.name, "Problem.Loss, needed by AdaptDamping")
	}
	if s.AutoRate && s.Problem.GNVec == nil {
		return missingCapability(d.name, "Problem.GNVec, needed by AutoRate")
	}
	for j, l := range layers {
		if stats {
			if d.needsBack && l.Back == nil {
				return missingCapability(d.name, fmt.Sprintf("layer %d has no Back (the statistics are due at this update; see StatsDue)", j))
			}
			if l.Input == nil && !d.gradOnly {
				panic(fmt.Sprintf("optim: %s: layer %d has no Input", d.name, j))
			}
		}
		if err := checkFinite(d.name, j, l, stats && !d.gradOnly, true, stats && d.needsBack); err != nil {
			return err
		}
		if !d.gradOnly { // the gradient-only methods do not read Grad
			if err := l.CheckGradScale(); err != nil {
				return fmt.Errorf("optim: %s: layer %d: %w; parameters left unchanged", d.name, j, err)
			}
		}
		if stats && ((d.needsBack && !finiteSquaresDense(l.Back)) || (!d.gradOnly && !finiteSquaresDense(l.Input))) {
			// Ā = E[h̃h̃ᵀ] or G = E[ggᵀ] would overflow and stay infinite.
			return fmt.Errorf("optim: %s: layer %d: Input or Back has an entry whose square overflows (|x| > 1.3e154); parameters left unchanged", d.name, j)
		}
		if stats && d.gradOnly && (!finiteSquaresDense(l.GradW) || !finiteSquaresVec(l.GradB.RawVector())) {
			// L = E[G Gᵀ] and R = E[Gᵀ G] would overflow.
			return fmt.Errorf("optim: %s: layer %d: GradW or GradB has an entry whose square overflows (|x| > 1.3e154); parameters left unchanged", d.name, j)
		}
	}

	if stats && !d.gradOnly && dist.Parallel(s.Comm) {
		for j := range e.layers {
			if _, ok := e.layers[j].block.(curvature.Sharded); !ok {
				return missingCapability(d.name, fmt.Sprintf("layer %d's block (%T) does not implement curvature.Sharded, which data-parallel training (Rules.Comm) needs", j, e.layers[j].block))
			}
		}
	}
	return nil
}

// updateParallel is the statistics part of a data-parallel step: the
// blocks' estimates of the shards (curvature.Sharded) replaced by their
// means in one all-reduce and folded in, and ACP's α_t set to its maximum
// over the shards.
func (e *engine) updateParallel(layers []*secondorder.Layer, s *rules, d methodDefaults, stats bool) error {
	if stats && !d.gradOnly {
		e.g.start(nil)
		for j, l := range layers {
			parts, m := e.layers[j].block.(curvature.Sharded).Estimate(l)
			e.g.group(float64(m))
			for _, p := range parts {
				e.g.statistic(p)
			}
		}
		if err := e.g.finish(s.Comm, d.name+": statistics"); err != nil {
			return err
		}
	}
	e.alphas = e.alphas[:0]
	for j, l := range layers {
		b := e.layers[j].block
		if stats {
			if sb, ok := b.(curvature.Sharded); ok && !d.gradOnly {
				sb.Fold()
			} else {
				b.Update(l) // statistics of the mean gradient
			}
		}
		if o, ok := b.(alphaSharder); ok {
			e.alphas = append(e.alphas, o.RecordAlpha(l))
		}
	}
	if len(e.alphas) > 0 {
		if err := s.Comm.AllReduce(e.alphas, dist.Max); err != nil {
			return fmt.Errorf("optim: %s: all-reduce of α: %w; parameters left unchanged", d.name, err)
		}
		k := 0
		for j := range layers {
			if o, ok := e.layers[j].block.(alphaSharder); ok {
				o.SetAlphaTo(e.alphas[k])
				k++
			}
		}
	}
	return nil
}

// meanDirections replaces every layer's U by its mean over the workers,
// each weighted by its m examples, in one all-reduce with the scalar x
// (∇ᵀδ_prev), whose mean it returns.
func (e *engine) meanDirections(c dist.Comm, name string, m, x float64) (float64, error) {
	e.g.start(nil)
	e.g.group(m)
	for j := range e.layers {
		e.g.general(e.layers[j].u.RawMatrix())
	}
	e.scalar[0] = x
	e.g.slice(e.scalar[:])
	if err := e.g.finish(c, name+": preconditioned gradients"); err != nil {
		return 0, err
	}
	return e.scalar[0], nil
}

// meanScalar returns the mean over the workers of x, each weighted by its
// m examples.
func (e *engine) meanScalar(c dist.Comm, name string, m, x float64) (float64, error) {
	e.g.start(nil)
	e.g.group(m)
	e.scalar[0] = x
	e.g.slice(e.scalar[:])
	if err := e.g.finish(c, name); err != nil {
		return 0, err
	}
	return e.scalar[0], nil
}

// alphaSharder is implemented by blocks whose per-minibatch part is a
// maximum over examples (curvature.ACPBlock's α_t), which data-parallel
// workers combine by its maximum.
type alphaSharder interface {
	RecordAlpha(l *secondorder.Layer) float64
	SetAlphaTo(a float64)
}

// ensure makes the per-layer state at the first step and checks that later
// steps pass layers of the same shapes.
func (e *engine) ensure(layers []*secondorder.Layer, name string, newBlock func(int) curvature.Block, lambda float64) {
	if e.started {
		if len(layers) != len(e.layers) {
			panic(fmt.Sprintf("optim: %s: got %d layers, earlier steps had %d", name, len(layers), len(e.layers)))
		}
		for j, l := range layers {
			if !e.layers[j].sameShape(l) {
				out, in := l.Dims()
				panic(fmt.Sprintf("optim: %s: layer %d changed shape from %d×%d to %d×%d (or its Extra parameters changed) between steps", name, j, e.layers[j].out, e.layers[j].in, out, in))
			}
		}
		return
	}
	e.started = true
	e.lambda = lambda
	e.report.Rho = math.NaN()
	e.layers = make([]engineLayer, len(layers))
	for j, l := range layers {
		out, in := l.Dims()
		el := &e.layers[j]
		el.out, el.in = out, in
		el.block = newBlock(j)
		el.u.ReuseAs(out, in+1)
		el.grad.ReuseAs(out, in+1)
		el.prev.ReuseAs(out, in+1)
		for _, p := range l.Extra {
			el.nextra = append(el.nextra, p.Value.Len())
			el.ve = append(el.ve, mat.NewVecDense(p.Value.Len(), nil))
		}
	}
}

func (el *engineLayer) sameShape(l *secondorder.Layer) bool {
	return hasShape(l, el.out, el.in, el.nextra)
}

// layerDamping returns λ_l, the absolute damping of layer j for the current
// λ, and the scale s_l between the two (1 in absolute units).
func (e *engine) layerDamping(j int, s *rules) (lambda, scale float64) {
	scale = 1
	if !s.absolute {
		scale = e.layers[j].block.Scale()
	}
	return e.lambda * scale, scale
}

// refresh refactorizes layer j's block with the current damping, raising
// it when the block is not positive definite.
func (e *engine) refresh(j int, s *rules) error {
	el := &e.layers[j]
	want, scale := e.layerDamping(j, s)
	used, err := curvature.RefreshDamped(el.block, want, s.Retry)
	if errors.Is(err, curvature.ErrNoEstimate) {
		return nil // nothing to factorize yet; Precondition is not called
	}
	if err != nil {
		return fmt.Errorf("optim: %s: layer %d: block not positive definite even with damping %g: %w", s.d.name, j, used/scale, err)
	}
	el.lambda = used
	if !el.block.Ready() {
		return nil // nothing to factorize yet (ACP with α = 0); retried at the next update
	}
	e.report.Refreshed = true
	if used > want {
		e.report.DampingRaised++
		if s.OnDampingRaised != nil {
			s.OnDampingRaised(j, used/scale)
		}
	}
	return nil
}

// fallback records that a quadratic model was not usable.
func (e *engine) fallback(reason string) {
	e.report.Fallbacks++
	e.report.LastFallback = reason
}

// ensureDirs builds, once, the Direction views of U, δ and their products.
func (e *engine) ensureDirs() {
	if e.dirs[0] != nil {
		return
	}
	for i := range e.dirs {
		e.dirs[i] = make([]secondorder.Direction, len(e.layers))
	}
	for j := range e.layers {
		el := &e.layers[j]
		el.cu.ReuseAs(el.out, el.in+1)
		el.cd.ReuseAs(el.out, el.in+1)
		for i, m := range []*mat.Dense{&el.u, &el.prev, &el.cu, &el.cd} {
			e.dirs[i][j] = secondorder.DirectionOf(m)
		}
	}
}

// autoRate chooses α and μ from the exact quadratic model (rateMomentum)
// with C = F + Λ, F from Problem.GNVec and Λ = diag(λ_l I).
func (e *engine) autoRate(s *rules, gu, gp float64, hasPrev bool) (alpha, mu, decrease float64, ok bool, reason string, err error) {
	e.ensureDirs()
	if err := s.Problem.GNVec(e.dirs[2], e.dirs[0]); err != nil {
		return 0, 0, 0, false, "", fmt.Errorf("optim: %s: Problem.GNVec: %w", s.d.name, err)
	}
	var a11, a12, a22 float64
	for j := range e.layers {
		el := &e.layers[j]
		lam, _ := e.layerDamping(j, s)
		a11 += dot(&el.u, &el.cu) + lam*dot(&el.u, &el.u)
	}
	if hasPrev {
		if err := s.Problem.GNVec(e.dirs[3], e.dirs[1]); err != nil {
			return 0, 0, 0, false, "", fmt.Errorf("optim: %s: Problem.GNVec: %w", s.d.name, err)
		}
		for j := range e.layers {
			el := &e.layers[j]
			lam, _ := e.layerDamping(j, s)
			a12 -= dot(&el.u, &el.cd) + lam*dot(&el.u, &el.prev)
			a22 += dot(&el.prev, &el.cd) + lam*dot(&el.prev, &el.prev)
		}
	}
	var clipped bool
	alpha, mu, decrease, clipped, ok, reason = rateMomentum(a11, a12, a22, gu, gp, hasPrev, s.maxMu)
	e.report.MomentumClipped = clipped
	return alpha, mu, decrease, ok, reason, nil
}

// modelDecrease returns M(δ) − M(0) = ½ δᵀ(F + Λ)δ + ∇ᵀδ for the update δ
// held in the layers' prev buffers, with F from Problem.GNVec when set and
// the blocks' own estimates C_l otherwise; gd is ∇ᵀδ.
func (e *engine) modelDecrease(s *rules, gd float64) (float64, error) {
	quad := 0.0
	e.ensureDirs()
	if s.Problem.GNVec != nil {
		if err := s.Problem.GNVec(e.dirs[3], e.dirs[1]); err != nil {
			return 0, fmt.Errorf("Problem.GNVec: %w", err)
		}
		for j := range e.layers {
			quad += dot(&e.layers[j].prev, &e.layers[j].cd)
		}
	} else {
		for j := range e.layers {
			el := &e.layers[j]
			el.block.Mul(&el.cd, &el.prev)
			quad += dot(&el.prev, &el.cd)
		}
	}
	for j := range e.layers {
		lam, _ := e.layerDamping(j, s)
		quad += lam * dot(&e.layers[j].prev, &e.layers[j].prev)
	}
	return 0.5*quad + gd, nil
}

// reportNow returns the report with the counters of the moment.
func (e *engine) reportNow(s Rules, d methodDefaults) Report {
	r := e.report
	r.Updates = e.t
	r.Damping = e.lambda
	if e.t == 0 { // nothing applied yet
		r.Damping = s.fill(d).lambda
		r.Rho, r.ModelDecrease = math.NaN(), math.NaN()
	}
	return r
}

// statsDue reports whether the next step updates the statistics.
func (e *engine) statsDue(r Rules, d methodDefaults) bool {
	return e.t%r.fill(d).t1 == 0
}

// dot returns ⟨X, Y⟩ for contiguous matrices of equal shape.
func dot(x, y *mat.Dense) float64 { return floats.Dot(raw(x), raw(y)) }

// raw returns the storage of a contiguous matrix.
func raw(m *mat.Dense) []float64 {
	r := m.RawMatrix()
	if r.Stride != r.Cols {
		panic("optim: internal error: strided buffer")
	}
	return r.Data[:r.Rows*r.Cols]
}
