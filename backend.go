package secondorder

// backend names the BLAS implementation that gonum's blas64 uses; it is set
// at init by backend_openblas.go (cgo, -tags openblas) or by
// backend_runtime.go (OpenBLAS found at run time).
var backend = "gonum (pure Go)"

// Backend returns the name of the BLAS implementation in use: "gonum (pure
// Go)", "openblas (run time, <path of the library>)" when the default build
// found OpenBLAS at run time, "openblas" when built with -tags openblas.
func Backend() string { return backend }
