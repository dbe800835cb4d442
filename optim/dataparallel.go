package optim

import (
	"errors"
	"fmt"

	"gonum.org/v1/gonum/blas/blas64"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/dist"
)

// Data-parallel training. With a Comm of more than one worker, every
// optimizer replaces, before it uses them, the sums over examples that it
// needs by their means over all workers' examples, each worker's mean
// weighted by its number of examples:
//
//	x = Σ_w m_w x_w / Σ_w m_w
//
// The first-order methods, Shampoo, SOAP and Hessian-free average the
// records' gradients (GradW, GradB, the Extra gradients) and Risk; the
// other curvature methods average the blocks' statistics
// (curvature.Sharded), then the preconditioned gradients U_w of the
// shards, the Extra gradients and Risk. Centered averages its mean
// inputs, Hessian-free its preconditioner's statistics; the values of
// Problem.Loss and the products of Problem.GNVec are averaged as they
// come, and ACP's heuristic α, a maximum over examples, by its maximum.
// Every worker then holds the same numbers and applies the same update.
// One all-reduce carries all the gradients (or all the U) of a step, one
// all the statistics.

// gather packs the parts of one all-reduce and scatters their means back. A
// part belongs to a group of parts that are means over the same examples;
// the packed buffer is
//
//	[errors, (m_w, m_w x_w…) for every group]
//
// so that one AllReduce(Sum) gives the number of workers that refused the
// step, and for every group Σ m_w and Σ m_w x_w.
type gather struct {
	buf    []float64
	parts  []part
	groups []int // offset in buf of each group's weight
	err    error // the local error of start
	risk   [1]float64
}

// part is where the values of one packed part go back: the rows of a
// general matrix (a vector is one row), or the upper triangle of a
// symmetric one.
type part struct {
	m     blas64.General
	sym   bool
	group int
}

// start begins a gather for a step whose local checks gave err. The parts
// are added even after an error, so that every worker all-reduces a buffer
// of the same length.
func (g *gather) start(err error) {
	g.buf, g.parts, g.groups, g.err = append(g.buf[:0], 0), g.parts[:0], g.groups[:0], err
	if err != nil {
		g.buf[0] = 1
	}
}

// group starts a group of parts that are means over m examples.
func (g *gather) group(m float64) {
	g.groups = append(g.groups, len(g.buf))
	g.buf = append(g.buf, m)
}

func (g *gather) weight() float64 { return g.buf[g.groups[len(g.groups)-1]] }

// general adds the rows of m.
func (g *gather) general(m blas64.General) {
	w := g.weight()
	for i := 0; i < m.Rows; i++ {
		for _, v := range m.Data[i*m.Stride : i*m.Stride+m.Cols] {
			g.buf = append(g.buf, w*v)
		}
	}
	g.parts = append(g.parts, part{m: m, group: len(g.groups) - 1})
}

// vector adds v, a column of v.N rows with stride v.Inc.
func (g *gather) vector(v blas64.Vector) {
	if v.Inc < 1 {
		panic("optim: internal error: vector with increment < 1 in a gather")
	}
	g.general(blas64.General{Rows: v.N, Cols: 1, Stride: v.Inc, Data: v.Data})
}

// slice adds x.
func (g *gather) slice(x []float64) {
	g.general(blas64.General{Rows: 1, Cols: len(x), Stride: len(x), Data: x})
}

// symmetric adds the upper triangle of s.
func (g *gather) symmetric(s blas64.Symmetric) {
	w := g.weight()
	for i := 0; i < s.N; i++ {
		for _, v := range s.Data[i*s.Stride+i : i*s.Stride+s.N] {
			g.buf = append(g.buf, w*v)
		}
	}
	g.parts = append(g.parts, part{m: blas64.General{Rows: s.N, Cols: s.N, Stride: s.Stride, Data: s.Data}, sym: true, group: len(g.groups) - 1})
}

// statistic adds a part of a block's estimate.
func (g *gather) statistic(s curvature.Statistic) {
	if s.Sym.N > 0 {
		g.symmetric(s.Sym)
	} else {
		g.slice(s.Vec)
	}
}

// errPeer is returned by a worker whose own checks passed when another
// worker refused the step.
var errPeer = errors.New("another worker refused the step (its error says why); parameters left unchanged")

// finish all-reduces the buffer and writes the means back into the parts.
// It returns the local error of start, or an error naming the method when
// another worker refused, or the Comm's error; the parts are then left as
// they were, except after a Comm error (which leaves the group unusable).
func (g *gather) finish(c dist.Comm, name string) error {
	if err := c.AllReduce(g.buf, dist.Sum); err != nil {
		return fmt.Errorf("optim: %s: all-reduce of %d values: %w; parameters left unchanged", name, len(g.buf), err)
	}
	if g.err != nil {
		return g.err
	}
	if g.buf[0] != 0 {
		return fmt.Errorf("optim: %s: %w", name, errPeer)
	}
	for _, off := range g.groups {
		if !(g.buf[off] > 0) {
			return fmt.Errorf("optim: %s: the workers hold %g examples in all; parameters left unchanged", name, g.buf[off])
		}
	}
	k := 1
	for _, p := range g.parts {
		off := g.groups[p.group]
		inv := 1 / g.buf[off]
		if k == off {
			k++ // the group's weight
		}
		m := p.m
		for i := 0; i < m.Rows; i++ {
			lo := 0
			if p.sym {
				lo = i
			}
			row := m.Data[i*m.Stride+lo : i*m.Stride+m.Cols]
			for j := range row {
				row[j] = g.buf[k] * inv
				k++
			}
		}
	}
	return nil
}

// examples returns the number of examples of a record: the rows of its
// Input, else of its Grad, else 1 (gradient-only producers, whose workers
// then count as holding equal shards).
func examples(l *secondorder.Layer) float64 {
	switch {
	case l.Input != nil:
		r, _ := l.Input.Dims()
		return float64(r)
	case l.Grad != nil:
		r, _ := l.Grad.Dims()
		return float64(r)
	}
	return 1
}

// records adds to g, in one group weighted by the records' examples,
// what every method averages of the records: the gradients of every layer
// (GradW, GradB) when grads is set, the gradients of the Extra parameters,
// and the Risk of the last (copied to the others by setRisk). The
// curvature methods that average their preconditioned gradients instead
// leave grads unset.
func (g *gather) records(layers []*secondorder.Layer, grads bool) {
	g.group(examples(layers[0]))
	for _, l := range layers {
		if grads {
			g.general(l.GradW.RawMatrix())
			g.vector(l.GradB.RawVector())
		}
		for _, p := range l.Extra {
			g.vector(p.Grad.RawVector())
		}
	}
	g.risk[0] = layers[len(layers)-1].Risk
	g.slice(g.risk[:])
}

// setRisk sets the mean Risk on every layer, after finish.
func (g *gather) setRisk(layers []*secondorder.Layer) {
	for _, l := range layers {
		l.Risk = g.risk[0]
	}
}

// allReduceRecords replaces, with a parallel c, the records' sums over
// examples by their means over the workers (gather.records: the gradients
// when grads is set, the Extra gradients and Risk), and more (Centered's
// mean inputs) in the same all-reduce; without one it returns err. err is
// the result of the local checks: the workers refuse together, each
// packing as much as the others.
func allReduceRecords(c dist.Comm, g *gather, name string, layers []*secondorder.Layer, err error, grads bool, more func(g *gather)) error {
	if !dist.Parallel(c) {
		return err
	}
	g.start(err)
	g.records(layers, grads)
	if more != nil {
		more(g)
	}
	if err := g.finish(c, name); err != nil {
		return err
	}
	g.setRisk(layers)
	return nil
}

// problemMeans wraps the closures of a Problem, which see one worker's
// shard, so that they return means over all workers' examples: the value
// of Loss, and the products of GNVec. Every worker must call them the same
// number of times in the same order, as the optimizers do.
type problemMeans struct {
	c     dist.Comm
	name  string
	m     float64 // this worker's examples
	user  Problem
	g     gather
	loss  func() (float64, error)
	gnvec func(dst, v []secondorder.Direction) error
}

// wrap returns the Problem whose closures are user's made means over the
// workers of c, for a worker holding m examples; user's nil closures stay
// nil. Without a parallel Comm it returns user.
func (p *problemMeans) wrap(c dist.Comm, name string, user Problem, m float64) Problem {
	if !dist.Parallel(c) {
		return user
	}
	p.c, p.name, p.user, p.m = c, name, user, m
	if p.loss == nil {
		p.loss, p.gnvec = p.meanLoss, p.meanGNVec
	}
	var out Problem
	if user.Loss != nil {
		out.Loss = p.loss
	}
	if user.GNVec != nil {
		out.GNVec = p.gnvec
	}
	return out
}

func (p *problemMeans) meanLoss() (float64, error) {
	f, err := p.user.Loss()
	p.g.start(err)
	p.g.group(p.m)
	p.g.risk[0] = f
	p.g.slice(p.g.risk[:])
	if err := p.g.finish(p.c, p.name+": Problem.Loss"); err != nil {
		return 0, err
	}
	return p.g.risk[0], nil
}

func (p *problemMeans) meanGNVec(dst, v []secondorder.Direction) error {
	err := p.user.GNVec(dst, v)
	p.g.start(err)
	p.g.group(p.m)
	for _, d := range dst {
		p.g.general(d.W.RawMatrix())
		p.g.vector(d.B.RawVector())
	}
	return p.g.finish(p.c, p.name+": Problem.GNVec")
}
