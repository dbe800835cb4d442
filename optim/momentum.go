package optim

import (
	"gonum.org/v1/gonum/blas/blas64"
)

// momentum is the one momentum rule of the package (thesis §2.2; Sutskever
// et al. 2013, eqs. 1–4, in the form of Bengio et al. 2013 for Nesterov):
// for a step direction d (a gradient, a centered gradient, a preconditioned
// gradient), the velocity v and the rate η,
//
//	v ← μ v − η d
//	Δθ = v                (classical)
//	Δθ = μ v − η d        (Nesterov)
//
// It returns the new velocity and the parameter change. With μ = 0 both are
// −η d.
func momentum(v, d, eta, mu float64, nesterov bool) (vNew, delta float64) {
	vNew = velocity(v, d, eta, mu)
	if nesterov {
		return vNew, mu*vNew - eta*d
	}
	return vNew, vNew
}

// velocity returns the new velocity μ v − η d of the momentum rule.
func velocity(v, d, eta, mu float64) float64 { return mu*v - eta*d }

// velocityRow sets v ← μ v − η d element by element: the curvature-based
// optimizers (engine.go) update their velocity δ this way and apply it once
// every check has passed.
func velocityRow(v, d []float64, eta, mu float64) {
	d = d[:len(v)]
	for j := range v {
		v[j] = velocity(v[j], d[j], eta, mu)
	}
}

// momentumRow applies the momentum rule to the parameters w with velocity
// v and direction d, slices of equal length.
func momentumRow(w, v, d []float64, eta, mu float64, nesterov bool) {
	v, d = v[:len(w)], d[:len(w)]
	for j := range w {
		var dw float64
		v[j], dw = momentum(v[j], d[j], eta, mu, nesterov)
		w[j] += dw
	}
}

// momentumMatrix applies the momentum rule to a weight matrix, row by row.
func momentumMatrix(w, v, d blas64.General, eta, mu float64, nesterov bool) {
	for i := 0; i < w.Rows; i++ {
		momentumRow(w.Data[i*w.Stride:i*w.Stride+w.Cols], v.Data[i*v.Stride:i*v.Stride+w.Cols],
			d.Data[i*d.Stride:i*d.Stride+w.Cols], eta, mu, nesterov)
	}
}

// momentumVec applies the momentum rule to a vector parameter.
func momentumVec(w, v, d blas64.Vector, eta, mu float64, nesterov bool) {
	if w.Inc == 1 && v.Inc == 1 && d.Inc == 1 {
		momentumRow(w.Data[:w.N], v.Data[:w.N], d.Data[:w.N], eta, mu, nesterov)
		return
	}
	for j := 0; j < w.N; j++ {
		var dw float64
		v.Data[j*v.Inc], dw = momentum(v.Data[j*v.Inc], d.Data[j*d.Inc], eta, mu, nesterov)
		w.Data[j*w.Inc] += dw
	}
}
