package optim

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// layered is a vector of the parameters of several layers, one
// n_out × (n_in+1) matrix [ΔW Δb] per layer.
type layered []*mat.Dense

func newLayered(like layered) layered {
	v := make(layered, len(like))
	for j, m := range like {
		r, c := m.Dims()
		v[j] = mat.NewDense(r, c, nil)
	}
	return v
}

func (v layered) dot(w layered) float64 {
	s := 0.0
	for j := range v {
		s += dot(v[j], w[j])
	}
	return s
}

// axpy sets v = v + a·w.
func (v layered) axpy(a float64, w layered) {
	for j := range v {
		floats.AddScaled(raw(v[j]), a, raw(w[j]))
	}
}

// scaleAdd sets v = a·v + w.
func (v layered) scaleAdd(a float64, w layered) {
	for j := range v {
		x, y := raw(v[j]), raw(w[j])
		for i := range x {
			x[i] = a*x[i] + y[i]
		}
	}
}

func (v layered) copyFrom(w layered) {
	for j := range v {
		copy(raw(v[j]), raw(w[j]))
	}
}

func (v layered) zero() {
	for _, m := range v {
		m.Zero()
	}
}

// cgSolver is the preconditioned conjugate gradient of Hessian-free
// optimization (Martens 2010, §4.4–4.6, algorithm 2): it minimises the
// quadratic φ(x) = ½ xᵀA x + gᵀx, i.e. solves A x = −g, for a symmetric
// positive definite A known through products and a diagonal preconditioner
// M (applied as x ↦ M⁻¹x), starting from x₀ (the warm start), and keeps the
// iterates at the iterations ⌈1.3^k⌉ (the last `keep` of them) for
// backtracking. It stops after maxIter iterations, or from minIter on when
// the relative progress of φ over the last k = max(10, 0.1 i) iterations
// falls below k·ε, ε = 5·10⁻⁴ (Martens' criterion), or when the residual
// is below 10⁻¹⁴ times the gradient.
type cgSolver struct {
	x, r, y, p, ap layered
	slots          []layered // copies of the iterates kept
	order          []int     // slots of the kept iterates, oldest first
	savedAt        []int     // their iterations
	phis           []float64 // φ(x_i), i = 0 …
	keep           int
}

// cgResult is what a CG solve returns.
type cgResult struct {
	iters int
	// phi is φ of the last iterate.
	phi float64
}

// solve runs CG. mul writes A v into dst; precond, when not nil, writes
// M⁻¹ r into dst. g is the right-hand side's negative, x0 the start (nil for
// zero). On return cg.x holds the last iterate and iterate(k) the kept ones
// (the last iterate always among them).
func (cg *cgSolver) solve(g, x0 layered, mul func(dst, v layered) error, precond func(dst, r layered), minIter, maxIter int) (cgResult, error) {
	if cg.x == nil {
		cg.x, cg.r, cg.y, cg.p, cg.ap = newLayered(g), newLayered(g), newLayered(g), newLayered(g), newLayered(g)
	}
	cg.savedAt, cg.order = cg.savedAt[:0], cg.order[:0]
	cg.phis = cg.phis[:0]
	if x0 != nil {
		cg.x.copyFrom(x0)
	} else {
		cg.x.zero()
	}
	// r = A x + g.
	if err := mul(cg.r, cg.x); err != nil {
		return cgResult{}, err
	}
	cg.r.axpy(1, g)
	cg.precondition(precond)
	for j := range cg.p {
		cg.p[j].Scale(-1, cg.y[j])
	}
	ry := cg.r.dot(cg.y)
	phi := 0.5 * (cg.x.dot(cg.r) + cg.x.dot(g))
	cg.phis = append(cg.phis, phi)
	next := 1.0 // the next iteration to keep: ⌈1.3^k⌉
	i := 0
	tiny := 1e-28 * g.dot(g) // ‖r‖ ≤ 1e-14 ‖∇‖: converged to rounding
	for i < maxIter && cg.r.dot(cg.r) > tiny {
		if err := mul(cg.ap, cg.p); err != nil {
			return cgResult{}, err
		}
		pap := cg.p.dot(cg.ap)
		if !(pap > 0) || math.IsInf(pap, 0) || !(ry > 0) {
			if i == 0 && !(ry >= 0) {
				return cgResult{}, fmt.Errorf("CG: the preconditioned residual has rᵀM⁻¹r = %g", ry)
			}
			if !(pap > 0) && ry > 0 {
				return cgResult{}, fmt.Errorf("CG: direction of non-positive curvature pᵀAp = %g at iteration %d (the damped matrix is not positive definite)", pap, i)
			}
			break // converged: r = 0
		}
		alpha := ry / pap
		cg.x.axpy(alpha, cg.p)
		cg.r.axpy(alpha, cg.ap)
		cg.precondition(precond)
		ryNew := cg.r.dot(cg.y)
		cg.p.scaleAdd(ryNew/ry, cg.y)
		for j := range cg.p {
			// p = −y + β p: scaleAdd gave β p + y; flip the sign of y.
			floats.AddScaled(raw(cg.p[j]), -2, raw(cg.y[j]))
		}
		ry = ryNew
		i++
		phi = 0.5 * (cg.x.dot(cg.r) + cg.x.dot(g))
		if math.IsNaN(phi) || math.IsInf(phi, 0) {
			return cgResult{}, fmt.Errorf("CG: φ = %g at iteration %d", phi, i)
		}
		cg.phis = append(cg.phis, phi)
		if float64(i) >= next {
			cg.save(i)
			for float64(i) >= next {
				next = math.Ceil(next * 1.3)
			}
		}
		k := max(10, i/10)
		if i >= minIter && i > k && phi < 0 && (phi-cg.phis[i-k])/phi < float64(k)*5e-4 {
			break
		}
	}
	if len(cg.savedAt) == 0 || cg.savedAt[len(cg.savedAt)-1] != i {
		cg.save(i)
	}
	return cgResult{iters: i, phi: phi}, nil
}

// precondition sets y = M⁻¹ r (y = r without a preconditioner).
func (cg *cgSolver) precondition(precond func(dst, r layered)) {
	if precond == nil {
		cg.y.copyFrom(cg.r)
		return
	}
	precond(cg.y, cg.r)
}

// save keeps a copy of the iterate of iteration i, dropping the oldest
// beyond keep; the copies live in keep slots allocated once.
func (cg *cgSolver) save(i int) {
	var slot int
	if len(cg.order) < cg.keep {
		slot = len(cg.order)
		if slot == len(cg.slots) {
			cg.slots = append(cg.slots, newLayered(cg.x))
		}
		cg.order = append(cg.order, slot)
		cg.savedAt = append(cg.savedAt, i)
	} else {
		slot = cg.order[0]
		copy(cg.order, cg.order[1:])
		copy(cg.savedAt, cg.savedAt[1:])
		cg.order[len(cg.order)-1] = slot
		cg.savedAt[len(cg.savedAt)-1] = i
	}
	cg.slots[slot].copyFrom(cg.x)
}

// iterate returns the k-th kept iterate, oldest first.
func (cg *cgSolver) iterate(k int) layered { return cg.slots[cg.order[k]] }
