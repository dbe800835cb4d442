package secondorder

import (
	"fmt"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// Direction is a change of one layer's parameters in the layer's shapes:
// ΔW (n_out × n_in) and Δb (n_out). Directions made by NewDirection or
// DirectionOf are views of one n_out × (n_in+1) matrix [ΔW Δb], the shape of
// the argument of every Kronecker-factored solve (package kron), so that a
// direction computed as a matrix needs no copy. A Direction is safe for
// concurrent use by multiple goroutines as long as none modifies it or the
// matrices it views.
type Direction struct {
	W *mat.Dense
	B *mat.VecDense
}

// DirectionOf returns the direction whose W and B are views of the
// n_out × (n_in+1) matrix aug = [ΔW Δb].
func DirectionOf(aug *mat.Dense) Direction {
	out, c := aug.Dims()
	if c < 1 {
		panic(fmt.Sprintf("secondorder: DirectionOf: %d×%d has no bias column", out, c))
	}
	return Direction{
		W: aug.Slice(0, out, 0, c-1).(*mat.Dense),
		B: aug.ColView(c - 1).(*mat.VecDense),
	}
}

// NewDirection returns a zero direction for a layer with n_out outputs and
// n_in inputs, with the matrix [ΔW Δb] it views.
func NewDirection(out, in int) (Direction, *mat.Dense) {
	aug := mat.NewDense(out, in+1, nil)
	return DirectionOf(aug), aug
}

// ParamGrad writes the layer's gradient [∇W ∇b] into the n_out × (n_in+1)
// matrix dst, allocating it when empty (thesis §3.3.3: the argument of the
// Kronecker-factored solves).
func (l *Layer) ParamGrad(dst *mat.Dense) {
	out, in := l.Dims()
	if l.GradW == nil || l.GradB == nil {
		panic("secondorder: ParamGrad needs GradW and GradB")
	}
	if dst.IsEmpty() {
		dst.ReuseAs(out, in+1)
	}
	if r, c := dst.Dims(); r != out || c != in+1 {
		panic(fmt.Sprintf("secondorder: ParamGrad: destination is %d×%d, want %d×%d", r, c, out, in+1))
	}
	d := dst.RawMatrix()
	g := l.GradW.RawMatrix()
	for i := 0; i < out; i++ {
		copy(d.Data[i*d.Stride:i*d.Stride+in], g.Data[i*g.Stride:i*g.Stride+in])
		d.Data[i*d.Stride+in] = l.GradB.AtVec(i)
	}
}

// AddParams adds alpha·[ΔW Δb] to the layer's W and B, with aug of size
// n_out × (n_in+1).
func (l *Layer) AddParams(alpha float64, aug *mat.Dense) {
	out, in := l.Dims()
	if r, c := aug.Dims(); r != out || c != in+1 {
		panic(fmt.Sprintf("secondorder: AddParams: update is %d×%d, want %d×%d", r, c, out, in+1))
	}
	a := aug.RawMatrix()
	w := l.W.RawMatrix()
	b := l.B.RawVector()
	for i := 0; i < out; i++ {
		floats.AddScaled(w.Data[i*w.Stride:i*w.Stride+in], alpha, a.Data[i*a.Stride:i*a.Stride+in])
		b.Data[i*b.Inc] += alpha * a.Data[i*a.Stride+in]
	}
}

// Layout maps the directions of a network's layers to one parameter vector,
// the concatenation over layers of θ_l = [vec(W_l); b_l] with vec stacking
// columns (thesis eq. 3.3.1; the order of nn.Network.Params and of the
// network-level curvature matrices). Layer l occupies entries
// Offsets[l] … Offsets[l+1]−1. A Layout is safe for concurrent use by
// multiple goroutines as long as none modifies its Offsets.
type Layout struct {
	Offsets []int
	dims    [][2]int
}

// NewLayout returns the layout of the layers' parameters.
func NewLayout(layers []*Layer) Layout {
	lay := Layout{Offsets: make([]int, len(layers)+1), dims: make([][2]int, len(layers))}
	for k, l := range layers {
		if l == nil || l.W == nil {
			panic(fmt.Sprintf("secondorder: NewLayout: layer %d has no W", k))
		}
		out, in := l.Dims()
		lay.dims[k] = [2]int{out, in}
		lay.Offsets[k+1] = lay.Offsets[k] + out*(in+1)
	}
	return lay
}

// Len returns the number of parameters.
func (lay Layout) Len() int { return lay.Offsets[len(lay.Offsets)-1] }

// Directions returns zero directions shaped like the layers, each viewing
// its own n_out × (n_in+1) matrix.
func (lay Layout) Directions() []Direction {
	d := make([]Direction, len(lay.dims))
	for k, s := range lay.dims {
		d[k], _ = NewDirection(s[0], s[1])
	}
	return d
}

// Vec writes the directions into dst as one parameter vector.
func (lay Layout) Vec(dst []float64, dirs []Direction) {
	lay.check(len(dst), dirs, "Vec")
	for k, d := range dirs {
		out, in := lay.dims[k][0], lay.dims[k][1]
		p := lay.Offsets[k]
		for c := 0; c < in; c++ {
			for r := 0; r < out; r++ {
				dst[p] = d.W.At(r, c)
				p++
			}
		}
		for r := 0; r < out; r++ {
			dst[p] = d.B.AtVec(r)
			p++
		}
	}
}

// Unvec writes the parameter vector v into the directions.
func (lay Layout) Unvec(dirs []Direction, v []float64) {
	lay.check(len(v), dirs, "Unvec")
	for k, d := range dirs {
		out, in := lay.dims[k][0], lay.dims[k][1]
		p := lay.Offsets[k]
		for c := 0; c < in; c++ {
			for r := 0; r < out; r++ {
				d.W.Set(r, c, v[p])
				p++
			}
		}
		for r := 0; r < out; r++ {
			d.B.SetVec(r, v[p])
			p++
		}
	}
}

func (lay Layout) check(n int, dirs []Direction, op string) {
	if n != lay.Len() {
		panic(fmt.Sprintf("secondorder: Layout.%s: vector has length %d, want %d", op, n, lay.Len()))
	}
	if len(dirs) != len(lay.dims) {
		panic(fmt.Sprintf("secondorder: Layout.%s: %d directions, want %d", op, len(dirs), len(lay.dims)))
	}
	for k, d := range dirs {
		r, c := d.W.Dims()
		if r != lay.dims[k][0] || c != lay.dims[k][1] || d.B.Len() != r {
			panic(fmt.Sprintf("secondorder: Layout.%s: direction %d is %d×%d, want %d×%d", op, k, r, c, lay.dims[k][0], lay.dims[k][1]))
		}
	}
}
