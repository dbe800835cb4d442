package secondorder

// backend names the BLAS implementation that gonum's blas64 uses; it is set
// by backend_openblas.go when built with the openblas tag.
var backend = "gonum (pure Go)"

// Backend returns the name of the BLAS implementation in use: "gonum (pure
// Go)" by default, "openblas" when built with -tags openblas.
func Backend() string { return backend }
