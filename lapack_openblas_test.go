//go:build openblas && cgo

package secondorder

import "testing"

// TestOpenBLASEigenSym and TestOpenBLASCholesky check OpenBLAS's dsyevd
// and dpotrf through cgo against gonum (backend_shared_test.go).
func TestOpenBLASEigenSym(t *testing.T) { checkEigenSym(t, openblasLAPACK{}) }

func TestOpenBLASCholesky(t *testing.T) { checkCholesky(t, openblasLAPACK{}) }
