package optim

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/blas/blas64"
)

// The momentum rule against Sutskever et al. (2013), eqs. 1–4, on the
// quadratic f(θ) = θ² − θ (∇f(θ) = 2θ − 1) from θ₀ = 1, v₀ = 0, with
// ε = η = 0.1 and μ = 0.9:
//
//	classical (eqs. 1–2):  v_{t+1} = μ v_t − ε ∇f(θ_t),          θ_{t+1} = θ_t + v_{t+1}
//	Nesterov  (eqs. 3–4):  v_{t+1} = μ v_t − ε ∇f(θ_t + μ v_t),  θ_{t+1} = θ_t + v_{t+1}
//
// momentum() writes Nesterov in the form of Bengio et al. (2013), on the
// look-ahead point Θ_t = θ_t + μ v_t with the gradient taken there, so its
// iterates are Θ_t; the test checks both forms step by step.

const (
	momEta = 0.1
	momMu  = 0.9
)

func momGrad(theta float64) float64 { return 2*theta - 1 }

// TestMomentumClassical: momentum(v, ∇f(θ), η, μ, false) returns
// v_{t+1} = μ v_t − η ∇f(θ_t) as both the new velocity and the step, so that
// θ follows eqs. 1–2; the first three iterates worked by hand are
// θ = 0.9, 0.73, 0.531 (v = −0.1, −0.17, −0.199).
func TestMomentumClassical(t *testing.T) {
	hand := []struct{ v, theta float64 }{{-0.1, 0.9}, {-0.17, 0.73}, {-0.199, 0.531}}
	theta, v := 1.0, 0.0 // momentum()
	thS, vS := 1.0, 0.0  // eqs. 1–2
	for step := 0; step < 6; step++ {
		vNew, delta := momentum(v, momGrad(theta), momEta, momMu, false)
		if vNew != delta {
			t.Fatalf("step %d: classical step %g differs from the velocity %g", step, delta, vNew)
		}
		v, theta = vNew, theta+delta
		vS = momMu*vS - momEta*momGrad(thS)
		thS += vS
		if math.Abs(v-vS) > 1e-15 || math.Abs(theta-thS) > 1e-15 {
			t.Fatalf("step %d: θ, v = %g, %g, want %g, %g (eqs. 1–2)", step, theta, v, thS, vS)
		}
		if step < len(hand) && (math.Abs(v-hand[step].v) > 1e-15 || math.Abs(theta-hand[step].theta) > 1e-15) {
			t.Fatalf("step %d: θ, v = %g, %g, want %g, %g (by hand)", step, theta, v, hand[step].theta, hand[step].v)
		}
	}
}

// TestMomentumNesterov: with the gradient at the look-ahead point,
// momentum(v, ∇f(Θ_t), η, μ, true) gives v_{t+1} of eq. 3 and the step
// Θ_{t+1} − Θ_t = μ v_{t+1} − η ∇f(Θ_t), so that Θ_t = θ_t + μ v_t for the
// θ_t of eqs. 3–4 at every step. By hand: Θ = 0.81, 0.6112 (v = −0.1,
// −0.152; θ = 0.9, 0.748).
func TestMomentumNesterov(t *testing.T) {
	hand := []struct{ v, look float64 }{{-0.1, 0.81}, {-0.152, 0.6112}}
	look, v := 1.0, 0.0 // Θ_0 = θ_0 + μ v_0 = θ_0
	thS, vS := 1.0, 0.0 // eqs. 3–4
	for step := 0; step < 6; step++ {
		g := momGrad(look)
		vNew, delta := momentum(v, g, momEta, momMu, true)
		if want := momMu*vNew - momEta*g; math.Abs(delta-want) > 1e-16 {
			t.Fatalf("step %d: Nesterov step %g, want μ v_{t+1} − η d = %g", step, delta, want)
		}
		v, look = vNew, look+delta
		vS = momMu*vS - momEta*momGrad(thS+momMu*vS)
		thS += vS
		if math.Abs(v-vS) > 1e-15 || math.Abs(look-(thS+momMu*vS)) > 1e-15 {
			t.Fatalf("step %d: Θ, v = %g, %g, want θ + μv = %g, v = %g (eqs. 3–4)", step, look, v, thS+momMu*vS, vS)
		}
		if step < len(hand) && (math.Abs(v-hand[step].v) > 1e-15 || math.Abs(look-hand[step].look) > 1e-15) {
			t.Fatalf("step %d: Θ, v = %g, %g, want %g, %g (by hand)", step, look, v, hand[step].look, hand[step].v)
		}
	}
}

// TestMomentumZero: with μ = 0 both rules are the gradient step −η d, and
// the velocity is −η d whatever it was.
func TestMomentumZero(t *testing.T) {
	for _, nesterov := range []bool{false, true} {
		v, d := momentum(5, 3, 0.25, 0, nesterov)
		if v != -0.75 || d != -0.75 {
			t.Errorf("nesterov %v: v, Δ = %g, %g, want −0.75, −0.75", nesterov, v, d)
		}
	}
}

// momWant applies the scalar rule to copies of w and v, elementwise.
func momWant(w, v, d []float64, nesterov bool) (wOut, vOut []float64) {
	wOut, vOut = append([]float64(nil), w...), append([]float64(nil), v...)
	for i := range w {
		vOut[i] = momMu*v[i] - momEta*d[i]
		if nesterov {
			wOut[i] += momMu*vOut[i] - momEta*d[i]
		} else {
			wOut[i] += vOut[i]
		}
	}
	return wOut, vOut
}

// TestMomentumRow: momentumRow updates w and v in place, element by element,
// as momentum(), and touches no element of v or d beyond len(w).
func TestMomentumRow(t *testing.T) {
	for _, nesterov := range []bool{false, true} {
		w := []float64{1, -2, 0.5}
		v := []float64{0.3, 0, -0.1, 99}
		d := []float64{2, 1, -4, 99}
		ww, wv := momWant(w, v[:3], d[:3], nesterov)
		momentumRow(w, v, d, momEta, momMu, nesterov)
		for i := range w {
			if math.Abs(w[i]-ww[i]) > 1e-15 || math.Abs(v[i]-wv[i]) > 1e-15 {
				t.Errorf("nesterov %v, element %d: w, v = %g, %g, want %g, %g", nesterov, i, w[i], v[i], ww[i], wv[i])
			}
		}
		if v[3] != 99 || d[3] != 99 {
			t.Errorf("nesterov %v: element past len(w) changed", nesterov)
		}
	}
}

// TestMomentumVecStrided: momentumVec on vectors with increments 1, 2 and 3
// (the columns of matrices, as mat.VecDense views give) updates exactly the
// N elements of w and v at their strides, as momentum(), and leaves the
// storage between them alone.
func TestMomentumVecStrided(t *testing.T) {
	const n = 4
	w0 := []float64{1, -2, 0.5, 3}
	v0 := []float64{0.3, 0, -0.1, 0.2}
	d0 := []float64{2, 1, -4, -0.5}
	strided := func(x []float64, inc int) blas64.Vector {
		data := make([]float64, (n-1)*inc+1)
		for i := range data {
			data[i] = -77 // the gaps
		}
		for i, v := range x {
			data[i*inc] = v
		}
		return blas64.Vector{N: n, Inc: inc, Data: data}
	}
	for _, nesterov := range []bool{false, true} {
		for _, inc := range [][3]int{{1, 1, 1}, {2, 3, 1}, {1, 2, 3}, {3, 3, 3}} {
			w, v, d := strided(w0, inc[0]), strided(v0, inc[1]), strided(d0, inc[2])
			momentumVec(w, v, d, momEta, momMu, nesterov)
			ww, wv := momWant(w0, v0, d0, nesterov)
			for i := 0; i < n; i++ {
				if math.Abs(w.Data[i*w.Inc]-ww[i]) > 1e-15 || math.Abs(v.Data[i*v.Inc]-wv[i]) > 1e-15 || d.Data[i*d.Inc] != d0[i] {
					t.Errorf("nesterov %v, incs %v, element %d: w, v, d = %g, %g, %g, want %g, %g, %g", nesterov, inc, i,
						w.Data[i*w.Inc], v.Data[i*v.Inc], d.Data[i*d.Inc], ww[i], wv[i], d0[i])
				}
			}
			for _, x := range []blas64.Vector{w, v, d} {
				for j, e := range x.Data {
					if j%x.Inc != 0 && e != -77 {
						t.Errorf("nesterov %v, incs %v: storage between elements changed at %d", nesterov, inc, j)
					}
				}
			}
		}
	}
}

// TestMomentumMatrix: momentumMatrix on a 2×3 matrix stored with stride 5
// updates the 6 elements as momentum() and leaves the padding alone.
func TestMomentumMatrix(t *testing.T) {
	const r, c, stride = 2, 3, 5
	w0 := []float64{1, -2, 0.5, 3, 0, -1}
	v0 := []float64{0.3, 0, -0.1, 0.2, 1, -1}
	d0 := []float64{2, 1, -4, -0.5, 0.25, 8}
	padded := func(x []float64) blas64.General {
		data := make([]float64, r*stride)
		for i := range data {
			data[i] = -77
		}
		for i := 0; i < r; i++ {
			copy(data[i*stride:i*stride+c], x[i*c:i*c+c])
		}
		return blas64.General{Rows: r, Cols: c, Stride: stride, Data: data}
	}
	for _, nesterov := range []bool{false, true} {
		w, v, d := padded(w0), padded(v0), padded(d0)
		momentumMatrix(w, v, d, momEta, momMu, nesterov)
		ww, wv := momWant(w0, v0, d0, nesterov)
		for i := 0; i < r; i++ {
			for j := 0; j < stride; j++ {
				k := i*stride + j
				if j >= c {
					if w.Data[k] != -77 || v.Data[k] != -77 {
						t.Errorf("nesterov %v: padding changed at (%d, %d)", nesterov, i, j)
					}
					continue
				}
				if math.Abs(w.Data[k]-ww[i*c+j]) > 1e-15 || math.Abs(v.Data[k]-wv[i*c+j]) > 1e-15 {
					t.Errorf("nesterov %v, (%d, %d): w, v = %g, %g, want %g, %g", nesterov, i, j, w.Data[k], v.Data[k], ww[i*c+j], wv[i*c+j])
				}
			}
		}
	}
}
