package optim

import "math"

// Schedule returns the factor that multiplies an optimizer's learning rate
// at update t (t = 0 for the first update), as optax's schedules. A nil
// Schedule is the constant 1. The Schedules of this package are safe for
// concurrent use.
type Schedule func(t int) float64

// ExponentialDecay returns the schedule factor^(t/steps): the rate is
// multiplied by factor every steps updates, smoothly.
func ExponentialDecay(factor float64, steps int) Schedule {
	if !(factor > 0) || steps <= 0 {
		panic("optim: ExponentialDecay: want factor > 0 and steps > 0")
	}
	return func(t int) float64 { return math.Pow(factor, float64(t)/float64(steps)) }
}

// InverseTimeDecay returns the schedule 1/(1 + t/steps), the decay of
// Robbins–Monro step sizes.
func InverseTimeDecay(steps int) Schedule {
	if steps <= 0 {
		panic("optim: InverseTimeDecay: want steps > 0")
	}
	return func(t int) float64 { return 1 / (1 + float64(t)/float64(steps)) }
}

// Warmup returns a schedule that rises linearly from 1/steps to 1 over the
// first steps updates, then follows next (constant 1 when nil).
func Warmup(steps int, next Schedule) Schedule {
	if steps <= 0 {
		panic("optim: Warmup: want steps > 0")
	}
	return func(t int) float64 {
		f := 1.0
		if next != nil {
			f = next(t)
		}
		if t < steps {
			return f * float64(t+1) / float64(steps)
		}
		return f
	}
}
