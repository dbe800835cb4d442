package optim

import (
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// axpy sets y ← y + alpha x for matrices of equal shape without allocating.
func axpy(y *mat.Dense, alpha float64, x *mat.Dense) {
	ry, cy := y.Dims()
	rx, cx := x.Dims()
	if ry != rx || cy != cx {
		panic(mat.ErrShape)
	}
	ym, xm := y.RawMatrix(), x.RawMatrix()
	if ym.Stride == cy && xm.Stride == cx {
		floats.AddScaled(ym.Data[:ry*cy], alpha, xm.Data[:rx*cx])
		return
	}
	for i := 0; i < ry; i++ {
		floats.AddScaled(ym.Data[i*ym.Stride:i*ym.Stride+cy], alpha, xm.Data[i*xm.Stride:i*xm.Stride+cx])
	}
}

// axpyVec sets y ← y + alpha x for vectors of equal length without allocating.
func axpyVec(y *mat.VecDense, alpha float64, x *mat.VecDense) {
	y.AddScaledVec(y, alpha, x)
}
