package kron

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors wrapped by *FactorError. Test for them with errors.Is.
var (
	// ErrNotPositiveDefinite reports a factor (possibly damped) whose
	// Cholesky factorization failed.
	ErrNotPositiveDefinite = errors.New("kron: not positive definite")
	// ErrNotPositiveSemidefinite reports a factor with an eigenvalue that is
	// negative beyond rounding error.
	ErrNotPositiveSemidefinite = errors.New("kron: not positive semidefinite")
	// ErrSingular reports a singular factor, or a damped system that is
	// singular because the damping is zero.
	ErrSingular = errors.New("kron: singular")
	// ErrNoConvergence reports an eigendecomposition that did not converge.
	ErrNoConvergence = errors.New("kron: eigendecomposition did not converge")
)

// FactorError is the error returned when the factorization of one factor of a
// Kronecker product fails. Err is one of the package's sentinels, or a
// mat.Condition for an ill-conditioned LU factor; errors.Is and errors.As see
// through FactorError to it. A FactorError is safe for concurrent use by
// multiple goroutines as long as none modifies it.
type FactorError struct {
	// Factor names the factor: "A" (left) or "B" (right) of A⊗B, or "C'"
	// for the damped Schur complement of AugmentedInverse.
	Factor string
	// Damping is the damping in effect when the factorization failed (zero
	// for undamped factorizations).
	Damping float64
	// Err is the underlying cause.
	Err error
}

func (e *FactorError) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "kron: ")
	if e.Damping != 0 {
		return fmt.Sprintf("kron: factor %s: %s (damping %g)", e.Factor, msg, e.Damping)
	}
	return fmt.Sprintf("kron: factor %s: %s", e.Factor, msg)
}

// Unwrap returns e.Err.
func (e *FactorError) Unwrap() error { return e.Err }
