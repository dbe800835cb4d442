package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

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
// network-level curvature matrix m (network.GaussNewtonMatrix,
// network.HessianMatrix, …), rows and columns off[l] … off[l+1]−1, with off
// from secondorder.Layout.Offsets (thesis §3.1.6). An empty dst is resized.
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
// blocks of m given by off (see secondorder.Layout), zeros elsewhere. An
// empty dst is resized; dst may be m.
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
