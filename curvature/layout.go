package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// Offsets returns the offsets of the layers' parameters in the network's
// parameter vector, the concatenation over layers of θ_l = [vec(W_l); b_l]
// (the layout of nn.Network.Params): layer l occupies [off[l], off[l+1]),
// off[0] = 0 and off[L] is the number of parameters. len(off) = L+1.
func Offsets(layers []*secondorder.Layer) []int {
	off := make([]int, len(layers)+1)
	for l, ly := range layers {
		if ly == nil || ly.W == nil {
			panic(fmt.Sprintf("curvature: Offsets: layer %d has no W", l))
		}
		out, in := ly.Dims()
		off[l+1] = off[l] + out*(in+1)
	}
	return off
}

func checkOffsets(m mat.Symmetric, off []int, op string) {
	if len(off) < 2 || off[0] != 0 {
		panic(fmt.Sprintf("curvature: %s: offsets %v must start at 0 and name at least one layer", op, off))
	}
	for l := 1; l < len(off); l++ {
		if off[l] <= off[l-1] {
			panic(fmt.Sprintf("curvature: %s: offsets %v are not increasing", op, off))
		}
	}
	if d := m.SymmetricDim(); d != off[len(off)-1] {
		panic(fmt.Sprintf("curvature: %s: matrix is %d×%d, offsets cover %d parameters", op, d, d, off[len(off)-1]))
	}
}

// LayerBlock writes into dst the diagonal block of layer l of a
// network-level curvature matrix m (GaussNewton, Hessian, …), rows and
// columns off[l] … off[l+1]−1, with off from Offsets (thesis §3.1.6). An
// empty dst is resized.
func LayerBlock(dst *mat.SymDense, m mat.Symmetric, off []int, l int) {
	checkOffsets(m, off, "LayerBlock")
	if l < 0 || l >= len(off)-1 {
		panic(fmt.Sprintf("curvature: LayerBlock: layer %d out of range [0,%d)", l, len(off)-1))
	}
	p := off[l+1] - off[l]
	reuseSym(dst, p, "LayerBlock")
	for i := 0; i < p; i++ {
		for j := i; j < p; j++ {
			dst.SetSym(i, j, m.At(off[l]+i, off[l]+j))
		}
	}
}

// BlockDiagonal writes into dst the block-diagonal approximation of m that
// ignores the interactions between layers (thesis §3.1.6): the diagonal
// blocks of m given by off (see Offsets), zeros elsewhere. An empty dst is
// resized; dst may be m.
func BlockDiagonal(dst *mat.SymDense, m mat.Symmetric, off []int) {
	checkOffsets(m, off, "BlockDiagonal")
	p := off[len(off)-1]
	reuseSym(dst, p, "BlockDiagonal")
	layer := make([]int, p)
	for l := 0; l+1 < len(off); l++ {
		for q := off[l]; q < off[l+1]; q++ {
			layer[q] = l
		}
	}
	for i := 0; i < p; i++ {
		for j := i; j < p; j++ {
			v := 0.0
			if layer[i] == layer[j] {
				v = m.At(i, j)
			}
			dst.SetSym(i, j, v)
		}
	}
}
