package optim

import (
	"fmt"

	"gonum.org/v1/gonum/blas/blas64"

	"github.com/secondorder/secondorder"
)

// elemState holds per-element optimizer state shaped like each layer's
// parameters: for layer k, s0[k] (and s1[k] when two arrays are asked for)
// has one entry per element of W (row by row), then of B, then of each Extra
// parameter in order. It is shared by the first-order methods (SGD, Centered, RMSProp, Adam).
type elemState struct {
	s0, s1 [][]float64
	shape  []elemShape
	gp, gg []float64 // gather buffers for vectors with Inc ≠ 1
}

type elemShape struct {
	out, in int
	extra   []int
}

func elemShapeOf(l *secondorder.Layer) elemShape {
	out, in := l.W.Dims()
	s := elemShape{out: out, in: in}
	for _, p := range l.Extra {
		s.extra = append(s.extra, p.Value.Len())
	}
	return s
}

func (s elemShape) size() int {
	n := s.out*s.in + s.out
	for _, e := range s.extra {
		n += e
	}
	return n
}

func (s elemShape) matches(l *secondorder.Layer) bool { return hasShape(l, s.out, s.in, s.extra) }

// ensure allocates the state at the first step and panics, with a message
// prefixed by name, when the layers do not match those of earlier steps.
// The second array is allocated when two is true (possibly later than the
// first, starting from zero).
func (e *elemState) ensure(name string, layers []*secondorder.Layer, two bool) {
	if len(e.shape) == 0 && len(layers) > 0 {
		for _, l := range layers {
			s := elemShapeOf(l)
			e.shape = append(e.shape, s)
			e.s0 = append(e.s0, make([]float64, s.size()))
			e.s1 = append(e.s1, nil)
		}
	}
	if len(layers) != len(e.shape) {
		panic(fmt.Sprintf("optim: %s: got %d layers, earlier steps had %d", name, len(layers), len(e.shape)))
	}
	for k, l := range layers {
		if !e.shape[k].matches(l) {
			panic(fmt.Sprintf("optim: %s: layer %d changed shape (W, B or Extra) between steps", name, k))
		}
		if two && e.s1[k] == nil {
			e.s1[k] = make([]float64, e.shape[k].size())
		}
	}
}

// visit calls f on contiguous pieces of layer k's parameters p, their
// gradients g and the matching pieces of the state arrays (s1 nil when not
// allocated): W row by row (in one piece when W and GradW are contiguous),
// then B and each Extra parameter. f must not retain its arguments.
func (e *elemState) visit(k int, l *secondorder.Layer, f func(p, g, s0, s1 []float64)) {
	s0, s1 := e.s0[k], e.s1[k]
	sub := func(s []float64, off, n int) []float64 {
		if s == nil {
			return nil
		}
		return s[off : off+n]
	}
	w, gw := l.W.RawMatrix(), l.GradW.RawMatrix()
	if w.Stride == w.Cols && gw.Stride == gw.Cols {
		n := w.Rows * w.Cols
		f(w.Data[:n], gw.Data[:n], sub(s0, 0, n), sub(s1, 0, n))
	} else {
		off := 0
		for i := 0; i < w.Rows; i++ {
			f(w.Data[i*w.Stride:i*w.Stride+w.Cols], gw.Data[i*gw.Stride:i*gw.Stride+w.Cols], sub(s0, off, w.Cols), sub(s1, off, w.Cols))
			off += w.Cols
		}
	}
	e.visitVectors(k, l, f)
}

// visitVectors is visit for B and the Extra parameters only, whose state
// follows that of W.
func (e *elemState) visitVectors(k int, l *secondorder.Layer, f func(p, g, s0, s1 []float64)) {
	s0, s1 := e.s0[k], e.s1[k]
	out, in := l.Dims()
	off := e.visitVec(l.B.RawVector(), l.GradB.RawVector(), s0, s1, out*in, f)
	for _, p := range l.Extra {
		off = e.visitVec(p.Value.RawVector(), p.Grad.RawVector(), s0, s1, off, f)
	}
}

// visitVec is visit for one vector parameter p with gradient g, starting at
// offset off of the state; it returns the offset after it. Strided vectors
// go through gather buffers.
func (e *elemState) visitVec(p, g blas64.Vector, s0, s1 []float64, off int, f func(p, g, s0, s1 []float64)) int {
	n := p.N
	var t0, t1 []float64
	if s0 != nil {
		t0 = s0[off : off+n]
	}
	if s1 != nil {
		t1 = s1[off : off+n]
	}
	if p.Inc == 1 && g.Inc == 1 {
		f(p.Data[:n], g.Data[:n], t0, t1)
		return off + n
	}
	e.gp, e.gg = growFloats(e.gp, n), growFloats(e.gg, n)
	for j := 0; j < n; j++ {
		e.gp[j] = p.Data[j*p.Inc]
		e.gg[j] = g.Data[j*g.Inc]
	}
	f(e.gp, e.gg, t0, t1)
	for j := 0; j < n; j++ {
		p.Data[j*p.Inc] = e.gp[j]
	}
	return off + n
}

// growFloats returns s resliced to length n, reallocated only when its
// capacity is too small.
func growFloats(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}
