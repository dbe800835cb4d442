package optim

// Report describes the state of an optimizer after its last Step. Every
// optimizer of the package has a Report method; the fields that a method
// does not use stay zero (NaN for Rho and ModelDecrease). Values of Report
// are safe for concurrent use.
type Report struct {
	// Updates is the number of updates done.
	Updates int
	// Rate and Momentum are the η (α) and μ of the last update.
	Rate, Momentum float64
	// Damping is the current λ, in the units of Rules.Damping.
	Damping float64
	// Stats tells whether the last update updated the curvature
	// statistics, Refreshed whether it refactorized a block, and
	// Constrained whether the norm constraint lowered its rate.
	Stats, Refreshed, Constrained bool
	// MomentumClipped tells whether AutoRate's model chose a momentum
	// outside [0, Rules.MaxMomentum] at the last update, which was clipped.
	MomentumClipped bool
	// Rho is the last reduction ratio ρ of the Levenberg–Marquardt
	// adaptation (NaN before the first), and ModelDecrease the last
	// M(δ) − M(0) of the quadratic model (NaN when not computed).
	Rho, ModelDecrease float64
	// DampingRaised counts the factorizations whose damping had to be
	// raised for the block to be positive definite (OnDampingRaised).
	DampingRaised int
	// Fallbacks counts the updates whose quadratic model (AutoRate, LM) was
	// not usable, and LastFallback says why for the last one.
	Fallbacks    int
	LastFallback string
	// Iterations is the number of conjugate-gradient iterations of the last
	// update (HessianFree).
	Iterations int
}

// Reporter is implemented by every optimizer of the package.
// Implementations need not be safe for concurrent use: Report must not be
// called concurrently with Step.
type Reporter interface {
	Report() Report
}

// The optimizers of the package, checked at compile time: every one is a
// Reporter, and those that need more than gradients are also Needers.
var (
	_ = []interface {
		Optimizer
		Reporter
	}{(*SGD)(nil), (*Centered)(nil), (*RMSProp)(nil), (*Adam)(nil), (*ACP)(nil)}
	_ = []interface {
		Optimizer
		Needer
		Reporter
	}{(*KFAC)(nil), (*EKFAC)(nil), (*Shampoo)(nil), (*SOAP)(nil), (*Newton)(nil), (*Preconditioned)(nil), (*HessianFree)(nil)}
)
